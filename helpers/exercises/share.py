"""Sharing one's progress with the instructor of a class (opt-in, per learner).

On a classroom server (docs/classroom.md) the instructor prepares a drop-box directory,
ELASTICACHE_LAB_CLASS_DIR (default /srv/elasticache-lab/class-progress), that learners can write
into but not list or read (mode 3773, group = the instructors' group, so each file is readable
by the instructors only). `python -m helpers progress --share` writes `<user>.json` there: for
each exercise only its status (correct / attempted / unanswered) and when it was last checked,
never an answer. Once shared, every check keeps the file up to date; `--unshare` deletes it and
stops. The instructor reads the class with `python -m helpers class-progress`.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import time
from pathlib import Path
from typing import Any

from helpers.runtime import state

ENV_CLASS_DIR = "ELASTICACHE_LAB_CLASS_DIR"
DEFAULT_CLASS_DIR = "/srv/elasticache-lab/class-progress"
OPT_IN_FILE = "share-progress"  # in the state directory: present = the learner opted in
FORMAT = 1


def class_dir() -> Path:
    return Path(os.environ.get(ENV_CLASS_DIR) or DEFAULT_CLASS_DIR)


def user_name() -> str:
    return getpass.getuser()


def shared_file() -> Path:
    return class_dir() / f"{user_name()}.json"


def opted_in() -> bool:
    return (state.home() / OPT_IN_FILE).exists()


def snapshot(done: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """What is shared: statuses and times only (no answer, no attempt text)."""
    labs = {lab: {qid: {"status": e.get("status", "unanswered"), "last": e.get("last", "")}
                  for qid, e in qs.items() if isinstance(e, dict)}
            for lab, qs in done.items() if isinstance(qs, dict)}
    return {"format": FORMAT, "user": user_name(), "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "labs": labs}


def write(done: dict[str, dict[str, dict[str, Any]]]) -> Path:
    """Write the snapshot into the class directory (0640: the directory's group, the instructors, reads it)."""
    where = class_dir()
    if not where.is_dir():
        raise state.LabError(f"The class's progress directory {where} does not exist: this server has no "
                             f"instructor's view set up (docs/classroom.md), or {ENV_CLASS_DIR} names another one.")
    target = where / f"{user_name()}.json"
    state.replace_file(target, json.dumps(snapshot(done)), mode=0o640)
    return target


def share(done: dict[str, dict[str, dict[str, Any]]]) -> Path:
    target = write(done)
    (state.home() / OPT_IN_FILE).write_text(str(target) + "\n")
    return target


def unshare() -> bool:
    """Stop sharing; True when a shared file was deleted."""
    with contextlib.suppress(FileNotFoundError):
        (state.home() / OPT_IN_FILE).unlink()
    try:
        shared_file().unlink()
        return True
    except FileNotFoundError:
        return False


def update_if_opted_in(done: dict[str, dict[str, dict[str, Any]]]) -> None:
    """After each check: refresh the shared file of a learner who opted in (never fails a check)."""
    try:
        if opted_in():
            write(done)
    except (OSError, state.LabError):
        pass
