"""The progress view: counts per lab from the recorded progress, the HTML table, the widget."""

from __future__ import annotations

import json
from types import SimpleNamespace

from helpers.checks import all_exercises
from helpers.exercises import core as exercises
from helpers.tools import progress


def _ex(lab: str, qid: str, title: str = "A question") -> SimpleNamespace:
    return SimpleNamespace(lab=lab, qid=qid, title=title)


EXERCISES = [_ex("00", "q1", "Your Redis port"), _ex("00", "q2", "A first TTL"), _ex("00", "q3"),
             _ex("03", "q1", "Cache <aside>"), _ex("03", "q2", "Jitter")]
TITLES = {"00": ("Welcome to the ElastiCache Lab", "labs/00_welcome.ipynb"),
          "03": ("Database caching", "labs/03_database_caching.ipynb")}


def test_summary_counts_solved_and_attempted_per_lab():
    done = {"00": {"q1": {"status": "correct"}, "q2": {"status": "attempted"}},
            "03": {"q1": {"status": "correct"}, "q2": {"status": "correct"}}}
    rows = progress.summary(done, EXERCISES, TITLES)
    assert [r.title for r in rows] == ["Welcome to the ElastiCache Lab", "Database caching"]
    welcome, caching = rows
    assert (welcome.solved, welcome.attempted, welcome.total, welcome.complete) == (1, 1, 3, False)
    assert (caching.solved, caching.total, caching.complete) == (2, 2, True)
    assert progress.totals(rows) == (3, 5)


def test_untouched_labs_are_listed_and_unknown_statuses_count_as_tried():
    rows = progress.summary({"00": {"q1": {"status": "error"}}}, EXERCISES, {})
    assert rows[0].title == "lab 00" and rows[0].exercises[0][2] == "attempted"
    assert rows[1].solved == 0 and rows[1].total == 2


def test_render_html_escapes_and_shows_counts():
    rows = progress.summary({"03": {"q1": {"status": "correct"}}}, EXERCISES, TITLES)
    page = progress.render_html(rows)
    assert "1 of 5 exercises solved" in page
    assert "Cache &lt;aside&gt;" in page and "<aside>" not in page
    assert "1/2" in page and "0/3" in page and "Database caching" in page
    assert "Next: <b>lab 03 (Database caching), q2: Jitter in labs/03_database_caching.ipynb</b>" in page


def test_terminal_view_has_titles_totals_and_the_next_exercise():
    done = {"00": {"q1": {"status": "correct"}, "q2": {"status": "attempted"}}}
    text = progress.render_text(progress.summary(done, EXERCISES, TITLES))
    lines = text.splitlines()
    assert lines[0].startswith("Your progress: 1 of 5 exercises solved (20%), 1 tried and not yet right, 0 of 2 labs")
    assert any(line.startswith("  00  Welcome to the ElastiCache Lab") and line.endswith("1/3") for line in lines)
    assert "      ✔ q1   Your Redis port" in lines and "      ✗ q2   A first TTL  (tried, not yet right)" in lines
    assert not any("Jitter" in line for line in lines), "an untouched lab is one line unless --all"
    assert "Next: lab 00 (Welcome to the ElastiCache Lab), q2: A first TTL (tried, not yet right) in " \
           "labs/00_welcome.ipynb" in lines
    assert "Jitter" in progress.render_text(progress.summary(done, EXERCISES, TITLES), details=True)


def test_next_step_continues_the_lab_in_progress_and_ends_when_all_are_solved():
    everything = {"00": {q: {"status": "correct"} for q in ("q1", "q2", "q3")},
                  "03": {q: {"status": "correct"} for q in ("q1", "q2")}}
    assert progress.next_step(progress.summary(everything, EXERCISES, TITLES)) is None
    assert "Every exercise is solved" in progress.render_text(progress.summary(everything, EXERCISES, TITLES))
    fresh = progress.next_step(progress.summary({}, EXERCISES, TITLES))
    assert (fresh.lab.lab, fresh.qid) == ("00", "q1")
    skipped_ahead = progress.next_step(progress.summary({"03": {"q1": {"status": "correct"}}}, EXERCISES, TITLES))
    assert (skipped_ahead.lab.lab, skipped_ahead.qid) == ("03", "q2")


def test_lab_titles_from_notebook_headings(tmp_path):
    heading = {"cells": [{"cell_type": "markdown", "source": ["# Lab 14 — Capstone: a cached product API\n", "\n"]}]}
    (tmp_path / "14_capstone.ipynb").write_text(json.dumps(heading))
    for name in ("00_welcome.ipynb", "notes.ipynb"):
        (tmp_path / name).write_text("{}")
    titles = progress.lab_titles(tmp_path)
    assert titles == {"00": ("Welcome", f"{tmp_path.name}/00_welcome.ipynb"),
                      "14": ("Capstone: a cached product API", f"{tmp_path.name}/14_capstone.ipynb")}


def test_every_lab_has_a_title_from_its_notebook():
    titles = progress.lab_titles()
    assert titles["00"] == ("Welcome to the ElastiCache Lab", "labs/00_welcome.ipynb")
    assert all(title and not title.startswith("Lab ") for title, _nb in titles.values())
    rows = progress.summary({})
    assert {r.lab for r in rows} <= set(titles) and all(r.notebook for r in rows)


def test_widget_reflects_recorded_progress(isolated_home):  # its own record: other tests count attempts
    ex = all_exercises()[0]
    view = progress.progress_widget()
    exercises.record(ex.lab, ex.qid, "correct")
    view.button.click()  # what the Refresh button does
    lab = next(r for r in view.rows if r.lab == ex.lab)
    assert (ex.qid, ex.title, "correct") in lab.exercises
    assert view.bar.value == progress.totals(view.rows)[0] >= 1
    assert view.bar.max == sum(r.total for r in view.rows) and view.bar.max >= 3
    assert f"{ex.lab}" in view.html.value and "exercises solved" in view.html.value and "Next:" in view.html.value
    assert ex.title in view.html.value and view.count.value == f"{view.bar.value} / {view.bar.max}"
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "Your progress:" in bundle["text/plain"]


def test_progress_of_the_earlier_numbering_is_migrated_once(isolated_home):
    """Labs 02, 09, 10, 11 and 13 renumbered their exercises in the order they appear: a progress
    file written before that keeps each answer with its question, and a changed question starts over."""
    import json

    isolated_home.mkdir(parents=True, exist_ok=True)
    done = {"status": "correct", "attempts": 1}
    tried = {"status": "attempted", "attempts": 2}
    old = {"02": {"q1": done, "q4": tried}, "09": {"q3": done, "q4": done}, "13": {"q1": done}, "07": {"q2": done}}
    (isolated_home / "progress.json").write_text(json.dumps(old))
    now = exercises.progress()
    assert now["02"] == {"q1": done, "q2": tried}          # the 1 MB item exercise is q2 now
    assert now["09"] == {"q2": done}                       # lag in bytes moved; the Sentinel question is gone
    assert now["13"] == {"q3": done} and now["07"] == {"q2": done}
    exercises.record("13", "q1", "correct")                # a new answer after the migration stays put
    assert set(exercises.progress()["13"]) == {"q1", "q3"}


def test_sharing_progress_with_the_instructor_is_opt_in_and_holds_no_answers(isolated_home, tmp_path, monkeypatch):
    import json as _json
    import stat as _stat

    from helpers.exercises import core, share
    from helpers.tools import classprogress

    class_dir = tmp_path / "class"
    class_dir.mkdir()
    monkeypatch.setenv(share.ENV_CLASS_DIR, str(class_dir))
    core.record("00", "q1", "correct")
    assert not list(class_dir.iterdir())  # nothing is shared before the learner opts in
    target = share.share(core.progress())
    assert _stat.S_IMODE(target.stat().st_mode) == 0o640
    core.record("01", "q2", "attempted")  # kept up to date after each check
    data = _json.loads(target.read_text())
    assert data["labs"]["01"]["q2"]["status"] == "attempted"
    assert set(data["labs"]["00"]["q1"]) == {"status", "last"}  # statuses and times only
    rows = classprogress.rows(class_dir)
    assert len(rows) == 1 and rows[0]["solved"] == 1 and rows[0]["attempted"] == 1
    assert "1 learner(s) sharing" in classprogress.render(rows, class_dir)
    assert share.unshare() and not target.exists()
    core.record("01", "q2", "correct")
    assert not target.exists()  # stopped
