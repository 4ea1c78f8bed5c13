"""The learner's copies of the labs: work/ at the repository's root, out of git, where `make lab` opens.

The course's notebooks in labs/ stay as the repository has them (a `git pull` of a newer course
version never meets a learner's answers). The first `make lab` copies every lab into work/; a later
one adds the labs the course has gained, brings up to date the copies the learner never changed, and
keeps every copy they changed (work/.course-labs.json records which course version each copy was made
from). Notebooks run from work/ as from labs/: the helpers are an installed package, data files are
found through the repository's root, and work/ sits beside labs/ so `../docs/...` links still resolve.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from helpers.runtime import i18n
from helpers.runtime.i18n import translator

log = logging.getLogger(__name__)
_ = translator(__name__)

WORK = "work"  # the folder, at the repository's root (in .gitignore)
# {"from": {notebook: sha256 of the course version the copy was made from},
#  "told": {notebook: sha256 of a newer course version the learner was told about (said once)}}
RECORD = ".course-labs.json"


@dataclass
class Sync:
    """What one sync did, by notebook name."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # unchanged by the learner: replaced by the course's new version
    kept: list[str] = field(default_factory=list)  # changed by the learner while the course changed it too
    total: int = 0

    def line(self, where: str = WORK) -> str:
        """One line for the learner; empty when nothing is worth saying."""
        if self.added and not (self.updated or self.kept) and len(self.added) == self.total:
            return _("Your copies of the labs are in {folder}/ ({count} labs copied there; labs/ stays as the course "
                     "has it).", folder=where, count=self.total)
        parts = []
        if self.added:
            parts.append(_("added {labs}", labs=_names(self.added)))
        if self.updated:
            parts.append(_("updated {labs} (you had not changed them)", labs=_names(self.updated)))
        if self.kept:
            parts.append(_("kept your changed {labs} (the course's newer version is in labs/)", labs=_names(self.kept)))
        return f"{where}/: {'; '.join(parts)}." if parts else ""


def _names(names: list[str]) -> str:
    short = [n.split("_", 1)[0] if n[:2].isdigit() else n for n in names]
    numbers = ", ".join(short)
    return _("lab {numbers}", numbers=numbers) if len(short) == 1 else _("labs {numbers}", numbers=numbers)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sync(labs: Path, work: Path) -> Sync:
    """Copy the course's labs (labs/*.ipynb, or an edition's: labs/es/) into `work`, keeping every copy the
    learner changed. An edition's language marker comes along, so its copies answer in its language."""
    work.mkdir(parents=True, exist_ok=True)
    if (labs / i18n.MARKER).is_file():
        shutil.copyfile(labs / i18n.MARKER, work / i18n.MARKER)
    record_path = work / RECORD
    try:
        record = json.loads(record_path.read_text())
        made_from, told = dict(record["from"]), dict(record["told"])
    except FileNotFoundError:
        made_from, told = {}, {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s unreadable (%s): every copy that differs from the course is kept as the learner's",
                    record_path, exc)
        made_from, told = {}, {}
    result = Sync()
    for course in sorted(labs.glob("*.ipynb")):
        result.total += 1
        name, copy = course.name, work / course.name
        new = _digest(course)
        if not copy.exists():
            shutil.copyfile(course, copy)
            result.added.append(name)
        else:
            mine = _digest(copy)
            if mine == new:
                pass  # already the course's version
            elif mine == made_from.get(name):  # the learner never changed it: the course's new version replaces it
                shutil.copyfile(course, copy)
                result.updated.append(name)
            else:  # the learner's: kept, with the course version it was made from
                if made_from.get(name) != new and told.get(name) != new:
                    result.kept.append(name)
                    told[name] = new
                continue
        made_from[name] = new
        told.pop(name, None)
    record = {"from": made_from, "told": told}
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    tmp.replace(record_path)
    return result
