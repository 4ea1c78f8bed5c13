"""The exercise framework: `check()/hint()/solution()` (core), progress and its report.

It never imports a lab's content: `helpers.checks` declares each lab's exercises on top of it.
"""
