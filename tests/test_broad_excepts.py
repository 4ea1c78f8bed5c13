"""Failures are logged, never swallowed: few broad excepts in helpers/, and each one logs what it
caught or raises it on (read from the source with ast, so a new one is counted the day it is written)."""

from __future__ import annotations

import ast
from pathlib import Path

import helpers

ROOT = Path(helpers.__file__).parent
LIMIT = 40


def _broad(handler: ast.ExceptHandler) -> bool:
    names = [handler.type] if not isinstance(handler.type, ast.Tuple) else handler.type.elts
    return handler.type is None or any(isinstance(n, ast.Name) and n.id in ("Exception", "BaseException")
                                       for n in names)


def _logs_or_raises(handler: ast.ExceptHandler) -> bool:
    for node in ast.walk(ast.Module(body=handler.body, type_ignores=[])):
        if isinstance(node, ast.Raise):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value  # log.x(...), logger.x(...), self.log.x(...)
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if name in ("log", "logger", "logging"):
                return True
    return False


def _handlers() -> list[tuple[str, ast.ExceptHandler]]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ExceptHandler) and _broad(node):
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return found


def test_at_most_forty_broad_excepts():
    assert len(_handlers()) <= LIMIT, [where for where, _ in _handlers()]


def test_every_broad_except_logs_or_raises():
    assert [where for where, h in _handlers() if not _logs_or_raises(h)] == []
