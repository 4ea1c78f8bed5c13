"""Move nbval's marker comments (`# NBVAL_IGNORE_OUTPUT`, ...) out of the notebooks' code into cell tags.

nbval honours the same markers as cell tags (nbval-ignore-output, nbval-skip, raises-exception, ...),
which learners do not read as code. Usage: python scripts/nbval_tags.py labs/*.ipynb
Rewrites each notebook in its own format (indent=1, cell ids and everything else unchanged).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

MARKER = re.compile(r"^\s*#\s*(NBVAL_[A-Z_]+)\s*$")
# nbval's comment markers and their tags (nbval/plugin.py: comment_markers, metadata_tags).
TAGS = {"NBVAL_IGNORE_OUTPUT": "nbval-ignore-output", "NBVAL_CHECK_OUTPUT": "nbval-check-output",
        "NBVAL_RAISES_EXCEPTION": "raises-exception", "NBVAL_SKIP": "nbval-skip"}


def convert(path: Path) -> int:
    """Rewrite `path` with tags in place of marker comments; how many markers moved."""
    text = path.read_text()
    nb = json.loads(text)
    moved = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines(keepends=True)
        kept, tags = [], []
        for line in lines:
            match = MARKER.match(line)
            if match and match[1] in TAGS:
                tags.append(TAGS[match[1]])
            elif match:
                raise SystemExit(f"{path}: unknown nbval marker {match[1]}")
            else:
                kept.append(line)
        if not tags:
            continue
        if kept:
            kept[-1] = kept[-1].rstrip("\n")  # the last line of a cell's source has no newline
        cell["source"] = kept
        existing = cell.setdefault("metadata", {}).setdefault("tags", [])
        existing.extend(t for t in tags if t not in existing)
        moved += len(tags)
    if moved:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return moved


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {convert(Path(name))} marker(s) moved to tags")
