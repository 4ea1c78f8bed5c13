"""requirements.lock: the exact version of every package the lab installs, for `make` and Binder alike.

pyproject.toml says what the lab needs (`jupyterlab>=4.2`, ...); the lock file says which versions
were tested together, so two installs a month apart get the same packages. `make setup`
(scripts/setup-python.sh) and Binder (binder/requirements.txt) both install with it as pip
*constraints*: every version is fixed, and a package one platform needs and the lock does not list
(e.g. macOS-only ones) is still installed.

The lock is made from a working environment: the dependencies of pyproject.toml (with the `test`
extra), followed transitively through the installed packages' metadata, each at its installed
version. Regenerate it after changing the dependencies, from a freshly set-up .venv:

    make lock        # = .venv/bin/python -m helpers.tools.lockfile
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import platform
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
EXTRAS = ("test",)
# The oldest Python the lock must install on: Debian 12's python3 (`make setup` on a fresh Debian
# machine uses it). Where the environment's version of a package needs a newer Python, the newest
# version that installs on FLOOR is pinned instead (found with `pip download --python-version 3.11.2`).
FLOOR = "3.11.2"
HELD_BACK = {
    "soupsieve": "2.10",  # 3.x and 4.x need Python >= 3.11.5; only nbconvert's HTML export uses it
}
HEADER = """\
# The exact versions `make setup` and Binder install, as pip constraints (pip install -c requirements.lock).
# Made from a working environment with Python {python} on {system}; regenerate after changing the
# dependencies in pyproject.toml:  make lock  (python -m helpers.tools.lockfile)
# python {python}
"""


def normalize(name: str) -> str:
    """PEP 503 name: `Jinja2`, `jinja2` and `jinja_2` are the same project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(pyproject: Path = ROOT / "pyproject.toml", extras: tuple[str, ...] = EXTRAS) -> list[Requirement]:
    """The dependencies pyproject.toml declares, plus those of `extras`."""
    import tomllib  # Python 3.11+: the lock is made (and checked) with the Python Binder uses

    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project.get("optional-dependencies", {}).get(extra, [])]
    return reqs


def _applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": e}) for e in (extras or {""}))


def resolve(requirements: list[Requirement]) -> dict[str, str]:
    """{normalized name: installed version} of the requirements and everything they need, here."""
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(req, set()) for req in requirements]
    while todo:
        req, parent_extras = todo.pop()
        if not _applies(req, parent_extras):
            continue
        name = normalize(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            raise SystemExit(f"{req.name} is required but not installed here: run `make setup` first.") from None
        pins[name] = HELD_BACK.get(name, dist.version)
        for sub in dist.requires or []:
            todo.append((Requirement(sub), set(req.extras)))
    return dict(sorted(pins.items()))


def render(pins: dict[str, str]) -> str:
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    body = "".join(f"{name}=={version}\n" for name, version in pins.items())
    return HEADER.format(python=python, system=f"{platform.system()} {platform.machine()}") + body


def parse(text: str) -> dict[str, str]:
    """{normalized name: version} from the text of a lock file."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[normalize(name)] = version
    return pins


def read(path: Path = LOCK) -> dict[str, str]:
    return parse(path.read_text())


def locked_python(path: Path = LOCK) -> str:
    """The Python version the lock was made with ("3.11")."""
    for line in path.read_text().splitlines():
        if line.startswith("# python "):
            return line.split()[-1]
    return ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.tools.lockfile", description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if requirements.lock differs from this environment")
    p.add_argument("--output", type=Path, default=LOCK)
    args = p.parse_args(argv)
    text = render(resolve(project_requirements()))
    if args.check:
        same = args.output.exists() and read(args.output) == parse(text)
        print("requirements.lock matches this environment." if same else
              "requirements.lock differs from this environment: run `make lock`.")
        return 0 if same else 1
    args.output.write_text(text)
    print(f"Wrote {args.output} ({text.count('==')} packages).")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
