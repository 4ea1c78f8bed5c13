"""Lab 08 (persistence and backups): exercises."""

from __future__ import annotations

import time
from typing import Any

from helpers.exercises.core import Exercise, Wrong, call_learner, expect_choice, expect_keys, expect_type
from helpers.runtime.i18n import translator

_ = translator(__name__)

LAB = "08"


def _check_survivors(answer: Any) -> str:
    expect_keys(answer, ["rdb_only", "aof_everysec"], _("your answer"))
    for key in ("rdb_only", "aof_everysec"):
        expect_type(answer[key], int, f"answer[{key!r}]")
    if answer["rdb_only"] == 1100:
        raise Wrong(_("rdb_only: a snapshot is a picture taken at BGSAVE time. The 300 writes after it were only in "
                      "memory, and kill -9 gives Redis no chance to save them."))
    if answer["rdb_only"] == 300:
        raise Wrong(_("rdb_only: the snapshot holds the 800 keys written before it; it is the later writes that are lost."))
    if answer["rdb_only"] != 800:
        raise Wrong(_("rdb_only: {got} is not right. Which writes were in the snapshot?", got=answer["rdb_only"]))
    if answer["aof_everysec"] != 1100:
        raise Wrong(_("aof_everysec: every acknowledged write was already handed to the operating system (write(2)) "
                      "when Redis replied (or, on a disk still busy with the last fsync, moments later: the drill "
                      "waits for that); killing the *process* does not lose the OS's buffers. Only a machine crash "
                      "could lose up to the last second or two."))
    return (_("RDB loses what came after the last snapshot; AOF everysec loses at most a second or two, and only if "
              "the machine itself dies or the disk is slow enough to hold writes back. (Engine behaviour: "
              "ElastiCache does not offer AOF.)"))


q1 = Exercise(
    lab=LAB, qid="q1", title="How many keys survive kill -9?",
    checker=_check_survivors,
    hint_text="Look at rdb_changes_since_last_save in the RDB cell: that is exactly what a crash loses. The AOF "
              "cell restarted with every key.",
    solution_text="answer = {'rdb_only': 800, 'aof_everysec': 1100}",
    reference={"rdb_only": 800, "aof_everysec": 1100},
    wrong=[({"rdb_only": 1100, "aof_everysec": 1100}, "picture taken at BGSAVE"),
           ({"rdb_only": 800, "aof_everysec": 800}, "write(2)"),
           ({"rdb_only": 300, "aof_everysec": 1100}, "later writes"),
           ({"rdb_only": 800}, "missing the key"),
           ({"rdb_only": "800", "aof_everysec": 1100}, "whole number")],
)

CHECK_SERVICE = {"name": "lab08-check", "config": {"save": '""', "appendonly": "no", "rdb-key-save-delay": "2000"}}


def _check_server() -> Any:
    """A Redis whose snapshots are slowed on purpose (2 ms per key), so 'done' and 'started' differ."""
    from helpers.runtime.services import start
    from helpers.topics.backups import write_keys

    r = start("redis", name=CHECK_SERVICE["name"], config=dict(CHECK_SERVICE["config"])).client()
    if r.dbsize() != 300:
        r.flushdb()
        write_keys(r, "chk:", 0, 300)
    deadline = time.monotonic() + 30
    while r.info("persistence")["rdb_bgsave_in_progress"] and time.monotonic() < deadline:
        time.sleep(0.05)  # a previous attempt's save still running
    return r


def _check_take_snapshot(answer: Any) -> str:
    if not callable(answer):
        call_learner(answer, None, what=_("your function take_snapshot(r)"))
    r = _check_server()
    saves = int(r.info("persistence")["rdb_saves"])
    blocking = int(r.info("commandstats").get("cmdstat_save", {}).get("calls", 0))
    call_learner(answer, r, what=_("your function take_snapshot(r)"))
    info = r.info("persistence")
    if int(r.info("commandstats").get("cmdstat_save", {}).get("calls", 0)) > blocking:
        raise Wrong(_("Your function used SAVE, which blocks the server for every client until the file is written "
                      "(0.6 s here, minutes on a big node). Use BGSAVE, which saves from a forked child."))
    if info["rdb_bgsave_in_progress"]:
        raise Wrong(_("Your function returned while the snapshot was still being written. BGSAVE only *starts* it: "
                      "wait until INFO persistence shows rdb_bgsave_in_progress == 0 and rdb_saves has grown."))
    if int(info["rdb_saves"]) <= saves:
        raise Wrong(_("No snapshot was taken while your function ran (INFO persistence rdb_saves did not grow). "
                      "Call r.bgsave()."))
    if info["rdb_last_bgsave_status"] != "ok":
        raise Wrong(_("The last background save failed; look at the server's log."))
    return _("A complete, consistent snapshot is on disk, and the server kept serving while it was written.")


def _take_snapshot_reference(r: Any) -> None:
    before = r.info("persistence")["rdb_saves"]
    r.bgsave()
    while True:
        info = r.info("persistence")
        if not info["rdb_bgsave_in_progress"] and info["rdb_saves"] > before:
            return
        time.sleep(0.05)


q2 = Exercise(
    lab=LAB, qid="q2", title="Take a snapshot and wait until it is on disk",
    checker=_check_take_snapshot,
    hint_text="r.bgsave() returns at once. Remember INFO persistence's rdb_saves before, then poll r.info('persistence') "
              "until rdb_bgsave_in_progress is 0 and rdb_saves has grown.",
    solution_text="def take_snapshot(r):\n    before = r.info('persistence')['rdb_saves']\n    r.bgsave()\n"
                  "    while True:\n        info = r.info('persistence')\n"
                  "        if not info['rdb_bgsave_in_progress'] and info['rdb_saves'] > before:\n            return\n"
                  "        time.sleep(0.05)",
    reference=_take_snapshot_reference,
    wrong=[(lambda r: r.bgsave(), "still being written"), (lambda r: r.save(), "blocks the server"),
           (lambda r: r.lastsave(), "no snapshot"), (lambda r: r.snapshot(), "raised AttributeError"),
           ("bgsave", "function")],
)

RPO_OPTIONS = ["rdb snapshot every 5 minutes", "aof with appendfsync everysec", "aof with appendfsync no",
               "no persistence"]
AWS_OPTIONS = ["daily automatic backups", "aof with appendfsync everysec", "multi-az replicas only",
               "durability with asynchronous writes", "durability with synchronous writes"]


def _check_rpo(answer: Any) -> str:
    expect_keys(answer, ["self_managed", "elasticache"], _("your answer"))
    choice = expect_choice(answer["self_managed"], RPO_OPTIONS, _("the self-managed setting"))
    if choice == "rdb snapshot every 5 minutes":
        raise Wrong(_("self_managed: a crash just before the next snapshot loses up to 5 minutes of writes: far above "
                      "1 second."))
    if choice == "aof with appendfsync no":
        raise Wrong(_("self_managed: with appendfsync no the OS decides when to flush (often every 30 s on Linux): a "
                      "machine crash can lose much more than 1 second."))
    if choice == "no persistence":
        raise Wrong(_("self_managed: without persistence a restart loses everything."))
    aws = expect_choice(answer["elasticache"], AWS_OPTIONS, _("the ElastiCache option"))
    if aws == "aof with appendfsync everysec":
        raise Wrong(_("elasticache: ElastiCache does not offer AOF (AWS: not supported on Redis 2.8.22 and later; "
                      "use Multi-AZ instead). Pick one of the options ElastiCache has."))
    if aws == "daily automatic backups":
        raise Wrong(_("elasticache: a restore from last night's backup loses up to a day of writes."))
    if aws == "multi-az replicas only":
        raise Wrong(_("elasticache: replication is asynchronous; a failover loses whatever the replica had not "
                      "received yet, and nothing bounds that to one second."))
    if aws == "durability with asynchronous writes":
        raise Wrong(_("elasticache: with asynchronous writes the primary answers before the Multi-AZ transactional "
                      "log has the write: up to the last 10 seconds can be lost."))
    return (_("Self-managed, AOF everysec bounds the loss to about a second on a machine crash. On ElastiCache, "
              "which has no AOF, Valkey's durability with synchronous writes loses no acknowledged write, at the "
              "price of single-digit-millisecond writes."))


q3 = Exercise(
    lab=LAB, qid="q3", title="Persistence for 'lose at most one second of writes', self-managed and on AWS",
    checker=_check_rpo,
    hint_text="Self-managed: which setting forces the data to disk (fsync) at least once a second? On "
              "ElastiCache there is no AOF: which option keeps a write somewhere safe before it is acknowledged?",
    solution_text="answer = {'self_managed': 'aof with appendfsync everysec',\n"
                  "          'elasticache': 'durability with synchronous writes'}",
    reference={"self_managed": "aof with appendfsync everysec", "elasticache": "durability with synchronous writes"},
    wrong=[({"self_managed": "rdb snapshot every 5 minutes", "elasticache": "durability with synchronous writes"},
            "5 minutes"),
           ({"self_managed": "aof with appendfsync no", "elasticache": "durability with synchronous writes"}, "30 s"),
           ({"self_managed": "no persistence", "elasticache": "durability with synchronous writes"},
            "loses everything"),
           ({"self_managed": "aof with appendfsync everysec", "elasticache": "aof with appendfsync everysec"},
            "does not offer AOF"),
           ({"self_managed": "aof with appendfsync everysec", "elasticache": "multi-az replicas only"},
            "asynchronous"),
           ({"self_managed": "aof with appendfsync everysec", "elasticache": "durability with asynchronous writes"},
            "10 seconds"),
           ("aof with appendfsync everysec", "dictionary"),
           ({"self_managed": "aof always", "elasticache": "daily automatic backups"}, "not one of the choices")],
)


def _check_backup_node(answer: Any) -> str:
    choice = expect_choice(answer, ["a replica", "the primary"], _("your choice"))
    if choice == "the primary":
        raise Wrong(_("A snapshot forks the process and copies pages that change while it runs (copy-on-write): on "
                      "a busy primary that costs memory and latency for every client. ElastiCache lets you back up "
                      "from a replica instead."))
    return _("Backing up from a replica keeps the fork and its copy-on-write memory off the node that takes writes.")


q4 = Exercise(
    lab=LAB, qid="q4", title="Where should a busy replication group take its backup?",
    checker=_check_backup_node,
    hint_text="BGSAVE forks; pages written during the save are copied. Which node takes every write?",
    solution_text="answer = 'a replica'",
    reference="a replica",
    wrong=[("the primary", "copy-on-write"), ("a sentinel", "not one of the choices")],
)
