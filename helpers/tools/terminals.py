"""JupyterLab terminals that open in the lab's environment, locally and on Binder.

The course's Jupyter configuration (helpers/tools/jupyter_config, found through JUPYTER_CONFIG_PATH)
makes Jupyter use this terminal manager. Every new terminal gets:

* the Python environment Jupyter runs from first on PATH (the project's .venv, or Binder's
  environment), so `python -m helpers progress` and `aws` are the lab's own;
* the variables `python -m helpers env` prints (local AWS endpoint, fake credentials, REDIS_URL,
  MEMCACHED_SERVERS), read afresh for each terminal from the services that run at that moment;
* a plain interactive shell, not a login shell: a login shell reads /etc/profile, which resets PATH
  on Debian/Ubuntu and would hide the environment again; bash reads jupyter_config/bashrc, which
  runs the learner's ~/.bashrc and then puts the lab's environment first again (a ~/.bashrc that
  sets up pyenv or conda would otherwise put another `python` in front).

Nothing here starts a service, and a failure to describe the services never prevents a terminal
from opening (it then has PATH only).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from jupyter_server_terminals.terminalmanager import TerminalManager

log = logging.getLogger(__name__)

BASHRC = Path(__file__).resolve().parent / "jupyter_config" / "bashrc"


def python_bin() -> str:
    """The bin directory of the Python running this process (not resolved: a venv's python is a symlink)."""
    return os.path.dirname(os.path.abspath(sys.executable))


def with_first_on_path(path: str, directory: str) -> str:
    parts = [p for p in path.split(os.pathsep) if p and p != directory]
    return os.pathsep.join([directory, *parts])


def terminal_environment(base: dict[str, str] | None = None) -> dict[str, str | None]:
    """Variables to set (a value) or remove (None) in a new terminal of the lab."""
    base = dict(os.environ if base is None else base)
    changes: dict[str, str | None] = {"PATH": with_first_on_path(base.get("PATH", os.defpath), python_bin()),
                                      "ELASTICACHE_LAB_BIN": python_bin()}  # read by BASHRC
    if sys.prefix != sys.base_prefix:
        changes["VIRTUAL_ENV"] = sys.prefix
    try:
        from helpers.tools.shellenv import lab_environment

        exports, unset = lab_environment(start=False)
    except Exception as exc:  # a terminal without the services' variables beats no terminal
        log.warning("reading the lab's services for a new terminal failed: %s", exc, exc_info=True)
        return changes
    changes.update(dict.fromkeys(unset))
    changes.update(exports)
    return changes


class LabTerminalManager(TerminalManager):
    """Jupyter's terminal manager, with the lab's environment in every terminal it opens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        shell = list(kwargs.get("shell_command") or [])
        if shell[-1:] == ["-l"]:  # Jupyter adds it when not started from a terminal (see module doc)
            shell = shell[:-1]
        if len(shell) == 1 and os.path.basename(shell[0]) == "bash":
            shell += ["--rcfile", str(BASHRC)]
        if shell:
            kwargs["shell_command"] = shell
        super().__init__(*args, **kwargs)

    def make_term_env(self, *args: Any, **kwargs: Any) -> dict[str, str]:
        env = super().make_term_env(*args, **kwargs)
        for key, value in terminal_environment(env).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env
