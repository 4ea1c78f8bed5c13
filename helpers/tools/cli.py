"""`python -m helpers start|stop|status|doctor|env|progress`."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import shutil
import sys

from helpers.aws import endpoint as localaws
from helpers.runtime import engines, services, state
from helpers.runtime.i18n import translator
from helpers.runtime.state import LabError

_ = translator(__name__)

DEFAULT_SERVICES = ("redis", "memcached", "aws")


def _print_services(svcs: list[services.Service]) -> None:
    if not svcs:
        print(_("No services running for {home}", home=state.home()))
        return
    for svc in svcs:
        print(f"{svc.name}  ({svc.topology})  {svc.url}")
        for n in svc.nodes:
            print(f"  {n.role:<10} {n.kind:<9} {n.host}:{n.port:<6} pid {n.pid:<7} {services.node_state(n)}")


def _json(svcs: list[services.Service]) -> str:
    return json.dumps({"state_dir": str(state.home()), "services": {s.name: s.summary() for s in svcs}}, indent=2)


def cmd_start(args: argparse.Namespace) -> int:
    names = args.names or list(DEFAULT_SERVICES)
    svcs = [services.start(n) for n in names]
    print(_json(svcs)) if args.json else _print_services(svcs)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    lab = None
    running = []
    if not args.name:  # everything of the learner's: `make lab`'s JupyterLab, its kernels and terminals first
        from helpers.tools.jupyter import stop_lab

        running = sorted(state.load_registry())  # `make lab`'s launcher may stop some of them as JupyterLab ends
        children = stop_lab()
        if children is not None:
            lab = _("JupyterLab (and {count} kernel or terminal process(es))", count=children) if children \
                else "JupyterLab"
    stopped = services.stop(args.name)
    stopped = [*([lab] if lab else []), *sorted(set(running) | set(stopped))]
    print(_("Stopped: {names}", names=", ".join(stopped)) if stopped else _("Nothing was running."))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    svcs = services.status()
    print(_json(svcs)) if args.json else _print_services(svcs)
    return 0


def doctor_report() -> list[tuple[str, bool, str]]:
    """(what, ok, detail or how to fix) for everything the lab needs."""
    rows: list[tuple[str, bool, str]] = []
    found: dict[str, engines.Engine] = {}
    for name in engines.KV_ENGINES:
        try:
            eng = found[name] = engines.find_engine(name)
        except LabError as exc:
            rows.append((f"{name} server", False, str(exc)))
            continue
        tls = "TLS built in" if eng.tls else "no TLS built in (the lab's TLS front serves TLS for single nodes)"
        rows.append((f"{name} server", True, f"{eng.label} at {eng.binary} ({eng.source}); {tls}"))
    try:
        chosen = engines.selected_engine_name()
        why = f"chosen by {engines.ENGINE_ENV}" if os.environ.get(engines.ENGINE_ENV) else \
            f"the default; set {engines.ENGINE_ENV}=valkey or redis to choose"
        rows.append(("key-value engine", chosen in found, f"{engines.TITLES[chosen]} ({why})" if chosen in found
                     else f"{engines.TITLES[chosen]} is chosen but not installed — {engines.install_hint(chosen)}"))
    except LabError as exc:
        rows.append(("key-value engine", False, str(exc)))
    try:
        path = engines.find_binary("memcached")
        rows.append(("memcached server", True, f"{engines.binary_version(path)} at {path}"))
    except LabError as exc:
        rows.append(("memcached server", False, str(exc)))
    cli = shutil.which("redis-cli")
    rows.append(("redis-cli", bool(cli), cli or f"optional — {engines.install_hint('redis')}"))
    for module in ("redis", "pymemcache", "boto3", "moto", "jupyterlab", "ipywidgets", "matplotlib"):
        if importlib.util.find_spec(module) is not None:  # installed (found without importing it)
            rows.append((f"python: {module}", True, _("installed")))
        else:
            rows.append((f"python: {module}", False, _("missing — run `make setup` (or `pip install -e .`)")))
    try:
        rows.append(("state directory", True, str(state.home())))
    except LabError as exc:
        rows.append(("state directory", False, str(exc)))
    else:
        rows += state_report()
    aws = "real AWS (opted in with ELASTICACHE_LAB_REAL_AWS)" if localaws.real_aws_opted_in() else "local only"
    rows.append(("AWS calls", True, aws))
    return rows


def state_report() -> list[tuple[str, bool, str]]:
    """The state files (readable, of the right shape, set aside earlier) and the lab's processes
    (recorded nodes that died, processes no record holds), without changing anything."""
    from helpers.exercises.core import PROGRESS, progress_problem

    rows: list[tuple[str, bool, str]] = []
    home = state.home()
    checks = ((state.REGISTRY, state.registry_problem, "servers it records would be unknown to the lab"),
              (PROGRESS, progress_problem, "exercise progress would start afresh"))
    for filename, problem_of, meaning in checks:
        path = home / filename
        if not path.exists():
            continue
        try:
            problem = problem_of(json.loads(path.read_bytes().decode("utf-8")))
        except UnicodeDecodeError:
            problem = "not UTF-8 text"
        except ValueError:
            problem = "not valid JSON"
        except OSError as exc:
            problem = f"unreadable ({exc.strerror})"
        if problem:
            rows.append((filename, False, f"damaged ({problem}); the next command moves it aside, and {meaning}."))
    for aside in sorted(home.glob("*.corrupt-*")):
        rows.append(("set-aside file", True, f"{aside.name} (damaged earlier; delete it once you no longer need it)"))
    if any(r[0] == state.REGISTRY and not r[1] for r in rows):
        return rows
    for svc in services.status():
        dead = [n.name for n in svc.nodes if not n.alive()]
        if dead:
            rows.append((f"service {svc.name}", True,
                         f"{', '.join(dead)} not running; the next start restarts it (or `python -m helpers stop "
                         f"{svc.name}`)"))
    orphans = services.unrecorded_processes()
    if orphans:
        listed = ", ".join(f"{p.name()}[{p.pid}]" for p in orphans[:8])
        rows.append(("unrecorded processes", True,
                     f"{listed}: started by this lab but held by no service record (workers, or servers whose "
                     "record was lost); `python -m helpers stop` stops them"))
    return rows


def cmd_doctor(args: argparse.Namespace) -> int:
    rows = doctor_report()
    missing_word = _("MISSING")
    for what, ok, detail in rows:
        print(f"{'ok ' if ok else missing_word} {what:<20} {detail}")
    # One key-value engine is enough (the other only serves `make test-other-engine`); redis-cli is optional.
    optional = {"redis-cli"} | {f"{n} server" for n in engines.KV_ENGINES}
    missing = [r for r in rows if not r[1] and r[0] not in optional]
    if missing:
        print("\n" + _("{count} thing(s) missing; the lines above say how to install each.", count=len(missing)))
        return 1
    print("\n" + _("Everything the lab needs is here."))
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    if localaws.real_aws_opted_in():
        print("# ELASTICACHE_LAB_REAL_AWS is set: leaving AWS settings alone.", file=sys.stderr)
    from helpers.tools.shellenv import lab_environment

    exports, unset = lab_environment()
    for key, value in exports.items():
        print(f"export {key}={shlex.quote(value)}")
    if unset:
        print("unset " + " ".join(unset))
    return 0


def cmd_progress(args: argparse.Namespace) -> int:
    from helpers.exercises.core import progress
    from helpers.tools.progress import render_text, summary

    done = progress()
    if args.share or args.unshare:
        from helpers.exercises import share

        if args.unshare:
            gone = share.unshare()
            print(_("No longer shared with the instructor ({file} deleted).", file=share.shared_file()) if gone
                  else _("No longer shared with the instructor."))
            return 0
        where = share.share(done)
        print(_("Shared with the instructor: {where} (statuses only, never your answers); kept up to date after "
                "each check. `python -m helpers progress --unshare` stops.", where=where))
        return 0
    if args.json:
        print(json.dumps(done, indent=2))
        return 0
    print(render_text(summary(done), details=args.all))
    return 0


def cmd_class_progress(args: argparse.Namespace) -> int:
    from pathlib import Path

    from helpers.exercises import share
    from helpers.tools import classprogress

    where = Path(args.dir) if args.dir else share.class_dir()
    if not where.is_dir():
        raise LabError(f"{where} does not exist: create the class's progress directory (docs/classroom.md) "
                       "or pass --dir.")
    table = classprogress.rows(where)
    print(json.dumps(table, indent=2) if args.json else classprogress.render(table, where))
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from helpers.tools.jupyter import lab_main

    extra = args.jupyter_args[1:] if args.jupyter_args[:1] == ["--"] else args.jupyter_args
    return lab_main(extra)


def cmd_aws(args: argparse.Namespace) -> int:
    if args.action == "apply-pending":
        applied = localaws.apply_pending()
        for ident, fields in applied.items():
            print(f"{ident}: applied {', '.join(fields)}")
        if not applied:
            print(_("no pending modifications"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    names = ", ".join(sorted(services.TOPOLOGIES))
    p = argparse.ArgumentParser(prog="python -m helpers", description="Run the ElastiCache Lab's local services.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("start", help=f"start services (default: redis memcached aws; known: {names})")
    s.add_argument("names", nargs="*", metavar="NAME")
    s.add_argument("--json", action="store_true", help="print one JSON object describing every node")
    s.set_defaults(func=cmd_start)
    s = sub.add_parser("stop", help="stop every process of this state directory (or one service)")
    s.add_argument("name", nargs="?")
    s.set_defaults(func=cmd_stop)
    s = sub.add_parser("status", help="show what runs")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)
    s = sub.add_parser("doctor", help="list what is missing and how to install it")
    s.set_defaults(func=cmd_doctor)
    s = sub.add_parser("env", help="print shell export lines for the AWS CLI and redis-cli")
    s.set_defaults(func=cmd_env)
    s = sub.add_parser("progress", help="your solved exercises, lab by lab, and what to do next")
    s.add_argument("--all", action="store_true", help="list every exercise of every lab")
    s.add_argument("--json", action="store_true", help="the recorded progress as JSON")
    s.add_argument("--share", action="store_true",
                   help="on a classroom server: let the instructor see your progress (statuses only; kept up to date)")
    s.add_argument("--unshare", action="store_true", help="stop sharing your progress and delete the shared copy")
    s.set_defaults(func=cmd_progress)
    s = sub.add_parser("class-progress", help="for the instructor: the progress the class's learners shared")
    s.add_argument("--dir", help="the class's progress directory (default: $ELASTICACHE_LAB_CLASS_DIR or "
                                 "/srv/elasticache-lab/class-progress)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_class_progress)
    s = sub.add_parser("aws", help="local AWS endpoint actions: apply-pending applies every ElastiCache change "
                                   "made without --apply-immediately now (the maintenance window)")
    s.add_argument("action", choices=["apply-pending"])
    s.set_defaults(func=cmd_aws)
    s = sub.add_parser("lab", help="start the services, then JupyterLab on loopback with the welcome lab open")
    s.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="extra arguments for `jupyter lab`")
    s.set_defaults(func=cmd_lab)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from helpers.runtime import logs

    try:
        logs.setup("cli")
    except (LabError, OSError):
        pass  # a state directory that cannot hold a log: the command itself says what is wrong with it
    try:
        return int(args.func(args) or 0)
    except LabError as exc:
        print(_("error: {error}", error=exc), file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`: the reader left; nothing to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a file of the state directory that cannot be written or read
        where = f" ({exc.filename})" if exc.filename else ""
        print(_("error: {error}{where}. Check the lab's state directory, or point {env} at a directory you own.",
                error=exc.strerror or exc, where=where, env=state.ENV_HOME), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
