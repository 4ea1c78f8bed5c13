"""What the lab says, in the learner's language: a checker's feedback, hints and solutions, the progress
view, the command line and a notebook's waiting line, in Spanish under ELASTICACHE_LAB_LANG=es, in
English (unchanged) under en.

The expected Spanish is read from the .po files with Babel's own reader, not through the lab's code;
catalogues a test needs that no developer has written yet are written by the test into a locale
folder of its own (helpers.runtime.i18n.LOCALE_DIR pointed at it).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from helpers.checks import lab00
from helpers.exercises import core
from helpers.runtime import i18n, notebook
from helpers.tools import progress

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "helpers" / "locale"
UNANSWERED = ("{title}: not answered yet. Replace every `...` with your answer and run the cell again "
              "(`{qid}.hint()` gives a hint).")


def spanish(domain: str, folder: Path = LOCALE / "es") -> dict[str, str]:
    """msgid -> msgstr of a committed catalogue, read with Babel."""
    with (folder / f"{domain}.po").open("rb") as f:
        return {m.id: m.string for m in read_po(f, locale="es") if m.id}


def write_catalogue(folder: Path, domain: str, entries: dict[str, str]) -> None:
    cat = Catalog(locale="es", domain=domain)
    for english, text in entries.items():
        cat.add(english, text)
    with (folder / f"{domain}.po").open("wb") as f:
        write_po(f, cat, omit_header=True)


@pytest.fixture
def es(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .lab-lang marker here: the setting decides
    monkeypatch.setenv("ELASTICACHE_LAB_LANG", "es")


@pytest.fixture
def locale_dir(tmp_path, monkeypatch):
    """A locale folder of the test's own holding the real exercises.core catalogue (the framework's
    labels and sentences) and whatever the test writes."""
    folder = tmp_path / "locale" / "es"
    folder.mkdir(parents=True)
    shutil.copy(LOCALE / "es" / "exercises.core.po", folder)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "locale")
    i18n.catalogue.cache_clear()
    yield folder
    i18n.catalogue.cache_clear()


def _pattern(template: str, **known: str) -> re.Pattern[str]:
    """A regex of a translated template: the `known` placeholders as given, any other one as any text."""
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)[^}]*\}", template):
        out += re.escape(template[pos:m.start()]) + (re.escape(known[m.group(1)]) if m.group(1) in known else ".+")
        pos = m.end()
    return re.compile(out + re.escape(template[pos:]))


def test_a_wrong_answer_to_a_real_checker_gets_spanish_under_es_and_english_under_en(es, monkeypatch):
    po = spanish("exercises.core")
    result = lab00.q1.evaluate("6379")  # a string, where the port is a whole number
    assert result.status == "incorrect"
    value = po["a {type} ({value})"].format(type="str", value="'6379'")
    expected = _pattern(po["Expected {what} to be {words}, but it is {value}."],
                        words=po["a whole number (int)"], value=value)
    assert expected.fullmatch(result.message), result.message
    assert result.message.startswith("Se esperaba que ")
    monkeypatch.setenv("ELASTICACHE_LAB_LANG", "en")
    result = lab00.q1.evaluate("6379")
    assert result.message == "Expected the port to be a whole number (int), but it is a str ('6379')."
    assert lab00.q1.evaluate(...).message == UNANSWERED.format(title="Your Redis port", qid="q1")


def test_an_unanswered_exercise_is_told_so_in_spanish_with_its_title_from_its_labs_catalogue(es, locale_dir):
    write_catalogue(locale_dir, "checks.lab00", {"Your Redis port": "Tu puerto de Redis"})
    result = lab00.q1.evaluate(...)
    assert result.status == "unanswered"
    assert result.message == spanish("exercises.core")[UNANSWERED].format(title="Tu puerto de Redis", qid="q1")
    assert "todavía sin responder" in result.message


def test_hint_and_solution_show_the_spanish_of_the_labs_catalogue(es, locale_dir, capsys):
    po = spanish("exercises.core")
    lab00.q1.hint()
    assert capsys.readouterr().out == f"{po['Hint']}: {lab00.q1.hint_text}\n"  # no Spanish yet: the English text
    hint = "La celda que arrancó los servicios mostró el host:puerto de cada uno."
    solution = "answer = helpers.get('redis').port  # el puerto de tu Redis"
    write_catalogue(locale_dir, "checks.lab00", {lab00.q1.hint_text: hint, lab00.q1.solution_text: solution})
    i18n.catalogue.cache_clear()
    lab00.q1.hint()
    lab00.q1.solution()
    assert capsys.readouterr().out == f"Pista: {hint}\nSolución: {solution}\n"
    assert po["Hint"] == "Pista" and po["Solution"] == "Solución"


def test_the_right_answer_is_praised_in_spanish(es, capsys):
    result = lab00.q3.evaluate("redis")
    assert result.status == "correct" and result.message.startswith(spanish("exercises.core")["Correct!"] + " ")
    core.show(result)
    shown = capsys.readouterr().out
    assert shown.startswith("¡Correcto! ") and "Correcto:" not in shown  # not "Correcto: ¡Correcto! ..."


def test_a_translation_with_a_wrong_placeholder_falls_back_to_english_and_logs(es, locale_dir, caplog):
    write_catalogue(locale_dir, "exercises.core", {UNANSWERED: "{titulo}: todavía sin responder ({qid})."})
    with caplog.at_level(logging.WARNING, logger="helpers.runtime.i18n"):
        result = lab00.q1.evaluate(...)
    assert result.message == UNANSWERED.format(title="Your Redis port", qid="q1")
    assert any("does not format" in r.getMessage() and "exercises.core" in r.getMessage() for r in caplog.records)


def test_the_progress_view_speaks_spanish(es, locale_dir):
    shutil.copy(LOCALE / "es" / "tools.progress.po", locale_dir)
    write_catalogue(locale_dir, "checks.lab00", {"Your Redis port": "Tu puerto de Redis"})
    po = spanish("tools.progress")
    rows = progress.summary({"00": {"q1": {"status": "attempted"}}}, [lab00.q1, lab00.q2],
                            {"00": ("Bienvenida", "labs/es/00_welcome.ipynb")})
    text = progress.render_text(rows)
    first = po["Your progress: {solved} of {total} exercises solved ({pct:.0f}%)"].format(solved=0, total=2, pct=0)
    assert text.startswith(first + po[", {tried} tried and not yet right"].format(tried=1))
    assert "Tu puerto de Redis  (" + po["tried, not yet right"] + ")" in text
    assert po["Next: {step}"].split("{")[0] + po["lab {lab} ({title}), {qid}: {exercise}{tried}{where}"].split("{")[0] \
        in text
    assert po["{solved} of {total} exercises solved"].format(solved=0, total=2) in progress.render_html(rows)


def _cli(lang: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ELASTICACHE_LAB_LANG": lang, "ELASTICACHE_LAB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, env=env,
                          cwd=home.parent, timeout=60)


def test_the_command_line_speaks_the_learners_language(tmp_path):
    home = tmp_path / "learner"
    po = spanish("tools.cli")
    out = _cli("es", home, "stop")
    assert out.returncode == 0 and out.stdout == po["Nothing was running."] + "\n"
    out = _cli("es", home, "status")
    assert out.stdout == po["No services running for {home}"].format(home=home) + "\n"
    out = _cli("en", home, "status")
    assert out.stdout == f"No services running for {home}\n"


def test_a_notebooks_waiting_line_speaks_spanish(es):
    po = spanish("runtime.notebook")
    with notebook.waiting("demo", show=True, after=0, every=0.05) as wait:
        time.sleep(0.3)
    assert wait.lines[0].startswith(po["waiting for {what}{detail}: {elapsed:.0f} s"].split("{detail}")[0]
                                    .format(what="demo"))
    assert _pattern(po["waited {seconds:.0f} s for {what}"], what="demo").fullmatch(wait.lines[-1])
    assert wait.lines[-1].startswith("se ha esperado ")


def test_the_progress_view_names_the_spanish_editions_labs_where_it_has_them(tmp_path, monkeypatch):
    from helpers.runtime import state

    def notebook(path: Path, heading: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": [heading]}]}))

    notebook(tmp_path / "labs" / "03_database_caching.ipynb", "# Lab 03 — Database caching")
    notebook(tmp_path / "labs" / "es" / "03_database_caching.ipynb", "# Laboratorio 03 — Caché de bases de datos")
    notebook(tmp_path / "labs" / "04_session_store.ipynb", "# Lab 04 — Session store")  # not translated yet
    monkeypatch.setattr(state, "repo_root", lambda: tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ELASTICACHE_LAB_LANG", "es")
    assert progress.lab_titles() == {"03": ("Caché de bases de datos", "labs/es/03_database_caching.ipynb"),
                                     "04": ("Session store", "labs/04_session_store.ipynb")}
    monkeypatch.setenv("ELASTICACHE_LAB_LANG", "en")
    assert progress.lab_titles() == {"03": ("Database caching", "labs/03_database_caching.ipynb"),
                                     "04": ("Session store", "labs/04_session_store.ipynb")}


def test_a_restart_notice_speaks_spanish(es):
    from helpers.runtime import engines, services
    from helpers.runtime.services import Service

    nodes = [engines.Node(name=f"g-{i}", kind="redis", role="replica", host="127.0.0.1", port=i, pid=i,
                          create_time=0, argv=[], workdir="/", log="/x") for i in range(1, 4)]
    svc = Service(name="g", topology="replicated", options={}, nodes=nodes)
    text = services.restart_notice(svc, nodes[:1])
    assert text.startswith("El servicio de Redis 'g': se reinició g-1 ") and "restarted" not in text, text
