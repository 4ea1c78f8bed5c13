"""The learner's copies of the labs (work/): made on first start, never overwritten once changed,
joined by the labs a newer course version adds; the course's labs/ is never written."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from helpers.tools import workfolder

ROOT = Path(__file__).resolve().parent.parent


def notebook(text: str) -> str:
    return json.dumps({"cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": text}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


def make_course(labs: Path, texts: dict[str, str]) -> None:
    labs.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (labs / name).write_text(notebook(text))


def test_first_start_copies_every_lab(tmp_path):
    labs, work = tmp_path / "labs", tmp_path / "work"
    make_course(labs, {"00_welcome.ipynb": "hello", "01_x.ipynb": "one"})
    result = workfolder.sync(labs, work)
    assert sorted(p.name for p in work.glob("*.ipynb")) == ["00_welcome.ipynb", "01_x.ipynb"]
    assert (work / "01_x.ipynb").read_text() == (labs / "01_x.ipynb").read_text()
    assert "2 labs" in result.line() and "work/" in result.line()
    assert workfolder.sync(labs, work).line() == ""  # nothing new: nothing to say


def test_a_new_course_version_adds_and_updates_but_keeps_the_learners_changes(tmp_path):
    labs, work = tmp_path / "labs", tmp_path / "work"
    make_course(labs, {"00_welcome.ipynb": "hello", "03_cache.ipynb": "v1", "05_msg.ipynb": "v1"})
    workfolder.sync(labs, work)
    mine = notebook("v1 with my answer")
    (work / "03_cache.ipynb").write_text(mine)  # the learner's work, autosaved
    # A newer course version (git pull): labs 03 and 05 changed, lab 19 is new.
    make_course(labs, {"03_cache.ipynb": "v2", "05_msg.ipynb": "v2", "19_new.ipynb": "new"})
    course_before = {p.name: p.read_bytes() for p in labs.iterdir()}
    result = workfolder.sync(labs, work)
    assert (work / "03_cache.ipynb").read_text() == mine
    assert (work / "05_msg.ipynb").read_text() == notebook("v2")
    assert (work / "19_new.ipynb").read_text() == notebook("new")
    line = result.line()
    assert "\n" not in line
    assert re.search(r"added lab 19\b", line) and re.search(r"updated lab 05\b", line), line
    assert re.search(r"kept your changed lab 03\b", line), line
    assert {p.name: p.read_bytes() for p in labs.iterdir()} == course_before
    # Said once: the next start keeps the learner's copy quietly.
    assert workfolder.sync(labs, work).line() == ""
    assert (work / "03_cache.ipynb").read_text() == mine
    # The learner deletes their copy to start over: the course's version comes back.
    (work / "03_cache.ipynb").unlink()
    assert "added lab 03" in workfolder.sync(labs, work).line()
    assert (work / "03_cache.ipynb").read_text() == notebook("v2")


def test_copies_without_a_record_are_kept(tmp_path):
    labs, work = tmp_path / "labs", tmp_path / "work"
    make_course(labs, {"03_cache.ipynb": "v1"})
    work.mkdir()
    (work / "03_cache.ipynb").write_text("my own")
    (work / workfolder.RECORD).write_text("{not json")
    workfolder.sync(labs, work)
    assert (work / "03_cache.ipynb").read_text() == "my own"


def test_an_editions_copies_keep_its_language(tmp_path):
    """labs/es/ -> work/es/ with its .lab-lang marker: a kernel started there answers in Spanish."""
    from helpers.runtime import i18n

    labs, work = tmp_path / "labs" / "es", tmp_path / "work" / "es"
    make_course(labs, {"00_welcome.ipynb": "hola"})
    (labs / i18n.MARKER).write_text("es\n")
    workfolder.sync(labs, work)
    assert (work / "00_welcome.ipynb").exists() and (work / i18n.MARKER).read_text() == "es\n"


def test_work_is_out_of_git_and_beside_labs():
    """Links such as ../docs/local-vs-aws.md (../../docs from labs/es/) resolve from the copies in work/
    as from labs/; git ignores work/."""
    links = set()
    for nb in (ROOT / "labs").rglob("*.ipynb"):
        folder = nb.parent.relative_to(ROOT / "labs")
        for cell in json.loads(nb.read_text())["cells"]:
            links |= {(folder, link) for link in re.findall(r"\]\((\.\./[^)#\s]+)", "".join(cell["source"]))}
    assert links, "the labs link to ../docs/...: the check needs at least one"
    for folder, link in links:
        assert (ROOT / workfolder.WORK / folder / link).resolve().exists(), (folder, link)
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{workfolder.WORK}/00_welcome.ipynb"], cwd=ROOT)
    assert ignored.returncode == 0, "work/ must be in .gitignore"
