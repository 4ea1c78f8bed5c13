"""The Spanish edition: built from the English labs, complete, up to date, and the same code.

The English notebooks and the code's English messages are the source; `i18n/es/*.json` and
`helpers/locale/es/*.po` translate them, keyed to the text they translate (docs/translating.md).
"""

from __future__ import annotations

import pytest

from helpers.runtime import i18n
from helpers.tools import translate


def test_every_lab_is_translated_fresh_and_built():
    """19 of 19 labs: every markdown cell translated from the English text it says, the same code,
    and labs/es/ built from exactly that."""
    assert len(translate.english_labs()) == 19
    assert translate.check_all() == []


def test_every_message_of_the_code_has_its_spanish():
    assert translate.message_problems() == []


@pytest.mark.parametrize("english, translated, same", [
    ("x = 1  # one\nprint('hello')", "x = 1  # uno\nprint('hola')", True),
    ("print(f'{n} keys')", "print(f'{n} claves')", True),
    ("print(f'{n} keys')", "print(f'{m} claves')", False),          # a changed expression in an f-string
    ("print(f'revoked {n} sessions')", "print(f'{n} sesiones revocadas')", True),
    ("print(f'{a} of {b}')", "print(f'{b} de {a}')", False),          # expressions swapped
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


def _stores_underscore(node) -> bool:
    """Whether `_` is bound in this function's own scope (comprehensions and nested functions apart)."""
    import ast

    scopes = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.FunctionDef, ast.AsyncFunctionDef,
              ast.Lambda)
    todo = list(ast.iter_child_nodes(node))
    while todo:
        child = todo.pop()
        if isinstance(child, ast.Name) and child.id == "_" and isinstance(child.ctx, ast.Store):
            return True
        if isinstance(child, ast.arg) and child.arg == "_":
            return True
        if not isinstance(child, scopes):
            todo.extend(ast.iter_child_nodes(child))
    return False


def test_no_function_that_translates_hides_its_translator():
    """`for _ in ...` or `x, _ = ...` in a function that also calls `_()` makes `_` a local there:
    the message fails (UnboundLocalError, or an int called)."""
    import ast

    offenders = []
    for domain in translate.domains():
        path = translate.module_file(domain)
        text = path.read_text()
        if "translator(__name__)" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _stores_underscore(node) and any(
                    isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == "_"
                    for c in ast.walk(node)):
                offenders.append(f"{path.name}:{node.lineno} {node.name}")
    assert offenders == []


def test_a_value_may_be_named_like_the_message_argument():
    from helpers.runtime.i18n import translator

    assert translator("helpers.nothing")("{message} and {domain}", message="m", domain="d") == "m and d"


LEARNER_HELPERS = {"call_learner": None, "expect_type": 2, "expect_choice": 2, "expect_keys": 2, "expect_number": 1,
                   "expect_equal": 2, "expect_choices_per_item": None}  # name -> position of `what`, if any


def _prose(node) -> bool:
    """Whether a literal (or an f-string) is words for the learner, not code such as "design['engine']" or
    "measure_lag(primary, secondary)": what is left once the (...) and [...] are taken out has a space."""
    import ast
    import re

    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    else:
        return False
    return " " in re.sub(r"\([^()]*\)|\[[^\[\]]*\]", "", text).strip()


def test_every_description_a_checker_gives_the_framework_is_translated():
    """`what=` names the learner's function or value inside the framework's sentences ("Expected {what} to be
    a function"): words left in English there put English in the middle of a Spanish sentence."""
    import ast

    offenders = []
    for path in sorted((translate.HELPERS / "checks").glob("lab*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in LEARNER_HELPERS):
                continue
            where = LEARNER_HELPERS[node.func.id]
            given = [k.value for k in node.keywords if k.arg in ("what", "noun")]
            given += [node.args[where]] if where is not None and len(node.args) > where else []
            offenders += [f"{path.name}:{v.lineno} {ast.unparse(v)}" for v in given if _prose(v)]
    assert offenders == []


def test_a_spanish_learner_reads_their_function_named_in_spanish(tmp_path, monkeypatch):
    from helpers.checks import lab03

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ELASTICACHE_LAB_LANG", "es")
    result = lab03.q2.evaluate(120)  # a number where the function ttl_with_jitter(base, jitter) belongs
    assert result.status == "incorrect"
    assert "tu función ttl_with_jitter(base, jitter)" in result.message, result.message
