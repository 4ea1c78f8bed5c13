"""Mutation testing of the exercise checkers: `make mutants` (python -m helpers.tools.mutants).

Every exercise whose reference answer is code (a function, a lambda, or a tuple of functions) gets
mutants of that code, made with `ast`: min <-> max, a comparison operator moved to its neighbour or
reversed, an integer constant off by one, a comprehension's `if` filter dropped, the answer replaced by
the constant the reference returned the first time (a hard-coded answer), the first two arguments of a
call swapped, a command swapped for its mirror (zrevrange <-> zrange, lpush <-> rpush, ex= <-> px= ...),
a number scaled x1000 (a unit mistake), an arithmetic operator swapped (+ <-> -, * <-> /), and <-> or, the
condition of an if/while turned around. Each mutant is handed to the exercise's checker as a learner's
answer; a checker must reject it. A mutant that behaves exactly like the reference (an equivalent
mutant) is listed, with why, in data/mutants-equivalent.json; any other accepted mutant is a checker
that can be fooled.
"""

from __future__ import annotations

import argparse
import ast
import copy
import inspect
import json
import logging
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.checks import LABS
from helpers.exercises.core import Exercise

log = logging.getLogger(__name__)

EQUIVALENT_FILE = Path(__file__).resolve().parents[2] / "data" / "mutants-equivalent.json"

CMP_NEIGHBOUR = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                 ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
CMP_REVERSED = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}
CMP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
            ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
# Commands and options a learner confuses with their mirror image (method names, string arguments, keywords).
MIRRORS = {
    "zrevrange": "zrange", "zrange": "zrevrange", "zrangebyscore": "zrevrangebyscore",
    "zrevrangebyscore": "zrangebyscore", "zrevrank": "zrank", "zrank": "zrevrank",
    "lpush": "rpush", "rpush": "lpush", "lpop": "rpop", "rpop": "lpop", "blpop": "brpop", "brpop": "blpop",
    "incr": "decr", "decr": "incr", "incrby": "decrby", "decrby": "incrby", "sadd": "srem", "srem": "sadd",
    "expire": "pexpire", "pexpire": "expire", "setex": "psetex", "psetex": "setex", "ttl": "pttl", "pttl": "ttl",
    "get": "getdel", "delete": "unlink", "hset": "hsetnx", "zadd": "zincrby", "pfadd": "sadd", "pfcount": "scard",
    "LEFT": "RIGHT", "RIGHT": "LEFT", "ZREVRANGE": "ZRANGE", "ZRANGE": "ZREVRANGE", "ex": "px", "px": "ex",
    "nx": "xx", "xx": "nx", "min": "max", "max": "min", "WITHSCORES": "LIMIT",
}


@dataclass
class Mutant:
    mid: str
    description: str
    answer: Any


@dataclass
class Outcome:
    exercise: str  # "09.q2"
    mid: str
    description: str
    status: str  # the checker's verdict: correct (accepted), incorrect, error
    equivalent: str = ""  # why, when data/mutants-equivalent.json lists it

    @property
    def rejected(self) -> bool:
        return self.status != "correct"


@dataclass
class LabScore:
    lab: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0  # how long its mutants took to judge

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def rejected(self) -> int:
        return sum(o.rejected for o in self.outcomes)

    @property
    def equivalent(self) -> int:
        return sum(not o.rejected and bool(o.equivalent) for o in self.outcomes)

    @property
    def survivors(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.rejected and not o.equivalent]


# --- where the reference code is ------------------------------------------------------------------------

def _exercise_calls(module: Any) -> dict[str, ast.Call]:
    """qid -> the `Exercise(...)` call of a lab module's source."""
    tree = ast.parse(inspect.getsource(module))
    calls: dict[str, ast.Call] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Exercise":
            kw = {k.arg: k.value for k in node.keywords}
            if isinstance(kw.get("qid"), ast.Constant):
                calls[kw["qid"].value] = node
    return calls


def _function_node(fn: Callable[..., Any], module: Any, call: ast.Call | None, index: int | None) -> ast.AST | None:
    """The ast of one reference function: its def (from its own source), or the lambda written in the
    Exercise(...) call (element `index` of a tuple)."""
    if getattr(fn, "__code__", None) is None or fn.__code__.co_freevars:
        return None  # a builtin, a bound method of an object, or a closure: no source to recompile on its own
    if fn.__name__ != "<lambda>":
        try:
            node = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
        except (OSError, TypeError, SyntaxError, IndexError):
            log.debug("no source for %r", fn)
            return None
        return node if isinstance(node, ast.FunctionDef) else None
    if call is None:
        return None
    ref = next((k.value for k in call.keywords if k.arg == "reference"), None)
    if isinstance(ref, ast.Tuple) and index is not None:
        ref = ref.elts[index]
    return ref if isinstance(ref, ast.Lambda) else None


def _compile(node: ast.AST, namespace: dict[str, Any]) -> Callable[..., Any]:
    ns = dict(namespace)
    if isinstance(node, ast.Lambda):
        expr = ast.fix_missing_locations(ast.Expression(body=node))
        return eval(compile(expr, "<mutant>", "eval"), ns)  # noqa: S307 (our own reference's code, mutated)
    node = copy.deepcopy(node)
    node.decorator_list = []
    exec(compile(ast.fix_missing_locations(ast.Module(body=[node], type_ignores=[])), "<mutant>", "exec"), ns)  # noqa: S102
    return ns[node.name]


# --- the mutation operators -------------------------------------------------------------------------------

class _Nth(ast.NodeTransformer):
    """Applies `change` to the `target`-th site (0-based) that `change` accepts; counts the sites."""

    def __init__(self, change: Callable[[ast.AST], tuple[ast.AST, str] | None], target: int):
        self.change, self.target, self.seen, self.detail = change, target, 0, ""

    def generic_visit(self, node: ast.AST) -> ast.AST:
        node = super().generic_visit(node)
        probe = self.change(copy.deepcopy(node))
        if probe is not None:
            if self.seen == self.target:
                node, self.detail = probe
            self.seen += 1
        return node


def _snippet(node: ast.AST) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= 70 else text[:67] + "..."


def _minmax(node: ast.AST) -> tuple[ast.AST, str] | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
        old = node.func.id
        node.func.id = "max" if old == "min" else "min"
        return node, f"{old} -> {node.func.id}: `{_snippet(node)}`"
    return None


def _cmp(table: dict[type, type]) -> Callable[[ast.AST], tuple[ast.AST, str] | None]:
    def change(node: ast.AST) -> tuple[ast.AST, str] | None:
        if isinstance(node, ast.Compare) and type(node.ops[0]) in table:
            old = type(node.ops[0])
            node.ops[0] = table[old]()
            return node, f"{CMP_TEXT[old]} -> {CMP_TEXT[table[old]]}: `{_snippet(node)}`"
        return None
    return change


def _int_constant(delta: int) -> Callable[[ast.AST], tuple[ast.AST, str] | None]:
    def change(node: ast.AST) -> tuple[ast.AST, str] | None:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            old = node.value
            node.value = old + delta
            return node, f"{old} -> {node.value}"
        return None
    return change


def _times_1000(node: ast.AST) -> tuple[ast.AST, str] | None:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.value not in (0, 1):
        old = node.value
        node.value = old * 1000
        return node, f"{old} -> {node.value} (x1000)"
    return None


def _drop_if(node: ast.AST) -> tuple[ast.AST, str] | None:
    if isinstance(node, ast.comprehension) and node.ifs:
        dropped = " ".join(_snippet(i) for i in node.ifs)
        node.ifs = []
        return node, f"drops the filter `if {dropped}`"
    return None


def _swap_args(node: ast.AST) -> tuple[ast.AST, str] | None:
    if (isinstance(node, ast.Call) and len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args[:2])
            and ast.dump(node.args[0]) != ast.dump(node.args[1])):
        node.args[0], node.args[1] = node.args[1], node.args[0]
        return node, f"swaps the first two arguments: `{_snippet(node)}`"
    return None


def _mirror(node: ast.AST) -> tuple[ast.AST, str] | None:
    if isinstance(node, ast.Attribute) and node.attr in MIRRORS and isinstance(node.ctx, ast.Load):
        old = node.attr
        node.attr = MIRRORS[old]
        return node, f".{old} -> .{node.attr}"
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in MIRRORS:
        old = node.value
        node.value = MIRRORS[old]
        return node, f"{old!r} -> {node.value!r}"
    if isinstance(node, ast.keyword) and node.arg in MIRRORS:
        old = node.arg
        node.arg = MIRRORS[old]
        return node, f"{old}= -> {node.arg}="
    return None


ARITH = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
         ast.Mod: ast.FloorDiv}
ARITH_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%"}


def _arith(node: ast.AST) -> tuple[ast.AST, str] | None:
    """+ <-> -, * <-> /, // -> /, % -> //: the arithmetic slip. Not where an operand is a string literal
    (building a key name: `-` there only raises TypeError, a mutant no checker needs to catch)."""
    if (isinstance(node, ast.BinOp) and type(node.op) in ARITH
            and not any(isinstance(o, ast.Constant) and isinstance(o.value, str) for o in (node.left, node.right))
            and not any(isinstance(o, ast.JoinedStr) for o in (node.left, node.right))):
        old = type(node.op)
        node.op = ARITH[old]()
        return node, f"{ARITH_TEXT[old]} -> {ARITH_TEXT[ARITH[old]]}: `{_snippet(node)}`"
    return None


def _boolop(node: ast.AST) -> tuple[ast.AST, str] | None:
    if isinstance(node, ast.BoolOp):
        old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return node, f"{old} -> {new}: `{_snippet(node)}`"
    return None


def _negate(node: ast.AST) -> tuple[ast.AST, str] | None:
    """The condition of an if, a while or a conditional expression turned around."""
    if isinstance(node, (ast.If, ast.While, ast.IfExp)):
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
        return node, f"negates the condition `{_snippet(node.test.operand)}`"
    return None


OPERATORS: dict[str, Callable[[ast.AST], tuple[ast.AST, str] | None]] = {
    "minmax": _minmax, "cmp": _cmp(CMP_NEIGHBOUR), "cmprev": _cmp(CMP_REVERSED),
    "int+1": _int_constant(1), "int-1": _int_constant(-1), "dropif": _drop_if,
    "swapargs": _swap_args, "mirror": _mirror, "x1000": _times_1000,
    "arith": _arith, "boolop": _boolop, "negate": _negate,
}


def _body(node: ast.AST) -> list[ast.AST]:
    """The parts of a function that are mutated: its body (not its signature, defaults or docstring)."""
    if isinstance(node, ast.Lambda):
        return [node.body]
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    return body


def _mutated_trees(node: ast.AST) -> Iterator[tuple[str, str, ast.AST]]:
    for name, change in OPERATORS.items():
        k = 0
        while True:
            tree = copy.deepcopy(node)
            nth = _Nth(change, k)
            # A site may be a part itself (a lambda's whole body, an `if` statement): keep what visit returns.
            if isinstance(tree, ast.Lambda):
                tree.body = nth.visit(tree.body)
            else:
                first = len(tree.body) - len(_body(tree))  # after the docstring
                tree.body[first:] = [nth.visit(part) for part in tree.body[first:]]
            if k >= nth.seen:
                break
            yield f"{name}-{k + 1}", nth.detail, tree
            k += 1


# --- the mutants of each exercise ---------------------------------------------------------------------------

def _replayed(ex: Exercise, fn: Callable[..., Any]) -> Any:
    """The first value `fn` returned while the checker checked it (None if the check never called it)."""
    seen: list[Any] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        value = fn(*args, **kwargs)
        seen.append(value)
        return value

    try:
        spy.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        pass
    ex.evaluate(spy)
    return seen[0] if seen else None


def mutants_of(ex: Exercise, module: Any, call: ast.Call | None) -> list[Mutant]:
    ref = ex.reference
    parts = list(ref) if isinstance(ref, tuple) else [ref]
    if not parts or not all(callable(p) for p in parts):
        return []
    found: list[Mutant] = []
    for i, fn in enumerate(parts):
        prefix = f"{i + 1}." if len(parts) > 1 else ""
        node = _function_node(fn, module, call, i if len(parts) > 1 else None)
        if node is None:
            continue

        def answer(mutated: Callable[..., Any], i: int = i) -> Any:
            if len(parts) == 1:
                return mutated
            return tuple(mutated if j == i else p for j, p in enumerate(parts))

        for mid, detail, tree in _mutated_trees(node):
            try:
                mutated = _compile(tree, fn.__globals__)
            except (SyntaxError, TypeError, ValueError) as exc:
                log.debug("mutant %s of %s does not compile: %s", mid, ex, exc)
                continue
            found.append(Mutant(prefix + mid, detail, answer(mutated)))
        if len(parts) == 1:
            if ex.setup:
                ex.setup()
            constant = _replayed(ex, fn)

            def fixed(*args: Any, _value: Any = constant, **kwargs: Any) -> Any:
                return _value

            found.append(Mutant(prefix + "const-1", f"returns a constant, {_snippet(ast.Constant(repr(constant)))[:60]} "
                                "(the value the reference returned first)", fixed))
    return found


def load_equivalent(path: Path = EQUIVALENT_FILE) -> dict[str, dict[str, str]]:
    """exercise ("09.q2") -> mutant id -> why that mutant is equivalent to the reference."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def run(labs: list[str] | None = None, *, progress: Callable[[str], None] | None = None) -> list[LabScore]:
    """Every mutant of every reference answer (of `labs`, e.g. ["09", "13"], or all), judged by its checker."""
    equivalent = load_equivalent()
    scores: list[LabScore] = []
    for module in LABS:
        calls = _exercise_calls(module)
        exercises = [v for v in vars(module).values() if isinstance(v, Exercise)]
        if not exercises or (labs and exercises[0].lab not in labs):
            continue
        score = LabScore(exercises[0].lab)
        started = time.monotonic()
        for ex in sorted(exercises, key=lambda e: e.qid):
            if ex.make_reference is not None:
                continue
            mutants = mutants_of(ex, module, calls.get(ex.qid))
            if not mutants:
                continue
            if ex.setup:
                ex.setup()
            key = f"{ex.lab}.{ex.qid}"
            for m in mutants:
                status = ex.evaluate(m.answer).status
                why = equivalent.get(key, {}).get(m.mid, "")
                score.outcomes.append(Outcome(key, m.mid, m.description, status, why))
                if progress and status == "correct" and not why:
                    progress(f"  accepted: {key} {m.mid}: {m.description}")
        score.seconds = time.monotonic() - started
        scores.append(score)
        if progress:
            progress(line(score))
    return scores


def line(score: LabScore) -> str:
    return (f"lab{score.lab}: {score.rejected}/{score.total} rejected, {score.equivalent} equivalent, "
            f"{len(score.survivors)} accepted wrongly ({score.seconds:.0f} s)")


def summary(scores: list[LabScore]) -> tuple[int, int, int, int]:
    """(rejected, total, equivalent, survivors) over `scores`."""
    return (sum(s.rejected for s in scores), sum(s.total for s in scores), sum(s.equivalent for s in scores),
            sum(len(s.survivors) for s in scores))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.tools.mutants", description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="*", help="lab numbers (e.g. 09 13); all labs when none")
    parser.add_argument("--json", help="also write every outcome to this file")
    args = parser.parse_args(argv)
    started = time.monotonic()
    scores = run([lab.zfill(2) for lab in args.labs] or None, progress=lambda s: print(s, flush=True))
    rejected, total, equivalent, survivors = summary(scores)
    print(f"total: {rejected}/{total} rejected, {equivalent} equivalent, {survivors} accepted wrongly "
          f"({time.monotonic() - started:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps([o.__dict__ for s in scores for o in s.outcomes], indent=1))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
