"""The learner's language, and the messages the lab shows in it.

The language is, first found: a `.lab-lang` file in the kernel's working folder (the Spanish
edition's folder labs/es/ has one, so its notebooks answer in Spanish without any setting);
ELASTICACHE_LAB_LANG (`en` or `es`); the locale (LC_ALL, LC_MESSAGES, LANG); else English.

Messages are written in English in the code, wrapped in `_()`, and translated by gettext-style
catalogues: one `.po` file per module under helpers/locale/<lang>/, named for the module
(`helpers.checks.lab03` -> helpers/locale/es/checks.lab03.po), read with Babel. A message with
placeholders is written as a format string and its values are passed by name:

    _ = translator(__name__)
    raise Wrong(_("{key!r} expires in {ttl} s; choose a TTL between 60 and 3600 seconds.", key=key, ttl=ttl))

(an f-string cannot be translated: the catalogue would never see the same text twice). A message
kept in a module-level constant is marked with `N_()` (found by the catalogue test, translated where
it is shown with `_(CONSTANT)`). A message missing from the catalogue, or marked fuzzy, is shown in
English.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LANGS = ("en", "es")
DEFAULT = "en"
ENV = "ELASTICACHE_LAB_LANG"
MARKER = ".lab-lang"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


def _code(value: str) -> str | None:
    """'es_ES.UTF-8' -> 'es'; None for a language the lab does not speak (or C/POSIX)."""
    code = value.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return code if code in LANGS else None


def lang() -> str:
    """The learner's language now (read on every call: a test or a notebook may change it).

    The edition's folder wins over the setting: a Spanish notebook answers in Spanish."""
    try:
        marker = Path.cwd() / MARKER
        if marker.is_file():
            code = _code(marker.read_text())
            if code:
                return code
    except OSError as exc:  # a working folder that went away
        log.debug("reading %s: %s", MARKER, exc)
    chosen = os.environ.get(ENV, "")
    if chosen:
        code = _code(chosen)
        if code is None:
            log.warning("%s=%r is not a language of the lab (%s); using %s", ENV, chosen, ", ".join(LANGS), DEFAULT)
            return DEFAULT
        return code
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return _code(value) or DEFAULT
    return DEFAULT


def catalogue_path(language: str, domain: str) -> Path:
    return LOCALE_DIR / language / f"{domain}.po"


def domain_of(module: str) -> str:
    """`helpers.checks.lab03` -> `checks.lab03`."""
    return module.removeprefix("helpers.")


@cache
def catalogue(language: str, domain: str) -> dict[str, str]:
    """msgid -> msgstr of one catalogue (translated, non-fuzzy entries only); {} when there is none."""
    path = catalogue_path(language, domain)
    if language == DEFAULT or not path.is_file():
        return {}
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        cat = read_po(f, locale=language, domain=domain)
    return {m.id: m.string for m in cat if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


def gettext(message: str, domain: str, /, **values: Any) -> str:
    """`message` in the learner's language, formatted with `values` when any are given."""
    text = catalogue(lang(), domain).get(message, message) if lang() != DEFAULT else message
    if not values:
        return text
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError) as exc:  # a translation that names a placeholder wrongly
        log.warning("translation of %r in %s does not format (%s); showing the English", message, domain, exc)
        return message.format(**values)


def translator(module: str) -> Callable[..., str]:
    """The `_` of one module: `_ = translator(__name__)`."""
    domain = domain_of(module)

    def _(message: str, /, **values: Any) -> str:
        return gettext(message, domain, **values)

    return _


def N_(message: str) -> str:
    """Marks a message for the catalogues without translating it yet (module-level constants)."""
    return message


def pick(**texts: str) -> str:
    """One of a few texts by language, for the rare text that is built, not looked up:
    pick(en="...", es="...")."""
    return texts.get(lang()) or texts[DEFAULT]
