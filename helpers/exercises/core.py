"""Checked exercises in the learntools style: `q1.check(answer)`, `q1.hint()`, `q1.solution()`.

A checker is a plain function that raises `Wrong("what is wrong, in the learner's words")`.
The framework turns everything else (a learner's function that crashes, a wrong type, an
unanswered `...`) into a sentence, never a traceback, and records progress per learner.
Each exercise carries its reference answer and typical wrong answers, so the test suite proves
the checker accepts the right answer and rejects the wrong ones with the expected feedback.
"""

from __future__ import annotations

import html
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from helpers.exercises import share
from helpers.runtime import i18n, state
from helpers.runtime.i18n import N_, translator

NOT_ANSWERED = ...  # the placeholder learners replace: `answer = ...`
PROGRESS = "progress.json"
TIME_BUDGET = 20.0  # seconds the learner's functions may take in all, during one check
MAX_FEEDBACK = 2000  # characters of feedback at most (a learner's value is never echoed in full)
log = logging.getLogger(__name__)
_ = translator(__name__)


def _stub(*args: Any, **kwargs: Any) -> None:
    ...


def is_stub(answer: Any) -> bool:
    """True for a learner's function whose body is still just `...` (or `pass`): not answered yet."""
    code = getattr(answer, "__code__", None)
    if code is None or getattr(answer, "__name__", "") == "<lambda>":
        return False
    return code.co_code == _stub.__code__.co_code and not code.co_names


def is_unanswered(answer: Any) -> bool:
    """True while the notebook's placeholder is still there: `...`, a stub function, or a dict, list,
    tuple or set that still holds a `...` or a stub (e.g. `{"a": ..., "b": ...}` or `(put, fetch)`)."""
    if answer is NOT_ANSWERED or is_stub(answer):
        return True
    if isinstance(answer, dict):
        return any(is_unanswered(v) for v in answer.values())
    if isinstance(answer, (list, tuple, set, frozenset)):
        return any(is_unanswered(v) for v in answer)
    return False


class Wrong(Exception):
    """Raised by a checker: the message is shown to the learner as is."""


@dataclass
class Result:
    status: str  # correct | incorrect | unanswered | error
    message: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __bool__(self) -> bool:
        return self.correct


@dataclass
class Exercise:
    lab: str
    qid: str
    title: str
    checker: Callable[[Any], str | None]
    hint_text: str
    solution_text: str
    reference: Any = None
    wrong: list[tuple[Any, str]] = field(default_factory=list)
    also_right: list[Any] = field(default_factory=list)  # other answers that are right too (tests prove it)
    setup: Callable[[], None] | None = None  # prepares live state the reference relies on (tests)
    make_reference: Callable[[], Any] | None = None  # when the right answer depends on live state

    def reference_answer(self) -> Any:
        """The right answer (computed from live state when it depends on it)."""
        if self.setup:
            self.setup()
        return self.make_reference() if self.make_reference else self.reference

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(self, answer: Any = NOT_ANSWERED) -> Result:
        """Check without printing or recording (what the tests call). The whole check runs within the time
        budget (see `within_budget`): the learner's functions and every use of the learner's value (its
        repr, str, comparisons, the feedback that quotes it)."""
        return within_budget(lambda: self._evaluate(answer), TIME_BUDGET)

    # --- the learner's language --------------------------------------------------------------
    @property
    def domain(self) -> str:
        """The catalogue of the module that defines the exercise (`checks.lab03` for lab "03")."""
        return f"checks.lab{self.lab}"

    def text(self, message: str) -> str:
        """One of the exercise's texts (title, hint, solution) in the learner's language."""
        return i18n.gettext(message, self.domain) if message else message

    @property
    def shown_title(self) -> str:
        return self.text(self.title)

    def _evaluate(self, answer: Any) -> Result:
        if is_unanswered(answer):
            return Result("unanswered", _("{title}: not answered yet. Replace every `...` with your answer and run "
                                          "the cell again (`{qid}.hint()` gives a hint).",
                                          title=self.shown_title, qid=self.qid))
        try:
            extra = self.checker(answer)
        except Wrong as exc:
            return Result("incorrect", clip(str(exc), MAX_FEEDBACK))
        except LearnerCodeError as exc:
            return Result("incorrect", clip(str(exc), MAX_FEEDBACK))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a malformed answer the checker did not foresee; SystemExit too
            log.debug("checker of %s failed on the answer", self.qid, exc_info=True)  # the learner reads why
            return Result("error", clip(_("Your answer could not be checked: {error}. Check its type and shape "
                                          "against the question.", error=describe_exception(exc)), MAX_FEEDBACK))
        return Result("correct", clip(f"{_(CORRECT)} {extra}" if extra else _(CORRECT), MAX_FEEDBACK))

    def check(self, answer: Any = NOT_ANSWERED) -> Result:
        """Check an answer, show the feedback and record progress."""
        result = self.evaluate(answer)
        if result.status != "unanswered":
            record(self.lab, self.qid, result.status)
        show(result)
        return _Quiet(result)

    def hint(self) -> None:
        show(Result("hint", self.text(self.hint_text)))

    def solution(self) -> None:
        show(Result("solution", self.text(self.solution_text)))

    def __repr__(self) -> str:
        return f"<Exercise {self.lab}.{self.qid}: {self.title}>"


class _Quiet(Result):
    """A Result that prints nothing when it is the last value of a cell (the feedback was shown)."""

    def __init__(self, result: Result):
        super().__init__(result.status, result.message)

    def __repr__(self) -> str:
        return ""

    def _repr_html_(self) -> str:
        return ""

    def _ipython_display_(self) -> None:
        """Nothing to show: without this, IPython would add an empty `Out[n]:` line under the feedback."""


COLOURS = {"correct": "#1a7f37", "incorrect": "#cf222e", "error": "#cf222e", "unanswered": "#9a6700",
           "hint": "#0969da", "solution": "#8250df"}
LABELS = {"correct": N_("Correct"), "incorrect": N_("Not yet"), "error": N_("Not yet"),
          "unanswered": N_("Not answered"), "hint": N_("Hint"), "solution": N_("Solution")}
CORRECT = N_("Correct!")  # how a right answer's feedback begins


CODE_SPAN = re.compile(r"`([^`\n]+)`")


def feedback_html(label: str, message: str, status: str) -> str:
    """The feedback box as HTML: every character of `message` escaped (a learner's value is never markup),
    then `code` spans of the Markdown the messages are written in shown as <code>. A solution is code,
    shown as written in a <pre>."""
    colour = COLOURS.get(status, "#57606a")
    body = html.escape(message)
    if status == "solution":
        text = f'<pre style="white-space:pre-wrap;margin:4px 0 0">{body}</pre>'
    else:
        body = CODE_SPAN.sub(r"<code>\1</code>", body)  # backticks survive html.escape; the span is escaped
        text = f'<span style="white-space:pre-wrap">{body}</span>'
    return (f'<div style="border-left:4px solid {colour};padding:4px 10px">'
            f'<b style="color:{colour}">{html.escape(label)}</b> {text}</div>')


def show(result: Result) -> None:
    """Feedback as a coloured box in a notebook (Markdown's `code` spans rendered), plain text elsewhere."""
    label, message = _(LABELS[result.status]) + ":" if result.status in LABELS else ":", result.message
    exclaimed = _(CORRECT) if result.status == "correct" else label[:-1] + "!"
    if message.startswith(exclaimed):  # "Correct! ..." says it already: not "Correct: Correct! ..."
        label = exclaimed
        message = message[len(label):].lstrip()
    plain = f"{label} {message}".rstrip()
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({"text/html": feedback_html(label, message, result.status), "text/plain": plain}, raw=True)
            return
    except ImportError:
        pass
    print(plain)


# --- progress -------------------------------------------------------------------------------------

PROGRESS_LOST = N_("Your recorded progress starts afresh; the old file is kept under that name.")


def progress_problem(data: Any) -> str | None:
    """What is wrong with the shape of progress.json, or None."""
    if not isinstance(data, dict):
        return f"a {type(data).__name__} instead of an object of labs"
    for lab, items in data.items():
        if not isinstance(items, dict):
            return f"lab {lab!r} is a {type(items).__name__}, not an object of exercises"
        for qid, entry in items.items():
            if (not isinstance(entry, dict) or not isinstance(entry.get("status"), str)
                    or not isinstance(entry.get("attempts", 0), int)):
                return f"exercise {lab}.{qid} is not a record of attempts and status"
    return None


# Exercises renumbered in the order they appear (progress format 2): old qid -> new qid, per lab.
# None: the question itself changed, so an old answer says nothing about the new one.
RENUMBERED: dict[str, dict[str, str | None]] = {
    "02": {"q2": "q3", "q3": "q4", "q4": "q2"},
    "09": {"q2": "q3", "q3": None, "q4": "q2"},
    "10": {"q3": "q4", "q4": "q3"},
    "11": {"q1": "q2", "q2": "q3", "q3": "q1"},
    "13": {"q1": "q3", "q3": "q1"},
}
PROGRESS_FORMAT = 2
FORMAT_FILE = "progress.format"


def _migrated(data: dict[str, Any]) -> dict[str, Any]:
    """A progress file of format 1 with its entries moved to today's question numbers."""
    out = dict(data)
    for lab, moves in RENUMBERED.items():
        entries = data.get(lab)
        if not isinstance(entries, dict):
            continue
        out[lab] = {q: e for q, e in entries.items() if q not in moves}
        out[lab].update({moves[q]: e for q, e in entries.items() if moves.get(q)})
    return out


def _format() -> int:
    try:
        return int((state.home() / FORMAT_FILE).read_text().strip())
    except (OSError, ValueError):
        return 1


def _load() -> dict[str, dict[str, dict[str, Any]]]:
    return state.read_json(state.home() / PROGRESS, {}, progress_problem, _(PROGRESS_LOST))


def _read_progress() -> dict[str, Any]:
    """progress.json (set aside if damaged), migrated once if an earlier release wrote it (call with
    the state lock held)."""
    path, marker = state.home() / PROGRESS, state.home() / FORMAT_FILE
    data = _load()
    if _format() < PROGRESS_FORMAT:
        if data:
            data = _migrated(data)
            state.write_json(path, data)
        marker.write_text(f"{PROGRESS_FORMAT}\n")
    return data


def record(lab: str, qid: str, status: str) -> None:
    path = state.home() / PROGRESS
    with state.locked():
        data = _read_progress()
        entry = data.setdefault(lab, {}).setdefault(qid, {"attempts": 0, "status": "unanswered"})
        entry["attempts"] = entry.get("attempts", 0) + 1
        entry["last"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        if status == "correct":
            entry.setdefault("solved_at", entry["last"])
            entry["status"] = "correct"
        elif entry["status"] != "correct":
            entry["status"] = "attempted"
        state.write_json(path, data)
    share.update_if_opted_in(data)


def progress() -> dict[str, dict[str, dict[str, Any]]]:
    if _format() >= PROGRESS_FORMAT:
        return _load()
    with state.locked():
        return _read_progress()


# --- turning errors into sentences ----------------------------------------------------------------

class LearnerCodeError(Exception):
    """The learner's own function raised: report it as feedback, not as a crash."""


def clip(text: str, limit: int = 80) -> str:
    """`text`, cut to `limit` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + _("… ({count:,} more characters)", count=len(text) - limit)


def shown(value: Any, limit: int = 80) -> str:
    """repr(value) for feedback, never longer than about `limit` characters."""
    if isinstance(value, (str, bytes)) and len(value) > 4 * limit:
        value = value[: 2 * limit]  # no full repr of a huge string just to cut it
        return clip(repr(value), limit)
    try:
        text = repr(value)
    except Exception:  # a learner's object whose __repr__ fails, whatever it raises: its type names it
        log.debug("repr() of a %s failed", type(value).__name__, exc_info=True)
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


def describe_exception(exc: BaseException) -> str:
    name = type(exc).__name__
    text = clip(str(exc).strip(), 300)
    return f"{name}: {text}" if text else name


class _Budget:
    """The time left for the learner's functions in one check, and the thread that runs them.

    A learner's function runs on a worker thread while the checker waits for it until the
    deadline; past it, the check ends with feedback and the worker is abandoned (a daemon thread:
    it cannot hold the kernel, and every later call in that check is refused at once)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.jobs: queue.Queue = queue.Queue()
        self.worker: threading.Thread | None = None
        self.expired = False
        self.check_thread: threading.Thread | None = None  # the thread a whole check runs on (within_budget)
        self.paused = 0  # inside outside_budget: the deadline does not run out meanwhile
        self.doing = _(CHECKING)  # what is running now, for the feedback past the deadline

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            fn, args, kwargs, box, done = job
            try:
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the checker's thread, which raises it
                log.debug("learner code in the runner thread raised %s", type(exc).__name__)
                box["error"] = exc
            done.set()

    def run(self, fn: Callable[..., Any], args: tuple, kwargs: dict, what: str) -> Any:
        remaining = self.deadline - time.monotonic()
        if self.expired or remaining <= 0:
            self.expired = True
            raise LearnerCodeError(self.too_slow(what))
        if threading.current_thread() is self.check_thread:  # the whole check is already timed: call it here
            self.doing = what
            try:
                return fn(*args, **kwargs)
            finally:
                self.doing = _(CHECKING)
        if self.worker is None:
            self.worker = threading.Thread(target=self._work, name="learner-code", daemon=True)
            self.worker.start()
        box: dict[str, Any] = {}
        done = threading.Event()
        self.jobs.put((fn, args, kwargs, box, done))
        if not done.wait(remaining):
            self.expired = True
            raise LearnerCodeError(self.too_slow(what))
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def too_slow(self, what: str) -> str:
        return _("{What} took more than {seconds:g} s in this check, so the check stopped waiting. Look for a "
                 "sleep, a blocking call without a timeout, or a loop that never ends, then run the cell again.",
                 What=_capital(what), seconds=self.seconds)

    def close(self) -> None:
        if self.worker is not None and not self.expired:
            self.jobs.put(None)


_budget = threading.local()
CHECKING = N_("checking your answer")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


class time_budget:  # noqa: N801 (used as a context manager, like a function)
    """Within this block, learner functions called through `call_learner` share `seconds`."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self) -> _Budget:
        self.outer = getattr(_budget, "current", None)
        _budget.current = self.budget = _Budget(self.seconds)
        return self.budget

    def __exit__(self, *exc: Any) -> None:
        self.budget.close()
        _budget.current = self.outer


class outside_budget:  # noqa: N801 (used as a context manager, like a function)
    """Within this block, time the checker spends for the learner (creating a resource the check needs)
    is not counted against the time budget of the learner's functions."""

    def __enter__(self) -> None:
        self.started = time.monotonic()
        self.budget: _Budget | None = getattr(_budget, "current", None)
        if self.budget is not None:
            self.budget.paused += 1

    def __exit__(self, *exc: Any) -> None:
        if self.budget is not None:
            self.budget.deadline += time.monotonic() - self.started
            self.budget.paused -= 1


def _children() -> set[tuple[int, float]]:
    """(pid, start time) of every process this one started and that still runs."""
    out = set()
    for child in psutil.Process().children(recursive=True):
        try:
            out.add((child.pid, state.started(child)))
        except psutil.Error:
            continue
    return out


def _end_children_since(before: set[tuple[int, float]]) -> None:
    """End the processes started during a check (a learner's function that forked) that the lab did not
    start itself (its engines are in the state directory's ledger of processes)."""
    new = _children() - before
    if not new:
        return
    try:
        from helpers.runtime import process as lab_process

        ours = {(i.pid, i.create_time) for i in lab_process.ledger()}
    except (state.LabError, OSError):  # no state directory: nothing of the lab's to spare
        log.debug("no ledger of the lab's processes", exc_info=True)
        ours = set()
    for pid, created in new:
        if any(pid == p and abs(created - c) < 0.01 for p, c in ours):
            continue
        try:
            proc = psutil.Process(pid)
            if abs(state.started(proc) - created) < 0.01:
                proc.kill()
                proc.wait(2)
        except (psutil.Error, OSError):
            continue


def within_budget(job: Callable[[], Result], seconds: float) -> Result:
    """`job()` (a whole check) on its own thread, waited for until the budget runs out (time spent inside
    `outside_budget` does not count); past it, feedback says what took too long and the thread is abandoned
    (a daemon thread; every later call of a learner's function in it is refused). Processes started
    meanwhile (a learner's function that forked) end with the check."""
    budget = _Budget(seconds)
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        _budget.current = budget
        try:
            box["value"] = job()
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt from the learner's code: raised again below
            log.debug("the checked job raised %s", type(exc).__name__)
            box["error"] = exc
        finally:
            budget.close()
            done.set()

    before = _children()
    budget.check_thread = threading.Thread(target=work, name="check", daemon=True)
    try:
        budget.check_thread.start()
        while not done.is_set():
            if budget.paused:
                done.wait(0.05)
                continue
            left = budget.deadline - time.monotonic()
            if left <= 0:
                break
            done.wait(min(left, 0.25))
    finally:
        if not done.is_set():
            budget.expired = True
        _end_children_since(before)
    if not done.is_set():
        return Result("incorrect", budget.too_slow(budget.doing))
    if "error" in box:
        raise box["error"]
    return box["value"]


def call_learner(fn: Any, *args: Any, what: str | None = None, **kwargs: Any) -> Any:
    """Call a learner's function; if it crashes (even with SystemExit) or takes longer than the
    check's time budget, say so in a sentence (`what`: "your function" unless told)."""
    what = _("your function") if what is None else what
    if not callable(fn):
        raise Wrong(_("Expected {what} to be a function (def ...), but got {value}.", what=what, value=type_name(fn)))
    budget: _Budget | None = getattr(_budget, "current", None)
    try:
        if budget is None:
            return fn(*args, **kwargs)
        return budget.run(fn, args, kwargs, what)
    except (Wrong, LearnerCodeError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # whatever the learner's code raised becomes feedback that names it
        log.debug("%s raised", what, exc_info=True)
        raise LearnerCodeError(_("{What} raised {error}.", What=_capital(what),
                                 error=describe_exception(exc))) from None


def type_name(value: Any) -> str:
    return _("a {type} ({value})", type=type(value).__name__, value=shown(value, 60))


# --- small assertion helpers that speak to learners ---------------------------------------------

TYPE_WORDS = {int: N_("a whole number (int)"), float: N_("a number"), str: N_("a string (str)"), list: N_("a list"),
              dict: N_("a dictionary (dict)"), bool: N_("True or False"), tuple: N_("a tuple"), set: N_("a set")}
YOUR_ANSWER = N_("your answer")  # what an expectation names when the checker does not say


def expect_type(value: Any, types: type | tuple[type, ...], what: str | None = None) -> None:
    what = _(YOUR_ANSWER) if what is None else what
    types_t = types if isinstance(types, tuple) else (types,)
    is_sneaky_bool = isinstance(value, bool) and bool not in types_t  # True is an int in Python
    if isinstance(value, types_t) and not is_sneaky_bool:
        return
    words = _(" or ").join(_(TYPE_WORDS[t]) if t in TYPE_WORDS else t.__name__ for t in types_t)
    raise Wrong(_("Expected {what} to be {words}, but it is {value}.", what=what, words=words,
                  value=type_name(value)))


def expect_number(value: Any, what: str | None = None) -> float:
    what = _(YOUR_ANSWER) if what is None else what
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Wrong(_("Expected {what} to be a number, but it is {value}.", what=what, value=type_name(value)))
    return float(value)


def expect_keys(value: Any, keys: Iterable[str], what: str | None = None) -> Mapping[str, Any]:
    what = _(YOUR_ANSWER) if what is None else what
    expect_type(value, dict, what)
    missing = [k for k in keys if k not in value]
    if missing:
        raise Wrong(_("{What} is missing the key(s) {keys}.", What=_capital(what), keys=", ".join(map(repr, missing))))
    return value


def expect_equal(value: Any, expected: Any, what: str | None = None, why: str = "") -> None:
    what = _(YOUR_ANSWER) if what is None else what
    if value != expected:
        raise Wrong(_("{What} is {value}, which is not right.", What=_capital(what), value=shown(value))
                    + (" " + why if why else ""))


def expect_choice(value: Any, choices: Iterable[str], what: str | None = None) -> str:
    what = _(YOUR_ANSWER) if what is None else what
    options = list(choices)
    if not isinstance(value, str):
        raise Wrong(_("Expected {what} to be one of {choices} (a string), but it is {value}.", what=what,
                      choices=", ".join(map(repr, options)), value=type_name(value)))
    norm = value.strip().lower()
    for option in options:
        if norm == option.lower():
            return option
    raise Wrong(_("{value} is not one of the choices: {choices}.", value=shown(value),
                  choices=", ".join(map(repr, options))))



def expect_choices_per_item(answer: Any, table: Mapping[str, str], choices: Iterable[str], *,
                            explain: Callable[[str, str], str], aliases: Mapping[str, str] | None = None,
                            what: str | None = None, noun: str = "", first_only: bool = False) -> dict[str, str]:
    """Check a dict item -> choice against `table` (item -> right choice), all items at once.

    A value that is not a string or not one of `choices` (after `aliases`, keyed by the lowercased
    value) is reported at once as "For 'item': ...". Every wrong choice gets `explain(item, chosen)`
    and they are raised together as one Wrong: "2 of 7 [noun ]are not the best fit. ... | ...";
    with `first_only`, the first wrong item's explanation alone is raised, in table order.
    Returns item -> chosen option when all are right.
    """
    what = _("the choice") if what is None else what
    options = list(choices)
    expect_keys(answer, table, _("your dict"))
    chosen: dict[str, str] = {}
    wrong: list[str] = []
    for item, right in table.items():
        value = answer[item]
        if aliases and isinstance(value, str):
            value = aliases.get(value.strip().lower(), value)
        try:
            chosen[item] = expect_choice(value, options, _("{what} for {item!r}", what=what, item=item))
        except Wrong as exc:
            raise Wrong(_("For {item}: {error}", item=shown(item), error=exc)) from None
        if chosen[item] != right:
            if first_only:
                raise Wrong(explain(item, chosen[item]))
            wrong.append(explain(item, chosen[item]))
    if wrong:
        n, total, noun = len(wrong), len(table), noun + " " if noun else ""
        counted = (_("{wrong} of {total} {noun}is not the best fit.", wrong=n, total=total, noun=noun) if n == 1
                   else _("{wrong} of {total} {noun}are not the best fit.", wrong=n, total=total, noun=noun))
        raise Wrong(counted + " " + " | ".join(wrong))
    return chosen
