"""The Spanish edition: built from the English labs, complete, up to date, and the same code.

The English notebooks and the code's English messages are the source; `i18n/es/*.json` and
`helpers/locale/es/*.po` translate them, keyed to the text they translate (docs/translating.md).
"""

from __future__ import annotations

import pytest

from helpers.runtime import i18n
from helpers.tools import translate

IN_PROGRESS = pytest.mark.xfail(reason="the Spanish edition is being written", strict=False)


@IN_PROGRESS
def test_every_lab_is_translated_fresh_and_built():
    assert translate.check_all() == []


@IN_PROGRESS
def test_every_message_of_the_code_has_its_spanish():
    assert translate.message_problems() == []


@pytest.mark.parametrize("english, translated, same", [
    ("x = 1  # one\nprint('hello')", "x = 1  # uno\nprint('hola')", True),
    ("print(f'{n} keys')", "print(f'{n} claves')", True),
    ("print(f'{n} keys')", "print(f'{m} claves')", False),          # a changed expression in an f-string
    ("r.set('k', 1)", "r.set('k', 2)", False),                      # a changed value
    ("r.set('k', 1)", "r.set('k', 1)\nr.flushall()", False),        # an added statement
    ("%timeit r.get('k')\nx = 1", "%timeit r.get('k')\nx = 1  # uno", True),
    ("%timeit r.get('k')", "%timeit r.get('j')", False),            # a changed magic line
])
def test_a_translated_code_cell_must_be_the_same_code(english, translated, same):
    assert translate.same_code(english, translated) is same


def test_the_language_comes_from_the_edition_then_the_setting_then_the_locale(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("ELASTICACHE_LAB_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    assert i18n.lang() == "en"
    monkeypatch.setenv("LANG", "es_ES.UTF-8")
    assert i18n.lang() == "es"
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert i18n.lang() == "en"
    monkeypatch.setenv("ELASTICACHE_LAB_LANG", "es")
    assert i18n.lang() == "es"
    monkeypatch.setenv("ELASTICACHE_LAB_LANG", "en")
    (tmp_path / i18n.MARKER).write_text("es\n")
    assert i18n.lang() == "es"  # a Spanish notebook answers in Spanish
