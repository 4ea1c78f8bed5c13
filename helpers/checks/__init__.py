"""One module per lab holding its exercises: helpers.checks.labNN."""
