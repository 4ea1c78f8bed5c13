"""Every checker of every lab: the reference answer passes, typical wrong answers fail with the
expected feedback, and unanswered or malformed answers get a sentence, never a traceback."""

from __future__ import annotations

import pytest

from helpers.checks import all_exercises
from helpers.exercises.core import NOT_ANSWERED

EXERCISES = all_exercises()
IDS = [f"lab{e.lab}-{e.qid}" for e in EXERCISES]


@pytest.mark.parametrize("ex", EXERCISES, ids=IDS)
def test_reference_answer_is_accepted(ex):
    result = ex.evaluate(ex.reference_answer())
    assert result.status == "correct", result.message


@pytest.mark.parametrize("ex", [e for e in EXERCISES if e.also_right],
                         ids=[f"lab{e.lab}-{e.qid}" for e in EXERCISES if e.also_right])
def test_other_right_answers_are_accepted(ex):
    if ex.setup:
        ex.setup()
    for answer in ex.also_right:
        result = ex.evaluate(answer)
        assert result.status == "correct", (answer, result.message)


@pytest.mark.parametrize("ex", EXERCISES, ids=IDS)
def test_typical_wrong_answers_are_rejected_with_feedback(ex):
    assert len(ex.wrong) >= 2, f"{ex!r} needs at least two typical wrong answers"
    if ex.setup:
        ex.setup()
    for answer, fragment in ex.wrong:
        result = ex.evaluate(answer)
        assert result.status in ("incorrect", "error"), f"{ex!r} accepted the wrong answer {answer!r}"
        assert fragment.lower() in result.message.lower(), (answer, result.message)
        assert "Traceback" not in result.message


@pytest.mark.parametrize("ex", EXERCISES, ids=IDS)
def test_unanswered_and_malformed(ex):
    assert ex.evaluate(NOT_ANSWERED).status == "unanswered"
    for junk in (None, object()):
        result = ex.evaluate(junk)
        assert result.status in ("incorrect", "error"), f"{ex!r} accepted {junk!r}"
        assert result.message and "Traceback" not in result.message
    assert ex.hint_text.strip() and ex.solution_text.strip() and ex.title.strip()


def test_every_lab_has_at_least_three_exercises():
    labs: dict[str, int] = {}
    for ex in EXERCISES:
        labs[ex.lab] = labs.get(ex.lab, 0) + 1
    assert labs, "no exercises found"
    assert all(n >= 3 for n in labs.values()), labs


def test_check_records_progress_and_never_raises(capsys):
    from helpers.exercises.core import progress

    ex = EXERCISES[0]
    ex.check()  # unanswered: shown, not recorded, no exception
    ex.check(object())
    ex.check(ex.reference_answer())
    entry = progress()[ex.lab][ex.qid]
    assert entry["status"] == "correct" and entry["attempts"] == 2
    out = capsys.readouterr().out
    assert "Not answered" in out and "Correct" in out


def test_a_function_left_as_a_stub_counts_as_unanswered():
    def greet(r):
        ...  # your code here

    def other(r):
        pass

    def real(r):
        return r

    ex = EXERCISES[0]
    assert ex.evaluate(greet).status == "unanswered"
    assert ex.evaluate(other).status == "unanswered"
    assert ex.evaluate(real).status != "unanswered"


def test_lab15_q5_accepts_a_valkey9_serverless_public_endpoint_for_the_laptop_only():
    # AWS, "Create a Valkey serverless cache with a public endpoint": ElastiCache Serverless for Valkey 9.0
    # or later can have one (IAM authentication and TLS 1.3 required); node-based clusters still have none.
    ex = next(e for e in EXERCISES if e.lab == "15" and e.qid == "q5")
    right = {"lambda_function": "vpc", "ecs_service_in_another_vpc": "peering",
             "thirty_vpcs_in_many_accounts": "transit_gateway", "developer_laptop": "public_endpoint"}
    result = ex.evaluate(right)
    assert result.status == "correct", result.message
    assert "Valkey 9.0" in result.message and "TLS 1.3" in result.message
    assert ex.evaluate({**right, "lambda_function": "public_endpoint"}).status == "incorrect"
