"""Lab 05 (messaging): exercises, checked against a real Redis under the prefix lab05:ex:."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from helpers.exercises.core import (
    Exercise,
    Wrong,
    call_learner,
    expect_choice,
    expect_choices_per_item,
    expect_keys,
)
from helpers.runtime.i18n import N_, translator
from helpers.runtime.services import start
from helpers.topics.messaging import clear_prefix, ensure_group, pending_by_consumer

_ = translator(__name__)
log = logging.getLogger(__name__)

LAB = "05"
P = "lab05:ex:"


def _client() -> Any:
    r = start("redis").client()
    clear_prefix(r, P)
    return r


# --- q1: a reliable pop -------------------------------------------------------------------------

def _check_reliable_pop(answer: Any) -> str:
    if not callable(answer):
        raise Wrong(_("Expected a function reliable_pop(r, queue, processing), but got {kind}.",
                      kind=type(answer).__name__))
    r = _client()
    queue, processing = P + "jobs", P + "jobs:processing:you"
    r.lpush(queue, "job-1", "job-2", "job-3")  # job-1 is the oldest: it waits at the right end
    job = call_learner(answer, r, queue, processing, what=_("your function reliable_pop(r, queue, processing)"))
    left, parked = r.lrange(queue, 0, -1), r.lrange(processing, 0, -1)
    if len(left) == 3 and not parked:
        raise Wrong(_("After your call the queue still holds all 3 jobs (you returned {job!r}): the job is still "
                      "in the queue, so another worker would take it too. Move it out of the queue.", job=job))
    if not parked:
        raise Wrong(_("The job left the queue but is not on the processing list: if the worker crashed now, the "
                      "job would be lost for good. Move it with r.lmove/r.blmove(queue, processing, ...)."))
    if parked == ["job-3"] or job == "job-3":
        raise Wrong(_("You took the newest job (job-3). Producers LPUSH on the left, so the oldest job waits at "
                      "the RIGHT end of the list: move from 'RIGHT'."))
    if parked != ["job-1"] or left != ["job-3", "job-2"]:
        raise Wrong(_("After your call the queue holds {left} and the processing list {parked}; expected "
                      "['job-3', 'job-2'] and ['job-1'] (one job moved, the oldest).", left=left, parked=parked))
    if job != "job-1":
        raise Wrong(_("Your function returned {job!r}; return the job you moved ('job-1'), so the worker knows "
                      "what to work on.", job=job))
    return (_("LMOVE/BLMOVE takes the job and parks it in one atomic step: a crash at any moment leaves it "
              "either in the queue or on the processing list, never nowhere."))


q1 = Exercise(
    lab=LAB, qid="q1", title="A pop that survives a crash",
    checker=_check_reliable_pop,
    hint_text="One command moves an element from one list to another atomically: r.lmove(src, dst, "
              "wherefrom, whereto) (r.blmove waits for a job). Producers push on the LEFT.",
    solution_text="def reliable_pop(r, queue, processing):\n"
                  "    return r.lmove(queue, processing, 'RIGHT', 'LEFT')",
    reference=lambda r, q, p: r.lmove(q, p, "RIGHT", "LEFT"),
    wrong=[
        (lambda r, q, p: r.rpop(q), "not on the processing list"),
        (lambda r, q, p: r.lmove(q, p, "LEFT", "LEFT"), "newest"),
        (lambda r, q, p: r.lindex(q, -1), "still in the queue"),
        (lambda r, q, p: r.lmove(q, p, "RIGHT", "LEFT") and None, "return the job"),
        ("LMOVE", "function"),
    ],
)


# --- q2: recover a crashed consumer's pending entries ----------------------------------------------

def _crashed_consumer(r: Any, stream: str, group: str) -> list[str]:
    """Six orders; consumer 'crashed' reads four and dies without XACK. Returns the four ids."""
    for i in range(6):
        r.xadd(stream, {"order": f"order-{i}"})
    ensure_group(r, stream, group)
    reply = r.xreadgroup(group, "crashed", {stream: ">"}, count=4)
    time.sleep(0.15)  # the entries are now idle for more than 100 ms
    return [mid for mid, _ in reply[0][1]]


def _ids(result: Any) -> list[str] | None:
    if isinstance(result, (list, tuple)):
        out = []
        for item in result:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
                out.append(item[0])
            else:
                return None
        return out
    return None


def _check_rescue(answer: Any) -> str:
    if not callable(answer):
        raise Wrong(_("Expected a function rescue(r, stream, group, consumer), but got {kind}.",
                      kind=type(answer).__name__))
    r = _client()
    stream, group = P + "orders", "billing"
    held = _crashed_consumer(r, stream, group)
    result = call_learner(answer, r, stream, group, "rescuer",
                          what=_("your function rescue(r, stream, group, consumer)"))
    pending = pending_by_consumer(r, stream, group)
    if pending.get("crashed") and pending.get("rescuer"):
        raise Wrong(_("You read new entries (with '>'), not the pending ones: the 4 entries the crashed consumer "
                      "held are still stuck with it. XAUTOCLAIM (or XCLAIM) hands over pending entries."))
    if pending.get("crashed"):
        raise Wrong(_("The 4 entries are still pending for 'crashed': nothing was claimed. Use r.xautoclaim(stream, "
                      "group, consumer, min_idle_time=100, start_id='0-0'); a min_idle_time larger than the "
                      "entries' idle time claims nothing."))
    if not pending:
        raise Wrong(_("The entries are no longer pending at all: your function acknowledged them (XACK) without "
                      "processing them, so those orders are lost. Claim and return them; ack after the work."))
    if pending != {"rescuer": 4}:
        raise Wrong(_("XPENDING now shows {pending}; expected the 4 held entries to belong to 'rescuer' "
                      "(and the 2 never-delivered entries left for '>' readers).", pending=pending))
    if (isinstance(result, (list, tuple)) and len(result) >= 2 and isinstance(result[0], str)
            and isinstance(result[1], list) and "-" in result[0]):
        raise Wrong(_("You returned XAUTOCLAIM's whole reply (next cursor, entries, deleted ids). Return its second "
                      "element: the list of (id, fields) entries you claimed."))
    ids = _ids(result)
    if ids is None:
        raise Wrong(_("Return the claimed entries (XAUTOCLAIM's list of (id, fields), or their ids); "
                      "your function returned {kind}.", kind=type(result).__name__))
    if sorted(ids) != sorted(held):
        raise Wrong(_("Your function returned {n} entries; the rescuer claimed the 4 held by 'crashed'. "
                      "Return what XAUTOCLAIM gave you (its second element).", n=len(ids)))
    return _("The rescuer owns them now (their delivery count went to 2): process, then XACK each one.")


def _rescue_reference(r: Any, stream: str, group: str, consumer: str) -> list:
    _cursor, entries, *_ = r.xautoclaim(stream, group, consumer, min_idle_time=100, start_id="0-0")
    return entries


q2 = Exercise(
    lab=LAB, qid="q2", title="Rescue a crashed consumer's pending entries",
    checker=_check_rescue,
    hint_text="r.xautoclaim(stream, group, consumer, min_idle_time=100, start_id='0-0') returns "
              "(next cursor, [(id, fields), ...], [deleted ids]).",
    solution_text="def rescue(r, stream, group, consumer):\n"
                  "    cursor, entries, *_ = r.xautoclaim(stream, group, consumer,\n"
                  "                                       min_idle_time=100, start_id='0-0')\n"
                  "    return entries",
    reference=_rescue_reference,
    wrong=[
        (lambda r, s, g, c: r.xreadgroup(g, c, {s: ">"}), "not the pending ones"),
        (lambda r, s, g, c: r.xautoclaim(s, g, c, min_idle_time=600_000)[1], "nothing was claimed"),
        (lambda r, s, g, c: [r.xack(s, g, m) for m, _ in r.xautoclaim(s, g, c, 100)[1]], "acknowledged"),
        (lambda r, s, g, c: len(r.xautoclaim(s, g, c, 100)[1]), "return the claimed entries"),
        (lambda r, s, g, c: r.xautoclaim(s, g, c, 100), "whole reply"),
    ],
)


# --- q5: the right primitive ---------------------------------------------------------------------

NEEDS = ("live_scores", "payments", "thumbnails")
PRIMITIVES = ("list", "pubsub", "stream")


def _check_primitives(answer: Any) -> str:
    expect_keys(answer, NEEDS, _("your dictionary"))
    live = expect_choice(answer["live_scores"], PRIMITIVES, _("the choice for 'live_scores'"))
    pay = expect_choice(answer["payments"], PRIMITIVES, _("the choice for 'payments'"))
    thumbs = expect_choice(answer["thumbnails"], PRIMITIVES, _("the choice for 'thumbnails'"))
    if pay != "stream":
        raise Wrong(_("'payments': auditors re-read last week's events and several consumers share the work with "
                      "crash recovery. Only a stream keeps entries after they are read, with consumer groups, "
                      "pending entries and XAUTOCLAIM."))
    if thumbs == "pubsub":
        raise Wrong(_("'thumbnails': with pub/sub every worker receives every job (each thumbnail made N times), "
                      "and a job published while the workers restart is lost. A work queue hands each job "
                      "to one worker and keeps it until taken."))
    if live != "pubsub":
        raise Wrong(_("'live_scores': every open tab must get each score, nothing is stored, and a closed tab "
                      "does not need old scores: that is fire-and-forget fan-out, what pub/sub does with the "
                      "least work for the server."))
    extra = (_(" A stream works for the thumbnails too; a list with LMOVE is the simpler fit.") if thumbs == "stream"
             else "")
    return _("Fan-out that may forget: pub/sub. One taker per job: a list. Durable log with groups: a stream.") + extra


q5 = Exercise(
    lab=LAB, qid="q5", title="Choose the primitive for each requirement",
    checker=_check_primitives,
    hint_text="Ask of each requirement: does every receiver get every message (fan-out) or does one worker "
              "take each job? Must a message outlive a receiver that is offline? Must it be re-readable later?",
    solution_text="answer = {'live_scores': 'pubsub', 'payments': 'stream', 'thumbnails': 'list'}",
    reference={"live_scores": "pubsub", "payments": "stream", "thumbnails": "list"},
    wrong=[
        ({"live_scores": "pubsub", "payments": "list", "thumbnails": "list"}, "re-read"),
        ({"live_scores": "pubsub", "payments": "stream", "thumbnails": "pubsub"}, "every worker"),
        ({"live_scores": "list", "payments": "stream", "thumbnails": "list"}, "fan-out"),
        ({"live_scores": "pubsub"}, "missing"),
        ({"live_scores": "kafka", "payments": "stream", "thumbnails": "list"}, "not one of the choices"),
    ],
)


# --- q3: an idempotent handler ---------------------------------------------------------------------

def _check_idempotent(answer: Any) -> str:
    if not callable(answer):
        raise Wrong(_("Expected a function credit(r, msg_id, fields), but got {kind}.", kind=type(answer).__name__))
    r = _client()
    user = f"ana-{uuid.uuid4().hex[:6]}"
    balance = P + f"balance:{user}"
    base = int(time.time() * 1000)
    first, second = f"{base}-0", f"{base}-1"
    what = _("your function credit(r, msg_id, fields)")
    call_learner(answer, r, first, {"user": user, "points": "10"}, what=what)
    call_learner(answer, r, first, {"user": user, "points": "10"}, what=what)  # redelivered after a crash
    call_learner(answer, r, second, {"user": user, "points": "5"}, what=what)
    got = r.get(balance)
    if got is None:
        raise Wrong(_("The key {balance!r} does not exist after three calls: add the points to "
                      "f'lab05:ex:balance:{{fields[\"user\"]}}' (r.incrby).", balance=balance))
    value = int(float(got))
    if value == 25:
        raise Wrong(_("The balance is 25: the redelivered message was credited twice. Streams deliver at least "
                      "once, so remember which message ids you applied (e.g. r.set(f'lab05:ex:seen:{msg_id}', 1, "
                      "nx=True, ex=86400)) and skip the ones already seen."))
    if value != 15:
        raise Wrong(_("The balance is {value}, expected 15 (10 once, then 5): a new message was ignored. "
                      "Deduplicate by message id, not by user.", value=value))
    _check_crash_between_commands(answer, r)
    return (_("Exactly-once *effects* on top of at-least-once delivery: the handler is idempotent, and atomic, "
              "so a crash cannot fall between 'seen' and 'credited'."))


class _Crash(BaseException):
    """The worker dies here (a BaseException, so a learner's `except Exception` does not hide it)."""


def _crashing_client(r: Any, after: int) -> Any:
    """A client on the same server that dies just before its (after+1)-th command reaches Redis.

    A pipeline or a Lua script is one step for it, exactly as it is for Redis."""
    import redis

    class CrashAfter(redis.Redis):
        left = after

        def execute_command(self, *args: Any, **options: Any) -> Any:
            if CrashAfter.left <= 0:
                raise _Crash()
            CrashAfter.left -= 1
            return super().execute_command(*args, **options)

    return CrashAfter(connection_pool=r.connection_pool)


def _check_crash_between_commands(answer: Any, r: Any) -> None:
    what = _("your function credit(r, msg_id, fields)")
    for after in range(1, 6):
        user = f"bo-{uuid.uuid4().hex[:6]}"
        # A stream-id-shaped id no other check has used: a millisecond clock alone can repeat.
        msg = f"{int(time.time() * 1000)}-{uuid.uuid4().int % 10**12}"
        fields = {"user": user, "points": "7"}
        try:
            answer(_crashing_client(r, after), msg, fields)
        except _Crash:
            pass
        except Exception as exc:  # noqa: BLE001 - whatever the learner's handler raised on the crash client
            log.debug("the handler raised %s on the crash client", type(exc).__name__)
            continue  # the crash client is not what we test here
        call_learner(answer, r, msg, fields, what=what)  # the message is delivered again after the crash
        got = r.get(P + f"balance:{user}")
        value = int(float(got)) if got is not None else 0
        if value != 7:
            raise Wrong(_("A worker that crashed after {after} command(s) of your handler, followed by the "
                          "redelivery of the same message, leaves a balance of {value} instead of 7: the crash fell "
                          "between marking the message as seen and adding the points. Make the two one atomic step: "
                          "a Lua script (r.eval) or a MULTI/EXEC transaction (r.pipeline() with WATCH).",
                          after=after, value=value))


CREDIT_SCRIPT = """\
if redis.call('SET', KEYS[1], 1, 'NX', 'EX', 86400) then
  return redis.call('INCRBY', KEYS[2], ARGV[1])
end
return false
"""


def _credit_reference(r: Any, msg_id: str, fields: dict) -> None:
    r.eval(CREDIT_SCRIPT, 2, f"lab05:ex:seen:{msg_id}", f"lab05:ex:balance:{fields['user']}",
           int(fields["points"]))


def _credit_two_steps(r: Any, msg_id: str, fields: dict) -> None:
    if r.set(f"lab05:ex:seen:{msg_id}", 1, nx=True, ex=86400):
        r.incrby(f"lab05:ex:balance:{fields['user']}", int(fields["points"]))


q3 = Exercise(
    lab=LAB, qid="q3", title="Make a handler safe to run twice",
    checker=_check_idempotent,
    hint_text="SET key 1 NX returns OK only the first time the key is set: use the message id in the key. "
              "Do the SET NX and the INCRBY in one atomic step, a Lua script run with r.eval(script, 2, key1, "
              "key2, points), so a crash cannot fall between them.",
    solution_text="CREDIT = \"\"\"\n" + CREDIT_SCRIPT + "\"\"\"\n\n"
                  "def credit(r, msg_id, fields):\n"
                  "    # one script = one atomic step: marked as seen and credited, or neither\n"
                  "    r.eval(CREDIT, 2, f'lab05:ex:seen:{msg_id}', f\"lab05:ex:balance:{fields['user']}\",\n"
                  "           int(fields['points']))",
    reference=_credit_reference,
    wrong=[
        (_credit_two_steps, "atomic"),
        (lambda r, m, f: r.incrby(f"lab05:ex:balance:{f['user']}", int(f["points"])), "credited twice"),
        (lambda r, m, f: r.set(f"lab05:ex:seen:{f['user']}", 1, nx=True)
         and r.incrby(f"lab05:ex:balance:{f['user']}", int(f["points"])), "ignored"),
        (lambda r, m, f: None, "does not exist"),
    ],
)


# --- q4: name the guarantee ------------------------------------------------------------------------

GUARANTEES = ("at-most-once", "at-least-once", "exactly-once")
EXPECTED = {"brpop": "at-most-once", "lmove": "at-least-once", "pubsub": "at-most-once",
            "stream": "at-least-once"}
WHY = {
    "brpop": N_("the lab's BRPOP worker died holding a job and the job was gone: at most once."),
    "lmove": N_("the reaper put the dead worker's job back, and a job done just before a crash would run again: "
                "at least once."),
    "pubsub": N_("the late subscriber never got what was published before it joined: at most once."),
    "stream": N_("the crashed consumer's entries were claimed and processed again, one of them twice: at least once."),
}


def _why_not_guarantee(key: str, got: str) -> str:
    if got == "exactly-once":
        return _("{key!r}: none of these delivers exactly once. A crash between doing the work and "
                 "acknowledging it either loses the message or delivers it again; exactly-once effects "
                 "come from idempotent handlers (q3).", key=key)
    return _("{key!r} is not {got}: {why}", key=key, got=got, why=_(WHY[key]))


def _check_guarantees(answer: Any) -> str:
    expect_choices_per_item(answer, EXPECTED, GUARANTEES, what=_("the guarantee"), first_only=True,
                            explain=_why_not_guarantee)
    return _("Measured, not memorised: the table above shows the counts behind each word.")


q4 = Exercise(
    lab=LAB, qid="q4", title="Name each delivery guarantee",
    checker=_check_guarantees,
    hint_text="Look at the 'lost' and 'duplicates' columns of the table you measured: can a message be lost? "
              "Can it arrive twice?",
    solution_text="answer = {'brpop': 'at-most-once', 'lmove': 'at-least-once',\n"
                  "          'pubsub': 'at-most-once', 'stream': 'at-least-once'}",
    reference=dict(EXPECTED),
    wrong=[
        ({**EXPECTED, "stream": "exactly-once"}, "exactly once"),
        ({**EXPECTED, "brpop": "at-least-once"}, "brpop"),
        ({**EXPECTED, "pubsub": "at-least-once"}, "late subscriber"),
        ({"brpop": "at-most-once"}, "missing"),
    ],
)
