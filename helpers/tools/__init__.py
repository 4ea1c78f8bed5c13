"""The tools around the course: the command line (cli), the JupyterLab launcher (jupyter,
terminals), the progress view, the benchmark (`make bench`) and the lock file (`make lock`)."""
