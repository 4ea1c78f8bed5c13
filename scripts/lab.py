"""`make lab`: the lab's start, one line per step from the very first second.

Run as a file (not `python -m helpers lab`, which imports the whole helpers package before it can
say anything: up to 20 s the first time, while Python compiles it), so the first step line comes
before that import. Arguments are passed to `jupyter lab`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location("lab_steps", ROOT / "helpers" / "tools" / "steps.py")
    steps_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(steps_mod)
    steps = steps_mod.Steps(total=4)
    try:
        with steps.step("loading the lab's Python code (compiled on the first start)"):
            from helpers.runtime.state import LabError
            from helpers.tools.jupyter import lab_main
    except KeyboardInterrupt:
        return 130
    try:
        return lab_main(argv, steps=steps)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
