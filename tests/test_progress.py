"""The progress view: counts per lab from the recorded progress, the HTML table, the widget."""

from __future__ import annotations

from types import SimpleNamespace

from helpers.checks import all_exercises
from helpers.exercises import core as exercises
from helpers.tools import progress


def _ex(lab: str, qid: str, title: str = "A question") -> SimpleNamespace:
    return SimpleNamespace(lab=lab, qid=qid, title=title)


EXERCISES = [_ex("00", "q1"), _ex("00", "q2"), _ex("00", "q3"), _ex("03", "q1", "Cache <aside>"), _ex("03", "q2")]
TITLES = {"00": "00_welcome", "03": "03_database_caching"}


def test_summary_counts_solved_and_attempted_per_lab():
    done = {"00": {"q1": {"status": "correct"}, "q2": {"status": "attempted"}},
            "03": {"q1": {"status": "correct"}, "q2": {"status": "correct"}}}
    rows = progress.summary(done, EXERCISES, TITLES)
    assert [r.title for r in rows] == ["00_welcome", "03_database_caching"]
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
    assert "1/2" in page and "0/3" in page
    text = progress.render_text(rows)
    assert "03_database_caching" in text and "q1:done" in text and text.endswith("1/5")


def test_lab_titles_from_notebook_names(tmp_path):
    for name in ("00_welcome.ipynb", "14_capstone.ipynb", "notes.ipynb"):
        (tmp_path / name).write_text("{}")
    assert progress.lab_titles(tmp_path) == {"00": "00_welcome", "14": "14_capstone"}


def test_widget_reflects_recorded_progress():
    ex = all_exercises()[0]
    view = progress.progress_widget()
    exercises.record(ex.lab, ex.qid, "correct")
    view.button.click()  # what the Refresh button does
    lab = next(r for r in view.rows if r.lab == ex.lab)
    assert (ex.qid, ex.title, "correct") in lab.exercises
    assert view.bar.value == progress.totals(view.rows)[0] >= 1
    assert view.bar.max == sum(r.total for r in view.rows) and view.bar.max >= 3
    assert f"{ex.lab}" in view.html.value and "exercises solved" in view.html.value
    assert "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()


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
