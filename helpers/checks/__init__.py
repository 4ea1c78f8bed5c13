"""One module per lab holding its exercises (helpers.checks.labNN), and the catalogue of them all.

Content depends on the framework (helpers.exercises), never the reverse.
"""

from __future__ import annotations

from helpers.checks import (
    lab00,
    lab01,
    lab02,
    lab03,
    lab04,
    lab05,
    lab06,
    lab07,
    lab08,
    lab09,
    lab10,
    lab11,
    lab12,
    lab13,
    lab14,
    lab15,
    lab16,
    lab17,
    lab18,
)
from helpers.exercises.core import Exercise

LABS = (
    lab00,
    lab01,
    lab02,
    lab03,
    lab04,
    lab05,
    lab06,
    lab07,
    lab08,
    lab09,
    lab10,
    lab11,
    lab12,
    lab13,
    lab14,
    lab15,
    lab16,
    lab17,
    lab18,
)


def all_exercises() -> list[Exercise]:
    """Every exercise of every lab, in lab order."""
    found: list[Exercise] = []
    for module in LABS:
        found += [v for v in vars(module).values() if isinstance(v, Exercise) and v not in found]
    return sorted(found, key=lambda e: (e.lab, int("".join(c for c in e.qid if c.isdigit()) or 0), e.qid))
