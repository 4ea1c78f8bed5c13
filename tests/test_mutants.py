"""Mutation testing of the checkers (helpers/tools/mutants.py): mutants of each reference answer that is
code (min <-> max, flipped comparisons, off-by-one constants, dropped filters, a hard-coded answer,
swapped arguments, mirrored commands, units x1000), fed to the checker as a learner's answers. A mutant
the checker accepts is a checker that can be fooled, unless data/mutants-equivalent.json says why it is
the same answer."""

from __future__ import annotations

import pytest

from helpers.tools import mutants

# A fixed sample of labs for the quick run (a few seconds on real engines); their checkers reject every mutant
# that is not equivalent (lab 09's safe_write mutant `r.wait(500, 1)` is rejected whatever the replicas' speed:
# the checker reads WAIT's timeout as the server receives it). The slow full run holds the floor below.
SAMPLE = ["09", "15"]
CLEAN = ["09", "15"]
FLOOR = 0.90  # the share of non-equivalent mutants the checkers must reject (the full run reached 98%)
AT_LEAST = 200  # non-equivalent mutants: a floor over a handful would prove little


def _score(scores: list) -> float:
    rejected, total, equivalent, _ = mutants.summary(scores)
    return rejected / (total - equivalent)


@pytest.fixture(scope="module")
def sample_scores() -> list:
    """The sample labs' mutants, judged once for the tests that read them."""
    return mutants.run(SAMPLE)


def test_sample_labs_reject_their_mutants(sample_scores):
    scores = sample_scores
    assert [s.lab for s in scores] == SAMPLE
    assert all(s.total >= 3 for s in scores), [mutants.line(s) for s in scores]
    survivors = [f"{o.exercise} {o.mid}: {o.description}" for s in scores if s.lab in CLEAN for o in s.survivors]
    assert not survivors, survivors


def test_the_equivalent_list_names_mutants_that_exist_and_says_why(sample_scores):
    listed = mutants.load_equivalent()
    assert listed
    for key, entries in listed.items():
        assert all(why.strip() for why in entries.values()), key
    made = {}
    for s in sample_scores:
        for o in s.outcomes:
            made.setdefault(o.exercise, set()).add(o.mid)
    for key in (k for k in listed if k.split(".")[0] in SAMPLE):
        assert set(listed[key]) <= made.get(key, set()), (key, set(listed[key]) - made.get(key, set()))


def test_a_checker_that_accepts_anything_is_caught():
    from helpers.checks import lab09

    original = lab09.q2.checker
    lab09.q2.checker = lambda answer: None
    try:
        scores = mutants.run(["09"])
    finally:
        lab09.q2.checker = original
    assert any(o.exercise == "09.q2" for s in scores for o in s.survivors)


@pytest.mark.slow
def test_all_labs_reject_at_least_90_percent_of_their_mutants():
    scores = mutants.run()
    rejected, total, equivalent, survivors = mutants.summary(scores)
    assert total - equivalent >= AT_LEAST, (total, equivalent)
    score = _score(scores)
    assert score >= FLOOR, (f"{rejected}/{total - equivalent} = {score:.0%}",
                            [f"{o.exercise} {o.mid}: {o.description}" for s in scores for o in s.survivors])


def test_a_mutation_at_the_root_of_a_body_is_applied():
    """A lambda whose whole body is the mutated call, and an `if` statement of a function's body: the mutant
    must differ from the reference (a site replaced at the root was once silently dropped)."""
    import ast

    lam = ast.parse("lambda r, q, p: r.lmove(q, p, 'RIGHT', 'LEFT')", mode="eval").body
    made = {mid: ast.unparse(tree) for mid, _, tree in mutants._mutated_trees(lam)}
    assert made["swapargs-1"] == "lambda r, q, p: r.lmove(p, q, 'RIGHT', 'LEFT')"
    fn = ast.parse("def f(n):\n    if n == 1:\n        return 0\n    return n").body[0]
    made = {mid: ast.unparse(tree) for mid, _, tree in mutants._mutated_trees(fn)}
    assert "if not n == 1:" in made["negate-1"]
