"""Persistence and backups on a real Redis: snapshots (RDB), the append-only file (AOF),
crash-and-restart, and restoring a *new* server from a backup file.

An ElastiCache backup is an RDB snapshot stored in S3; restoring creates a new cluster seeded
with that file. Locally the same thing happens with a file copied into a new server's data
directory before it starts: Redis loads `dump.rdb` from its `dir` at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.runtime import engines, services, state
from helpers.runtime.i18n import N_, translator
from helpers.runtime.state import LabError
from helpers.runtime.waiting import poll_until

log = logging.getLogger(__name__)
_ = translator(__name__)

RDB_ONLY = {"save": '""', "appendonly": "no"}          # snapshots only when asked (BGSAVE)
AOF_EVERYSEC = {"save": '""', "appendonly": "yes", "appendfsync": "everysec"}


def _saves(r: Any) -> int:
    """A counter that grows with every completed save (INFO rdb_saves; LASTSAVE on old servers)."""
    info = r.info("persistence")
    return int(info["rdb_saves"]) if "rdb_saves" in info else _ts(r.lastsave())


def _ts(value: Any) -> int:
    return int(value.timestamp()) if hasattr(value, "timestamp") else int(value)


def wait_for_bgsave(r: Any, saves_before: int, timeout: float = 60.0) -> None:
    """Wait until a background save counted after `saves_before` has finished, and check it worked."""

    def finished() -> dict[str, Any] | None:
        info = r.info("persistence")
        return info if not info["rdb_bgsave_in_progress"] and _saves(r) > saves_before else None

    info = poll_until(finished, timeout, 0.02, "the snapshot",
                      message="The snapshot did not finish within {timeout:.0f}s.")
    if info["rdb_last_bgsave_status"] != "ok":
        raise LabError("The background save failed; the server's log says why (disk full? permissions?).")


def snapshot(r: Any, timeout: float = 60.0) -> int:
    """BGSAVE and wait until it is on disk: the point-in-time copy a backup is made of.

    Returns LASTSAVE (Unix time of the last successful save).
    """
    from redis.exceptions import ResponseError

    before = _saves(r)
    try:
        r.bgsave()
    except ResponseError as exc:  # a save already running (e.g. an AOF rewrite): schedule ours after it
        if "in progress" not in str(exc):
            raise
        r.execute_command("BGSAVE", "SCHEDULE")
    wait_for_bgsave(r, before, timeout)
    return _ts(r.lastsave())


def data_dir(r: Any) -> Path:
    return Path(r.config_get("dir")["dir"])


def rdb_file(r: Any) -> Path:
    """Where this server writes its snapshot (CONFIG GET dir + dbfilename)."""
    return data_dir(r) / r.config_get("dbfilename")["dbfilename"]


def aof_files(r: Any) -> list[Path]:
    """The append-only file set (Redis 7: a base RDB/AOF, incremental AOFs and a manifest)."""
    folder = data_dir(r) / r.config_get("appenddirname")["appenddirname"]
    return sorted(folder.iterdir()) if folder.is_dir() else []


def backups_dir() -> Path:
    path = state.home() / "backups"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@dataclass
class Backup:
    """A backup file made from a snapshot, like an ElastiCache backup exported to S3."""

    path: Path
    source: str
    keys: int
    taken_at: int

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def create_backup(svc: services.Service, name: str) -> Backup:
    """Snapshot `svc` and copy its RDB file to the backups directory as `<name>.rdb`."""
    r = svc.client()
    taken = snapshot(r)
    dest = backups_dir() / f"{name}.rdb"
    shutil.copyfile(rdb_file(r), dest)
    return Backup(path=dest, source=svc.name, keys=int(r.dbsize()), taken_at=taken)


def restore(backup: Backup | Path | str, name: str, config: dict[str, Any] | None = None) -> services.Service:
    """Start a NEW Redis `name` whose data directory is seeded with the backup file.

    Any service already called `name` is stopped and its data files removed first, so a restore
    is repeatable. The new server loads the file at start-up, exactly as ElastiCache seeds a
    cluster from an RDB file in S3.
    """
    path = Path(backup.path if isinstance(backup, Backup) else backup)
    if not path.is_file():
        raise LabError(f"Backup file {path} not found. Create one with create_backup(...) first.")
    services.stop(name)
    workdir = state.service_dir(name)
    for stale in ("dump.rdb", "appendonlydir"):
        target = workdir / stale
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    shutil.copyfile(path, workdir / "dump.rdb")
    svc = services.start("redis", name=name, config={**RDB_ONLY, **(config or {})})
    info = svc.client().info("persistence")
    if info.get("loading"):
        raise LabError(f"{name} is still loading the backup; try again in a moment.")
    return svc


def aof_held_back(r: Any) -> int:
    """Bytes of acknowledged writes that the AOF still holds in memory (INFO aof_buffer_length).

    Normally 0: Redis hands each write to the OS (write(2)) before it replies. With
    `appendfsync everysec`, while the previous second's fsync is still running on a slow disk,
    Redis *postpones* that write for up to 2 s, and replies anyway; a `kill -9` in that window
    loses those writes. (`appendfsync always` never replies before the write and the fsync.)
    """
    info = r.info("persistence")
    return int(info.get("aof_buffer_length", 0)) if info.get("aof_enabled") else 0


def wait_for_aof_write(r: Any, timeout: float = 5.0) -> float:
    """Wait until every acknowledged write has reached the OS (see `aof_held_back`); returns seconds waited."""
    started = time.monotonic()
    poll_until(lambda: not aof_held_back(r), timeout, 0.01, "the AOF to reach the OS",
               message="The AOF still holds writes back after {timeout:.0f}s: the disk is very slow "
                       "(INFO persistence: aof_buffer_length, aof_delayed_fsync).")
    return time.monotonic() - started


def crash_and_restart(svc: services.Service, settle_aof: bool = True) -> tuple[services.Service, float]:
    """SIGKILL the server (no chance to save anything), then start it again from its files.

    With `settle_aof` (the default) a Redis with the AOF on is first given the moment it needs to
    hand postponed writes to the OS (`wait_for_aof_write`; usually no wait at all), so the crash
    shows what the AOF keeps rather than a slow disk's 2-second window; pass False to kill at once.
    Returns the restarted service and how long the restart took in seconds.
    """
    node = svc.nodes[0]
    if settle_aof and svc.topology == "redis" and node.alive() and not node.paused():
        import redis

        with contextlib.suppress(redis.RedisError, OSError):  # a server that does not answer has nothing to hand over
            wait_for_aof_write(svc.client())
    svc.kill()
    started = time.perf_counter()
    healed = services.start(svc.topology, name=svc.name, **svc.options)
    return healed, time.perf_counter() - started


def write_keys(r: Any, prefix: str, start: int, stop: int, batch: int = 500) -> int:
    """SET prefix<start..stop-1> = their index, pipelined; returns how many were written."""
    for lo in range(start, stop, batch):
        pipe = r.pipeline(transaction=False)
        for i in range(lo, min(stop, lo + batch)):
            pipe.set(f"{prefix}{i}", i)
        pipe.execute()
    return stop - start


def count_keys(r: Any, prefix: str) -> int:
    return sum(1 for _ in r.scan_iter(match=f"{prefix}*", count=1000))


def _check_tool(kind: str, path: Path) -> tuple[bool | None, str]:
    """Run the engine's own checker (`rdb` or `aof`) on `path`.

    The checkers are the server binary itself under another name (redis-check-rdb is a link to
    redis-server, valkey-check-rdb to valkey-server), so the file is checked by the engine that
    wrote it: Redis 7.0's checker refuses the newer RDB and AOF formats Valkey 8/9 write.
    """
    try:
        engine = engines.kv_engine()
    except LabError:
        engine = None
    if engine is not None:
        argv, exe = [f"{engine.name}-check-{kind}", str(path)], engine.binary
    else:
        tool = shutil.which(f"redis-check-{kind}")
        if not tool:
            return None, f"redis-check-{kind} is not installed (it ships with redis-tools)."
        argv, exe = [tool, str(path)], tool
    proc = subprocess.run(argv, executable=exe, capture_output=True, text=True, timeout=60)
    out = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0, out


def check_rdb(path: Path) -> tuple[bool | None, str]:
    """Check a snapshot with the engine's RDB checker: (ok, its report); ok is None when there is none."""
    return _check_tool("rdb", Path(path))


def check_aof(path: Path) -> tuple[bool | None, str]:
    """Check an AOF with the engine's AOF checker (Redis 7+ and Valkey: pass the manifest file)."""
    path = Path(path)
    ok, report = _check_tool("aof", path)
    if ok is False and path.name.endswith(".manifest") and "base.rdb format error" in report:
        # valkey-check-aof 9.1 reads a base file in RDB format (Valkey's RDB starts "VALKEY", not
        # "REDIS") as RESP and calls it broken: check each part with the checker of its format.
        results = [_check_tool("rdb" if part.suffix == ".rdb" else "aof", part) for part in _manifest_parts(path)]
        if results:
            ok = all(r[0] for r in results)
            report = "\n".join(r[1] for r in results) + f"\nAOF {path.name}: every part checked " + \
                ("and valid" if ok else "and one is not valid")
    return ok, report


def _manifest_parts(manifest: Path) -> list[Path]:
    """The base and incremental files an AOF manifest lists (history files left out)."""
    parts = []
    for line in manifest.read_text().splitlines():
        words = line.split()
        fields = dict(zip(words[::2], words[1::2], strict=False))
        if "file" in fields and fields.get("type") in ("b", "i"):
            parts.append(manifest.parent / fields["file"])
    return parts


def rewrite_aof(r: Any, timeout: float = 60.0) -> None:
    """BGREWRITEAOF and wait: the AOF is rebuilt from the current data, dropping the history."""
    before = int(r.info("persistence")["aof_rewrites"])
    r.bgrewriteaof()

    def finished() -> bool:
        info = r.info("persistence")
        return not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"] and info["aof_rewrites"] > before

    poll_until(finished, timeout, 0.02, "the AOF rewrite",
               message="The AOF rewrite did not finish within {timeout:.0f}s.")


def aof_size(r: Any) -> int:
    """Bytes of the append-only file set on disk."""
    return sum(p.stat().st_size for p in aof_files(r) if p.is_file())


SERVER = {"RDB only": N_("RDB only"), "AOF everysec": N_("AOF everysec")}  # the drill's servers, as shown


class CrashDrill:
    """Widget: write orders, snapshot, crash both servers (RDB-only and AOF) and count what survived."""

    def __init__(self, rdb_svc: services.Service, aof_svc: services.Service, prefix: str = "drill:"):
        import ipywidgets as w

        self.svcs = {"RDB only": rdb_svc, "AOF everysec": aof_svc}  # keys the notebook reads: shown through SERVER
        self.prefix, self.written = prefix, 0
        for svc in self.svcs.values():
            r = svc.client()
            for key in list(r.scan_iter(match=f"{prefix}*", count=1000)):
                r.delete(key)
        self.log: list[str] = []
        self.out = w.HTML()
        buttons = [(_("Write 100 orders"), lambda _b: self.write(100)),
                   (_("BGSAVE (snapshot)"), lambda _b: self.snapshot()),
                   (_("kill -9 both and restart"), lambda _b: self.crash())]
        self.buttons = [w.Button(description=text, layout=w.Layout(width="200px")) for text, _action in buttons]
        for button, (_text, action) in zip(self.buttons, buttons, strict=True):
            button.on_click(action)
        self.widget = w.VBox([w.HBox(self.buttons), self.out])
        self.refresh()

    def write(self, n: int = 100) -> None:
        for svc in self.svcs.values():
            write_keys(svc.client(), self.prefix, self.written, self.written + n)
        self.written += n
        self.log.append(_("wrote {n} orders (total {total})", n=n, total=self.written))
        self.refresh()

    def snapshot(self) -> None:
        snapshot(self.svcs["RDB only"].client())
        self.svcs["AOF everysec"].client().bgsave()  # both get a snapshot; only the RDB server relies on it
        self.log.append("BGSAVE")
        self.refresh()

    def crash(self) -> dict[str, int]:
        for label, svc in self.svcs.items():
            self.svcs[label], _lost = crash_and_restart(svc)
        counts = self.counts()
        kept = ", ".join(_("{server} kept {count}", server=_(SERVER[k]), count=v) for k, v in counts.items())
        self.log.append(_("kill -9 + restart: {kept}", kept=kept))
        self.refresh()
        return counts

    def counts(self) -> dict[str, int]:
        return {label: count_keys(svc.client(), self.prefix) for label, svc in self.svcs.items()}

    def refresh(self) -> None:
        rows = []
        for label, svc in self.svcs.items():
            r = svc.client()
            pending = r.info("persistence")["rdb_changes_since_last_save"]
            aof = _("yes") if r.config_get("appendonly")["appendonly"] == "yes" else _("no")
            rows.append(f"<tr><td>{_(SERVER[label])}</td><td>{count_keys(r, self.prefix)}</td>"
                        f"<td>{pending}</td><td>{aof}</td></tr>")
        head = "".join(f"<th>{title}</th>" for title in (_("server"), _("orders in memory"),
                                                          _("writes since last snapshot"), "AOF"))
        self.out.value = (_("<p>orders written so far: <b>{n}</b></p>", n=self.written) + f"<table><tr>{head}</tr>"
                          + "".join(rows) + "</table><p>" + " &rarr; ".join(self.log[-6:]) + "</p>")
