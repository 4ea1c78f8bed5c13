"""Committed notebooks carry no outputs and follow the lab structure."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

LABS = sorted(Path(__file__).resolve().parent.parent.joinpath("labs").glob("*.ipynb"))


def test_there_are_labs():
    assert LABS and LABS[0].name == "00_welcome.ipynb"


@pytest.mark.parametrize("path", LABS, ids=[p.name for p in LABS])
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them (jupyter nbconvert --clear-output)"


@pytest.mark.parametrize("path", LABS, ids=[p.name for p in LABS])
def test_structure(path):
    nb = nbformat.read(path, as_version=4)
    first_md = nb.cells[0].source.lower()
    assert nb.cells[0].cell_type == "markdown" and first_md.startswith("# lab ")
    assert "duration" in first_md
    first_code = next(c.source for c in nb.cells if c.cell_type == "code")
    assert "from helpers" in first_code or "import helpers" in first_code
    assert "sys.path" not in "".join(c.source for c in nb.cells)
    assert "recap" in "".join(c.source.lower() for c in nb.cells[-3:] if c.cell_type == "markdown")
    assert sum(".check(" in c.source for c in nb.cells if c.cell_type == "code") >= 3


@pytest.mark.parametrize("path", LABS, ids=[p.name for p in LABS])
def test_the_engine_is_shown_by_its_own_version(path):
    """Valkey keeps INFO's redis_version at 7.2.4 for old clients (its own is valkey_version): a lab that shows
    redis_version as the server's version tells a learner on Valkey 9 that they run 7.2.4."""
    nb = nbformat.read(path, as_version=4)
    shown = [line.strip() for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
             if "redis_version" in line.split("#")[0] and "valkey_version" not in line
             and not line.strip().startswith("assert")]
    assert not shown, f"{path.name} shows redis_version alone (engines.server_label(info) names the engine): {shown}"


API_OBJECTS = {"ec", "cw", "ec2", "cp", "sv"}  # the labs' boto3 clients and AWS-side helpers: they return dicts


@pytest.mark.parametrize("path", LABS, ids=[p.name for p in LABS])
def test_no_cell_ends_in_a_raw_api_answer(path):
    """A cell whose last line is `ec.delete_replication_group(...)` shows the whole response, HTTP headers
    (ResponseMetadata) and all: print the fields that matter, or assign the value (`_ = ...`)."""
    nb = nbformat.read(path, as_version=4)
    raw = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            body = ast.parse(cell.source).body
        except SyntaxError:  # a cell with IPython magics
            continue
        last = body[-1] if body else None
        if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
            fn = last.value.func
            if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) and fn.value.id in API_OBJECTS:
                raw.append(ast.unparse(last)[:80])
    assert not raw, f"{path.name}: cells end in a value the notebook would dump: {raw}"


@pytest.mark.parametrize("path", LABS, ids=[p.name for p in LABS])
def test_error_messages_are_shown_whole(path):
    """Error messages are sentences: cut at a fixed length they end mid-word ("The window mu"), unless the
    cut says so ("...")."""
    nb = nbformat.read(path, as_version=4)
    cut = [m.group(0) for c in nb.cells if c.cell_type == "code"
           for m in re.finditer(r"""(?:\[["']Message["']\]|\b(?:e|exc|err)\))\[:\d+\](?!\}?\.\.\.)""", c.source)]
    assert not cut, f"{path.name} cuts error messages: {cut}"


@pytest.mark.parametrize("path", LABS, ids=[p.name for p in LABS])
def test_test_markers_are_cell_tags_not_comments_learners_read(path):
    """nbval's markers are cell tags (nbval-ignore-output, ...), which nbval itself reads; no code cell
    carries a `# NBVAL_...` comment (scripts/nbval_tags.py moves them)."""
    from nbval.plugin import find_comment_markers, metadata_tags

    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert "NBVAL_" not in cell.source, f"{path.name} cell {i}: an NBVAL_ comment; run scripts/nbval_tags.py"
        assert not list(find_comment_markers(cell.source))
        tags = cell.metadata.get("tags", [])
        unknown = [t for t in tags if (t.startswith("nbval") or "exception" in t) and t not in metadata_tags]
        assert not unknown, f"{path.name} cell {i}: tags nbval does not know: {unknown}"


def test_nbval_reads_the_tags():
    """The welcome lab's environment check (its output differs on every machine) is output nbval ignores."""
    from nbval.plugin import find_metadata_tags

    nb = nbformat.read(LABS[0], as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "doctor_report()" in c.source)
    assert dict(find_metadata_tags(cell.metadata)) == {"check": False}
