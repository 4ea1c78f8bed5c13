"""The Spanish edition of the labs, built from the English notebooks and one catalogue per lab.

    python -m helpers.tools.translate build [03]   # writes labs/es/*.ipynb from labs/*.ipynb + i18n/es/*.json
    python -m helpers.tools.translate check        # what is missing, stale or out of date (exit 1 if anything)
    python -m helpers.tools.translate todo 03      # the cells of lab 03 still to translate, with their English
    python -m helpers.tools.translate po checks.lab03   # (re)writes helpers/locale/es/checks.lab03.po: every
                                                   # message of the module, translations kept, empty ones to fill

A catalogue (i18n/<lang>/<notebook stem>.json) maps cell ids to translations:

    {"lab": "03_database_caching",
     "cells": {"cell-000": {"en": "<hash of the English source>", "text": "<the translated source>"}}}

Every markdown cell has an entry. A code cell has one only when its comments or the text it prints
change; the translated code must be the same code (compared as Python syntax trees with comments
dropped and string constants blanked, and IPython `%`/`!` lines compared verbatim). `en` is the
first 16 hex digits of the SHA-256 of the English cell's source: when the English cell changes, its
translation is stale and `check` (and tests/test_translation.py) says so until it is updated.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
LABS = ROOT / "labs"
I18N = ROOT / "i18n"
LANGS = ("es",)
MARKER = ".lab-lang"  # helpers.runtime.i18n reads it: the edition's folder speaks its language


def source(cell: dict[str, Any]) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def cell_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def english_labs() -> list[Path]:
    return sorted(LABS.glob("[0-9][0-9]_*.ipynb"))


def catalogue_file(stem: str, lang: str = "es") -> Path:
    return I18N / lang / f"{stem}.json"


def edition_dir(lang: str = "es") -> Path:
    return LABS / lang


def load_notebook(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def load_catalogue(stem: str, lang: str = "es") -> dict[str, Any]:
    path = catalogue_file(stem, lang)
    if not path.is_file():
        return {"lab": stem, "cells": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def save_catalogue(stem: str, cat: dict[str, Any], lang: str = "es") -> Path:
    """Writes the catalogue with its cells in the notebook's order (readable diffs)."""
    order = {c.get("id"): i for i, c in enumerate(load_notebook(LABS / f"{stem}.ipynb")["cells"])}
    cells = dict(sorted(cat["cells"].items(), key=lambda kv: order.get(kv[0], len(order))))
    path = catalogue_file(stem, lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"lab": stem, "cells": cells}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


# --- the same code --------------------------------------------------------------------------------

_MAGIC = re.compile(r"^\s*[%!]")


class _Blank(ast.NodeTransformer):
    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        """An f-string: its expressions, in order (the text around them may be reworded and reordered)."""
        node.values = [self.visit(v) for v in node.values if isinstance(v, ast.FormattedValue)]
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, str):
            return ast.copy_location(ast.Constant(value=""), node)
        return node


def code_shape(text: str) -> tuple[str, list[str]]:
    """What must not change in a translated code cell: its syntax tree (comments dropped, strings
    blanked) and its IPython magic lines."""
    magics = [line.strip() for line in text.splitlines() if _MAGIC.match(line)]
    plain = "\n".join("pass" if _MAGIC.match(line) else line for line in text.splitlines())
    try:
        tree = ast.parse(plain)
    except SyntaxError as exc:
        return f"unparsable: {exc.msg} (line {exc.lineno})", magics
    return ast.dump(_Blank().visit(tree), include_attributes=False), magics


def same_code(english: str, translated: str) -> bool:
    return code_shape(english) == code_shape(translated)


# --- building ---------------------------------------------------------------------------------------

_UP = re.compile(r"\]\((\.\./)")


def localise_links(text: str) -> str:
    """The edition lives one folder down: `](../docs/x.md)` becomes `](../../docs/x.md)`."""
    return _UP.sub("](../../", text)


def problems(stem: str, lang: str = "es") -> list[str]:
    """What keeps lab `stem` from being built in `lang`: missing, stale, orphan or changed-code entries."""
    nb = load_notebook(LABS / f"{stem}.ipynb")
    cells = load_catalogue(stem, lang)["cells"]
    found = []
    ids = set()
    for c in nb["cells"]:
        cid = c.get("id")
        ids.add(cid)
        text = source(c)
        entry = cells.get(cid)
        if entry is None:
            if c["cell_type"] == "markdown" and text.strip():
                found.append(f"{stem} {cid}: markdown cell not translated")
            continue
        if entry.get("en") != cell_hash(text):
            found.append(f"{stem} {cid}: stale (the English cell changed since it was translated)")
        elif not entry.get("text", "").strip():
            found.append(f"{stem} {cid}: empty translation")
        elif c["cell_type"] == "code" and not same_code(text, entry["text"]):
            found.append(f"{stem} {cid}: the translated code cell is not the same code (only comments and "
                         "strings may change)")
    found += [f"{stem} {cid}: no such cell in the English notebook" for cid in cells if cid not in ids]
    return found


def build(stem: str, lang: str = "es") -> dict[str, Any]:
    """The notebook of lab `stem` in `lang` (raises ValueError while the catalogue has problems)."""
    found = problems(stem, lang)
    if found:
        raise ValueError(f"{len(found)} problem(s) in {catalogue_file(stem, lang).relative_to(ROOT)}: {found[0]}")
    nb = copy.deepcopy(load_notebook(LABS / f"{stem}.ipynb"))
    cells = load_catalogue(stem, lang)["cells"]
    for c in nb["cells"]:
        entry = cells.get(c.get("id"))
        text = entry["text"] if entry else source(c)
        if c["cell_type"] == "markdown":
            text = localise_links(text)
        lines = text.splitlines(keepends=True)
        c["source"] = lines
    nb.setdefault("metadata", {})["elasticache_lab"] = {"lang": lang, "english": f"../{stem}.ipynb"}
    return nb


def render(nb: dict[str, Any]) -> str:
    return json.dumps(nb, ensure_ascii=False, indent=1) + "\n"


def build_all(lang: str = "es", stems: list[str] | None = None) -> tuple[list[Path], list[str]]:
    """Writes the edition's notebooks (of `stems`, or all); a lab whose catalogue has problems is
    skipped and its problems returned."""
    out = edition_dir(lang)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(f"{lang}\n")
    written, skipped = [], []
    for path in english_labs():
        if stems is not None and path.stem not in stems:
            continue
        found = problems(path.stem, lang)
        if found:
            skipped += found
            continue
        target = out / path.name
        text = render(build(path.stem, lang))
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written, skipped


def check_all(lang: str = "es") -> list[str]:
    """Every problem of the edition: catalogue entries, and generated notebooks not up to date."""
    found: list[str] = []
    out = edition_dir(lang)
    if not (out / MARKER).is_file():
        found.append(f"{out.relative_to(ROOT)}/{MARKER} is missing (python -m helpers.tools.translate build)")
    stems = {p.stem for p in english_labs()}
    for path in english_labs():
        lab_problems = problems(path.stem, lang)
        found += lab_problems
        if lab_problems:
            continue
        target = out / path.name
        if not target.is_file() or target.read_text(encoding="utf-8") != render(build(path.stem, lang)):
            found.append(f"{target.relative_to(ROOT)} is not up to date (python -m helpers.tools.translate build)")
    found += [f"{p.relative_to(ROOT)}: no English lab of that name" for p in sorted(out.glob("*.ipynb"))
              if p.stem not in stems]
    return found


def todo(stem: str, lang: str = "es") -> list[dict[str, str]]:
    """The cells of `stem` still to translate (missing or stale), with their English source and hash."""
    nb = load_notebook(LABS / f"{stem}.ipynb")
    cells = load_catalogue(stem, lang)["cells"]
    rows = []
    for c in nb["cells"]:
        text = source(c)
        entry = cells.get(c.get("id"))
        if entry is not None and entry.get("en") == cell_hash(text):
            continue
        if entry is None and (c["cell_type"] != "markdown" or not text.strip()):
            continue  # code cells are translated only when their comments or printed text matter
        rows.append({"id": c["id"], "type": c["cell_type"], "en": cell_hash(text), "english": text,
                     "was": (entry or {}).get("text", "")})
    return rows


# --- messages (gettext catalogues) ------------------------------------------------------------------

HELPERS = ROOT / "helpers"
KEYWORDS = {"_": None, "N_": None}


def module_file(domain: str) -> Path:
    return HELPERS.joinpath(*domain.split(".")).with_suffix(".py")


def code_messages(domain: str) -> list[str]:
    """The messages of one module: the literal first arguments of its `_()` and `N_()` calls, and the
    title, hint and solution of every exercise it defines."""
    from babel.messages.extract import extract_python

    found: list[str] = []
    with module_file(domain).open("rb") as f:
        for _lineno, _func, message, _comments in extract_python(f, KEYWORDS, [], {}):
            text = message[0] if isinstance(message, tuple) else message
            if text and text not in found:
                found.append(text)
    for text in exercise_texts(domain):
        if text not in found:
            found.append(text)
    return found


def exercise_texts(domain: str) -> list[str]:
    """The title, hint and solution of every exercise module `domain` defines (the lab modules)."""
    from helpers.checks import LABS

    texts: list[str] = []
    for module in LABS:
        if module.__name__ != f"helpers.{domain}":
            continue
        for value in vars(module).values():
            if type(value).__name__ == "Exercise":
                for text in (value.title, value.hint_text, value.solution_text):
                    if text and text not in texts:
                        texts.append(text)
    return texts


def domains() -> list[str]:
    """Every module of helpers/ with a message to translate."""
    out = []
    for path in sorted(HELPERS.rglob("*.py")):
        domain = ".".join(path.relative_to(HELPERS).with_suffix("").parts)
        text = path.read_text(encoding="utf-8")
        if "_(" in text and ("translator(" in text or "N_(" in text) or "Exercise(" in text:
            out.append(domain)
    return out


def po_path(domain: str, lang: str = "es") -> Path:
    return HELPERS / "locale" / lang / f"{domain}.po"


def read_po_file(domain: str, lang: str = "es") -> Any:
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po

    path = po_path(domain, lang)
    if not path.is_file():
        return Catalog(locale=lang, domain=domain, project="ElastiCache Lab")
    with path.open("rb") as f:
        return read_po(f, locale=lang, domain=domain)


def update_po(domain: str, lang: str = "es") -> tuple[Path, int]:
    """Writes the module's catalogue with every message of its code (existing translations kept,
    messages no longer in the code dropped); returns its path and how many messages lack Spanish."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    old = read_po_file(domain, lang)
    new = Catalog(locale=lang, domain=domain, project="ElastiCache Lab", fuzzy=False)
    missing = 0
    for text in code_messages(domain):
        kept = old.get(text)
        string = kept.string if kept is not None and not kept.fuzzy else ""
        missing += not string
        new.add(text, string)
    path = po_path(domain, lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, new, width=100, omit_header=True)
    return path, missing


def message_problems(lang: str = "es") -> list[str]:
    """Messages of the code with no translation, translations whose placeholders differ from the
    English, and catalogue entries the code no longer has."""
    import string

    def names(text: str) -> set[str]:
        try:
            return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError:
            return {"<unbalanced braces>"}

    found = []
    for domain in domains():
        messages = code_messages(domain)
        if not messages:
            continue
        cat = read_po_file(domain, lang)
        for text in messages:
            entry = cat.get(text)
            if entry is None or not entry.string or entry.fuzzy:
                found.append(f"{domain}: no {lang} for {text[:60]!r}")
            elif names(entry.string) != names(text):
                found.append(f"{domain}: the {lang} of {text[:60]!r} has placeholders {sorted(names(entry.string))}, "
                             f"the English {sorted(names(text))}")
        extra = {m.id for m in cat if m.id} - set(messages)
        found += [f"{domain}: {m[:60]!r} is in the catalogue but no longer in the code" for m in sorted(extra)]
    return found


def find_stem(lab: str) -> str:
    matches = [p.stem for p in english_labs() if p.stem.startswith(lab)]
    if len(matches) != 1:
        raise SystemExit(f"no single lab matches {lab!r}")
    return matches[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.tools.translate", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("build", "check", "todo", "po"))
    parser.add_argument("labs", nargs="*", help="lab numbers (build, todo) or modules such as checks.lab03 "
                        "(po); all when none")
    parser.add_argument("--lang", default="es", choices=LANGS)
    args = parser.parse_args(argv)
    if args.command == "build":
        written, skipped = build_all(args.lang, [find_stem(lab) for lab in args.labs] or None)
        for line in skipped:
            print(f"skipped: {line}", file=sys.stderr)
        print(f"{len(written)} notebook(s) written to {edition_dir(args.lang).relative_to(ROOT)}/")
        return 1 if skipped else 0
    if args.command == "po":
        for domain in args.labs or domains():
            path, missing = update_po(domain, args.lang)
            print(f"{path.relative_to(ROOT)}: {missing} message(s) to translate")
        return 0
    if args.command == "check":
        found = check_all(args.lang) + message_problems(args.lang)
        for line in found:
            print(line)
        print(f"{len(found)} problem(s)" if found else "the edition is complete and up to date")
        return 1 if found else 0
    for lab in args.labs or [p.stem[:2] for p in english_labs()]:
        stem = find_stem(lab)
        rows = todo(stem, args.lang)
        print(json.dumps({"lab": stem, "todo": rows}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
