"""AWS's own examples for the ElastiCache CLI, run with the real AWS CLI against the local endpoint.

The oracle is AWS's documentation, not our code: `tests/data/aws_cli_examples.json` holds one case
per file of the AWS CLI's `awscli/examples/elasticache/` (each citing its file and the date it was
read): the command as documented (what had to change, and why, is written in the case), the
commands run first to make what it names, and what AWS documents: success or an error code, the
keys the answer must have, the documented values that are not particular to AWS's account
(statuses, engine, node type, shapes), and where there is one, an effect checked on the engines.

Where the local endpoint still answers otherwise, `docs/local-vs-aws.md` says so in its section
"AWS CLI examples that differ locally": each listed example must still differ in exactly the listed
fields (a strict xfail: a fix makes it pass, and the list must then be updated); every other
example must match. The module prints "K of N examples match outright".

Case format (JSON): `group` (the examples of a group share resources and run in their order; groups
run at the same time), `argv` (after `aws elasticache`), `before`/`after` steps (`call`: the boto3
call the AWS CLI would make of a command run first, with its `params`; `wait`, `check`, `save_*`,
`settle`), and `documented`: `error` (null: success),
`values` (path -> documented value), `present` (paths), `contains` (path -> items the list has),
`unordered` (paths compared as multisets). A path is dotted keys with `[n]`, `[*]` (every
element) or `[Key=Value]` (the element whose Key is Value); `{name}` is filled from the run
(account, region, ids created first).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers.aws import client as cpc
from helpers.aws import endpoint as localaws

log = logging.getLogger(__name__)

AWS_CLI = str(Path(sys.executable).parent / "aws")
ROOT = Path(__file__).resolve().parent.parent
CASES = json.loads((ROOT / "tests" / "data" / "aws_cli_examples.json").read_text())["cases"]
DOC = ROOT / "docs" / "local-vs-aws.md"
SECTION = "## AWS CLI examples that differ locally"
REGION = "us-west-2"  # most documented answers are of us-west-2 (ARNs, zones, the `sgaui-` prefix)
WAIT = 90.0


# --- the documented differences ----------------------------------------------------------------------

def listed_differences(text: str) -> dict[str, set[str]]:
    """The section's bullets: "- `file.rst` (`path`; `path`): reason" -> {file: {paths}} (`X.*`: all under X)."""
    out: dict[str, set[str]] = {}
    if SECTION not in text:
        return out
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    for line in body.splitlines():
        m = re.match(r"- `([\w.-]+\.rst)` \(([^)]*)\):", line)
        if m:
            out[m.group(1)] = {p.strip().strip("`") for p in m.group(2).split(";") if p.strip()}
    return out


LISTED = listed_differences(DOC.read_text())


def covers(listed: set[str], paths: set[str]) -> bool:
    """Each path differing is listed, and each listed entry differs (`X.*` stands for every path under X)."""
    def hit(entry: str, path: str) -> bool:
        return path.startswith(entry[:-1]) if entry.endswith(".*") else path == entry
    return all(any(hit(e, p) for e in listed) for p in paths) and all(any(hit(e, p) for p in paths) for e in listed)


class DiffersAsListed(AssertionError):
    """The example differs from AWS's documentation in exactly the fields the doc lists."""


# --- paths into an answer ----------------------------------------------------------------------------

_TOKEN = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")
MISSING = object()


def lookup(obj: Any, path: str) -> Any:
    """The value at `path`, a list of values after a `[*]`, or MISSING."""
    values = [obj]
    spread = False
    for key, index in _TOKEN.findall(path):
        nxt = []
        for v in values:
            if key:
                if isinstance(v, dict) and key in v:
                    nxt.append(v[key])
            elif index == "*":
                spread = True
                if isinstance(v, list):
                    nxt.extend(v)
            elif "=" in index:
                k, want = index.split("=", 1)
                nxt.extend(e for e in (v if isinstance(v, list) else []) if isinstance(e, dict) and e.get(k) == want)
                nxt = nxt[:1] if not spread else nxt
            elif isinstance(v, list) and int(index) < len(v):
                nxt.append(v[int(index)])
        values = nxt
        if not values and not spread:
            return MISSING
    if spread:
        return values
    return values[0] if values else MISSING


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def compare(answer: dict | None, error: str | None, documented: dict, ctx: Context) -> dict[str, str]:
    """{path: what differs} between a CLI answer and the documented one."""
    out: dict[str, str] = {}
    want_error = documented.get("error")
    if error != want_error:
        out["error"] = f"local {error or 'success'}, AWS {want_error or 'success'}"
        return out
    if error:
        return out
    unordered = set(documented.get("unordered", ()))
    for path, want in documented.get("values", {}).items():
        want = ctx.fill(want)
        got = lookup(answer, ctx.fill(path))
        if "[*]" in path:
            bad = [g for g in got if g != want] if got is not MISSING else ["(none)"]
            if not got or bad:
                out[path] = f"local {bad[:3] or 'none'}, AWS {want!r}"
            continue
        if path in unordered and isinstance(got, list) and isinstance(want, list):
            same = sorted(map(_canon, got)) == sorted(map(_canon, want))
        else:
            same = got == want
        if not same:
            out[path] = f"local {'(absent)' if got is MISSING else repr(got)}, AWS {want!r}"
    for path in documented.get("present", ()):
        if lookup(answer, ctx.fill(path)) is MISSING:
            out[path] = "absent locally, present on AWS"
    for path, items in documented.get("contains", {}).items():
        got = lookup(answer, path)
        lacking = [i for i in items if got is MISSING or i not in got]
        if lacking:
            out[path] = f"lacks {lacking}"
    return out


# --- running the examples -----------------------------------------------------------------------------

def cli_env() -> dict[str, str]:
    env = {**os.environ, **localaws.env(localaws.endpoint())}
    out = subprocess.run([sys.executable, "-m", "helpers", "env"], capture_output=True, text=True, env=env,
                         check=True).stdout
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            env[key] = value.strip("'\"")
    env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = REGION
    return env


class Context:
    """What the run fills into `{name}`: the account, the region, ids made by earlier steps."""

    def __init__(self) -> None:
        self.env = cli_env()
        self.values: dict[str, str] = {"region": REGION}
        self.clients: dict[str, Any] = {}
        self.saved: dict[str, Any] = {}

    def ec(self, region: str | None = None) -> Any:
        region = region or REGION
        if region not in self.clients:
            self.clients[region] = localaws.client("elasticache", region_name=region)
        return self.clients[region]

    def value(self, name: str) -> str:
        if name not in self.values:
            if name == "account":
                self.values[name] = localaws.client("sts").get_caller_identity()["Account"]
            elif name == "redis_update":
                actions = self.ec().describe_update_actions(ReplicationGroupIds=["test-cluster"])["UpdateActions"]
                self.values[name] = next(a["ServiceUpdateName"] for a in actions if a.get("Engine") == "redis")
            elif name == "cluster_test_port":
                cc = self.ec().describe_cache_clusters(CacheClusterId="cluster-test", ShowCacheNodeInfo=True)
                self.values[name] = str(cpc.node_endpoints(cc["CacheClusters"][0])[0][1])
            else:
                raise KeyError(name)
        return self.values[name]

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\{(\w+)\}", lambda m: self.value(m.group(1)), value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {self.fill(k): self.fill(v) for k, v in value.items()}
        return value

    def aws(self, argv: list[str], region: str | None = None) -> tuple[dict | None, str | None, str]:
        """Run `aws ARGV` (service first); (answer, error code or None, stderr)."""
        args = [AWS_CLI, *self.fill(argv), "--output", "json"] + (["--region", region] if region else [])
        out = subprocess.run(args, capture_output=True, text=True, env=self.env, timeout=180)
        if out.returncode == 0:
            return (json.loads(out.stdout) if out.stdout.strip() else {}), None, out.stderr
        m = re.search(r"An error occurred \((\w+)\)", out.stderr)
        return None, (m.group(1) if m else f"CLI exit {out.returncode}"), out.stderr


def _poll(what: str, probe, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout:.0f}s")
        time.sleep(0.3)


def do_wait(ctx: Context, step: dict) -> None:
    ec, ident, status = ctx.ec(step.get("region")), step["id"], step.get("status", "available")
    kind = step["wait"]
    if kind == "cache-cluster":
        cpc.wait_for(ec, cache_cluster_id=ident, status=status, timeout=WAIT)
    elif kind == "replication-group":
        cpc.wait_for(ec, replication_group_id=ident, status=status, timeout=WAIT)
    elif kind == "snapshot":
        _poll(f"snapshot {ident} {status}", lambda: ec.describe_snapshots(SnapshotName=ident)["Snapshots"][0][
            "SnapshotStatus"] == status)
    elif kind == "global":
        _poll(f"{ident} {status}", lambda: ec.describe_global_replication_groups(GlobalReplicationGroupId=ident)[
            "GlobalReplicationGroups"][0]["Status"] == status)
    elif kind == "user-group":
        _poll(f"{ident} {status}", lambda: ec.describe_user_groups(UserGroupId=ident)["UserGroups"][0]["Status"] == status)
    else:
        raise ValueError(kind)


def _group(ec: Any, gid: str) -> dict:
    return ec.describe_replication_groups(ReplicationGroupId=gid)["ReplicationGroups"][0]


def _primary(ec: Any, gid: str) -> Any:
    group = _group(ec, gid)
    return cpc.redis_at(group["NodeGroups"][0]["PrimaryEndpoint"])


def _not_found(call, **kwargs) -> bool:
    try:
        call(**kwargs)
    except ClientError as exc:
        return "NotFound" in exc.response["Error"]["Code"]
    return False


def do_check(ctx: Context, step: dict) -> None:
    """An effect on the engines (or on what describe says afterwards) that AWS's example implies."""
    ec, name, args = ctx.ec(step.get("region")), step["check"], ctx.fill(step["args"])
    if name == "ping_cluster":
        cc = ec.describe_cache_clusters(CacheClusterId=args[0], ShowCacheNodeInfo=True)["CacheClusters"][0]
        assert all(cpc.redis_at(ep).ping() for ep in cpc.node_endpoints(cc))
    elif name == "ping_group":
        r = _primary(ec, args[0])
        assert r.set("conformance", "1") and r.get("conformance") == "1"
    elif name == "parameter_value":
        params = ec.describe_cache_parameters(CacheParameterGroupName=args[0])["Parameters"]
        value = next(p.get("ParameterValue") for p in params if p["ParameterName"] == args[1])
        assert value == args[2], f"{args[1]} = {value!r}, expected {args[2]!r}"
    elif name == "gone":  # describe_x(Name=id) answers a NotFound error (describe-snapshots: no snapshot)
        try:
            found = getattr(ec, args[0])(**{args[1]: args[2]})
        except ClientError as exc:
            assert "NotFound" in exc.response["Error"]["Code"], exc
        else:
            assert not any(v for k, v in found.items() if isinstance(v, list)), f"{args[2]} still there"
    elif name == "version_descriptions":
        versions = ec.describe_cache_engine_versions(Engine="redis")["CacheEngineVersions"]
        bad = [v for v in versions if v["CacheEngineVersionDescription"] != f"redis version {v['EngineVersion']}"]
        assert versions and not bad, bad[:2]
    elif name == "cache_size_in_mb":
        snap = ec.describe_snapshots(SnapshotName=args[0])["Snapshots"][0]
        sizes = [n.get("CacheSize") for n in snap.get("NodeSnapshots", [])]
        assert sizes and all(re.fullmatch(r"\d+ MB", s or "") for s in sizes), f"CacheSize {sizes}"
    elif name == "replicas":
        info = _primary(ec, args[0]).info("replication")
        assert info["connected_slaves"] == args[1], f"{info['connected_slaves']} replicas, expected {args[1]}"
        assert len(_group(ec, args[0])["MemberClusters"]) == args[1] + 1
    elif name == "cluster_gone":
        _poll(f"{args[0]} deleted", lambda: _not_found(ec.describe_cache_clusters, CacheClusterId=args[0]))
    elif name == "writable":
        r = _primary(ec, args[0])
        assert r.set("conformance", "after-disassociate")
    elif name == "automatic_failover":
        assert _group(ec, args[0])["AutomaticFailover"] == args[1]
    elif name == "global_gone":
        _poll(f"{args[0]} deleted", lambda: _not_found(ec.describe_global_replication_groups,
                                                         GlobalReplicationGroupId=args[0]))
        assert "GlobalReplicationGroupInfo" not in _group(ec, "test-cluster") or not _group(
            ec, "test-cluster")["GlobalReplicationGroupInfo"].get("GlobalReplicationGroupId")
    elif name == "primary_changed":
        before = ctx.saved[f"primary:{args[0]}"]

        def moved() -> bool:
            group = _group(ec, args[0])
            members = group["NodeGroups"][0]["NodeGroupMembers"]
            now = [m["CacheClusterId"] for m in members if m.get("CurrentRole") == "primary"]
            return group["Status"] == "available" and bool(now) and now[0] != before
        _poll("a new primary", moved)
        assert _primary(ec, args[0]).info("replication")["role"] == "master"
    elif name == "group_gone":
        cpc.wait_deleted(ec, replication_group_id=args[0], timeout=WAIT)
    elif name == "endpoint_closed":
        import redis

        r = cpc.redis_at(ctx.saved[f"endpoint:{args[0]}"], retries=0)
        with pytest.raises(redis.ConnectionError):
            r.ping()
    elif name == "shards":
        group = _group(ec, args[0])
        assert len(group["NodeGroups"]) == args[1]
        rc = cpc.cluster_at(group["ConfigurationEndpoint"])
        info = rc.cluster_info()
        assert info["cluster_state"] == "ok" and int(info["cluster_slots_assigned"]) == 16384
        assert len(rc.get_primaries()) == args[1]
    elif name == "migrating_from":  # start-migration: the group's primary node replicates from the source
        info = _primary(ec, args[0]).info("replication")
        assert info["role"] == "slave" and str(info["master_port"]) == str(args[1]), info
        assert info["master_link_status"] == "up", info
    elif name == "user_group_has":
        assert args[1] in ec.describe_user_groups(UserGroupId=args[0])["UserGroups"][0]["UserIds"]
    else:
        raise ValueError(name)


def do_step(ctx: Context, step: dict) -> None:
    if "call" in step:
        service, operation = step["call"].split(".")
        client = ctx.ec(step.get("region")) if service == "elasticache" else localaws.client(
            service, region_name=step.get("region") or REGION)
        try:
            answer = getattr(client, operation)(**ctx.fill(step["params"]))
        except ClientError as exc:
            raise AssertionError(f"{step['call']}: {exc.response['Error']['Code']}: "
                                 f"{exc.response['Error'].get('Message', '')}") from exc
        for name, path in step.get("save", {}).items():
            ctx.values[name] = lookup(answer, path)
    elif "wait" in step:
        do_wait(ctx, step)
    elif "check" in step:
        do_check(ctx, step)
    elif "save_primary" in step:
        members = _group(ctx.ec(), step["save_primary"])["NodeGroups"][0]["NodeGroupMembers"]
        ctx.saved[f"primary:{step['save_primary']}"] = next(
            m["CacheClusterId"] for m in members if m.get("CurrentRole") == "primary")
    elif "save_endpoint" in step:
        ctx.saved[f"endpoint:{step['save_endpoint']}"] = _group(ctx.ec(), step["save_endpoint"])[
            "NodeGroups"][0]["PrimaryEndpoint"]
    elif "settle" in step:
        cpc.wait_until_settled(ctx.ec(), replication_group_id=step["settle"], timeout=WAIT)
    else:
        raise ValueError(step)


def run_case(ctx: Context, case: dict) -> dict[str, Any]:
    """Run one example (its steps first); {mismatches: {path: why}, answer, error}."""
    mismatches: dict[str, str] = {}
    for step in case["before"]:
        try:
            do_step(ctx, step)
        except Exception as exc:  # a prerequisite AWS accepts and the local endpoint does not
            log.info("%s: before-step failed: %s", case["file"], exc)
            mismatches.setdefault("before", f"{type(exc).__name__}: {str(exc)[:300]}")
    answer, error, stderr = ctx.aws(["elasticache", *case["argv"]], case.get("region"))
    mismatches.update(compare(answer, error, case["documented"], ctx))
    if error is None:
        for step in case["after"]:
            try:
                do_step(ctx, step)
            except Exception as exc:
                log.info("%s: after-step failed: %s", case["file"], exc)
                mismatches.setdefault("after", f"{type(exc).__name__}: {str(exc)[:300]}")
                break
    elif error != case["documented"].get("error"):
        mismatches["error"] += f" ({stderr.strip()[-200:]})"
    return {"mismatches": mismatches, "answer": answer, "error": error}


def cleanup(ctx: Context) -> None:
    """Delete what the examples made (whatever state a failed run left it in); raise the first failure last."""
    failures: list[Exception] = []

    def attempt(call, *args, **kwargs) -> None:
        try:
            call(*args, **kwargs)
        except ClientError as exc:  # already gone, or never made
            log.debug("cleanup %s: %s", getattr(call, "__name__", call), exc)
        except Exception as exc:
            log.warning("cleanup %s: %s", getattr(call, "__name__", call), exc)
            failures.append(exc)

    west, east = ctx.ec(), ctx.ec("us-east-1")
    gid = "sgaui-my-global-replication-group"

    def datastore_settled() -> bool:
        try:
            found = west.describe_global_replication_groups(GlobalReplicationGroupId=gid)["GlobalReplicationGroups"]
        except ClientError:
            return True
        return found[0]["Status"] == "available"

    attempt(west.disassociate_global_replication_group, GlobalReplicationGroupId=gid,
            ReplicationGroupId="my-cluster-grg-secondary", ReplicationGroupRegion="us-east-1")
    attempt(_poll, "the datastore settled", datastore_settled)
    attempt(west.delete_global_replication_group, GlobalReplicationGroupId=gid, RetainPrimaryReplicationGroup=True)
    attempt(_poll, "the datastore deleted", lambda: _not_found(west.describe_global_replication_groups,
                                                                 GlobalReplicationGroupId=gid))
    groups = [(west, g) for g in ("mygroup", "my-cluster", "test-cluster", "mycluster", "test")] + [
        (east, "my-cluster-grg-secondary")]
    for ec, g in groups:
        if not _not_found(ec.describe_replication_groups, ReplicationGroupId=g):
            attempt(cpc.wait_until_settled, ec, replication_group_id=g, timeout=WAIT)
            attempt(ec.delete_replication_group, ReplicationGroupId=g)
    for c in ("cluster-test", "my-mem-cluster"):
        if not _not_found(west.describe_cache_clusters, CacheClusterId=c):
            attempt(cpc.wait_until_settled, west, cache_cluster_id=c, timeout=WAIT)
            attempt(west.delete_cache_cluster, CacheClusterId=c)
    for ec, g in groups:
        attempt(cpc.wait_deleted, ec, replication_group_id=g, timeout=WAIT)
    for c in ("cluster-test", "my-mem-cluster"):
        attempt(cpc.wait_deleted, west, cache_cluster_id=c, timeout=WAIT)
    for s in ("mysnapshot", "my-snapshot", "my-snapshot-copy"):
        attempt(west.delete_snapshot, SnapshotName=s)
    attempt(west.delete_user_group, UserGroupId="myusergroup")
    for u in ("user1", "user2"):
        attempt(west.delete_user, UserId=u)
    for p in ("mygroup", "myparamgroup"):
        attempt(west.delete_cache_parameter_group, CacheParameterGroupName=p)
    for s in ("mygroup", "kxkxk"):
        attempt(west.delete_cache_subnet_group, CacheSubnetGroupName=s)
    if failures:
        raise failures[0]


def run_group(ctx: Context, cases: list[dict], out: dict[str, dict[str, Any]]) -> None:
    for case in cases:
        try:
            out[case["file"]] = run_case(ctx, case)
        except Exception as exc:  # one broken example must not hide the others' results
            log.warning("%s: %s", case["file"], exc)
            out[case["file"]] = {"mismatches": {"run": f"{type(exc).__name__}: {exc}"}}


# The global datastore's group runs while only groups without engines run beside it: run beside other
# groups' engine creation and deletion, its disassociated secondary's Sentinels outlived the group's deletion.
PHASES = (("test-cluster", "parameters", "subnets", "users", "not-offered"), ("cluster-test", "my-cluster", "mycluster"))


def run_all(ctx: Context) -> dict[str, dict[str, Any]]:
    """Every example once: groups (resources of their own) at the same time, each in its order, in two phases."""
    from concurrent.futures import ThreadPoolExecutor

    groups: dict[str, list[dict]] = {}
    for case in CASES:
        groups.setdefault(case["group"], []).append(case)
    assert sorted(groups) == sorted(g for phase in PHASES for g in phase), sorted(groups)
    ctx.ec(), ctx.ec("us-east-1"), ctx.value("account")  # made before the threads share them
    out: dict[str, dict[str, Any]] = {}
    for phase in PHASES:
        with ThreadPoolExecutor(max_workers=len(phase)) as pool:
            for future in [pool.submit(run_group, ctx, groups[g], out) for g in phase]:
                future.result()
    return out


@pytest.fixture(scope="module")
def results():
    ctx = Context()
    try:
        yield run_all(ctx)
    finally:
        cleanup(ctx)


def _params():
    for case in CASES:
        marks = []
        if case["file"] in LISTED:
            marks.append(pytest.mark.xfail(strict=True, raises=DiffersAsListed,
                                           reason=f"listed in {DOC.name}: {sorted(LISTED[case['file']])}"))
        yield pytest.param(case, id=case["file"].removesuffix(".rst"), marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_example(case, results):
    result = results[case["file"]]
    mismatches = result["mismatches"]
    listed = LISTED.get(case["file"])
    if listed is None:
        assert not mismatches, f"{case['file']} differs from AWS's documented answer: {mismatches}"
        return
    assert mismatches, f"{case['file']} now matches AWS's documentation: remove it from {DOC.name}"
    assert covers(listed, set(mismatches)), (
        f"{case['file']} differs otherwise than listed: differs in {mismatches}, listed {sorted(listed)}")
    raise DiffersAsListed(f"{case['file']}: {mismatches}")


def test_every_example_file_has_one_case():
    files = [c["file"] for c in CASES]
    assert len(files) == len(set(files)) == 57
    assert all(c["read"] == "2026-12-07" and c["source"].startswith("aws/aws-cli awscli/examples/elasticache/")
               for c in CASES)
    assert {d: sum(c["added"] == d for c in CASES) for d in BATCHES} == BATCHES
    assert all(re.fullmatch(r"[0-9a-f]{40}", c["added_in"]) for c in CASES)
    assert set(LISTED) <= set(files), set(LISTED) - set(files)


def test_listed_section_is_parsed():
    """The parser reads the section's format (and only that section)."""
    text = ("## Other\n- `x.rst` (`a`): no\n" + SECTION + "\n\nintro\n\n- `a-b.rst` (`Status`; `error`): why `x`\n"
            "- `c.rst` (`Members[Role=PRIMARY].Status`): y\n\n## Next\n- `d.rst` (`e`): z\n")
    assert listed_differences(text) == {"a-b.rst": {"Status", "error"}, "c.rst": {"Members[Role=PRIMARY].Status"}}


def test_covers():
    assert covers({"Status", "Users[UserId=u].*"}, {"Status", "Users[UserId=u].Name", "Users[UserId=u].ARN"})
    assert not covers({"Status"}, {"Status", "Engine"})  # differs in more than is listed
    assert not covers({"Status", "Engine"}, {"Status"})  # a listed difference is gone
    assert not covers({"Users[UserId=u].*"}, {"Users[UserId=v].Name"})


def test_compare_rejects_wrong_answers():
    """The comparison is fed answers that differ from a documented one in each way it checks."""
    class Fixed(Context):
        def __init__(self) -> None:
            self.values = {"region": REGION}

    ctx = Fixed()
    doc = {"error": None, "values": {"A.Status": "creating", "A.L[Key=k].V": "v", "A.M[*].E": "redis"},
           "present": ["A.Id"], "contains": {"A.T": ["x"]}, "unordered": []}
    good = {"A": {"Status": "creating", "L": [{"Key": "k", "V": "v"}], "M": [{"E": "redis"}], "Id": "1", "T": ["x", "y"]}}
    assert compare(good, None, doc, ctx) == {}
    assert set(compare({"A": {**good["A"], "Status": "available"}}, None, doc, ctx)) == {"A.Status"}
    assert set(compare({"A": {**good["A"], "M": [{"E": "redis"}, {"E": "memcached"}]}}, None, doc, ctx)) == {"A.M[*].E"}
    assert set(compare({"A": {k: v for k, v in good["A"].items() if k != "Id"}}, None, doc, ctx)) == {"A.Id"}
    assert set(compare({"A": {**good["A"], "T": ["y"]}}, None, doc, ctx)) == {"A.T"}
    assert set(compare({"A": {**good["A"], "L": []}}, None, doc, ctx)) == {"A.L[Key=k].V"}
    assert set(compare(None, "InvalidAction", doc, ctx)) == {"error"}


# When aws/aws-cli added the example files (`added` of each case, from its git history): the batches.
BATCHES = {"2016-02-27": 3, "2020-02-11": 28, "2020-06-26": 7, "2020-07-14": 11, "2020-10-29": 8}


def score_lines(match: set[str]) -> list[str]:
    """How many examples match, in all and by the date aws/aws-cli added them (the older ones first)."""
    lines, so_far, matched = [], 0, 0
    for date in sorted(BATCHES):
        files = [c["file"] for c in CASES if c["added"] == date]
        so_far += len(files)
        matched += len([f for f in files if f in match])
        lines.append(f"  files added by {date}: {matched} of {so_far} match")
    return lines


def test_score(results, capsys):
    match = [f for f, r in results.items() if not r["mismatches"]]
    with capsys.disabled():
        print(f"\nAWS CLI examples: {len(match)} of {len(CASES)} examples match outright "
              f"({len(LISTED)} listed as differing in {DOC.name})")
        print("\n".join(score_lines(set(match))))
    # aws/aws-cli's tree held 3, 31, 38, 49, then 57 example files (BATCHES): of the 49 it held from 2020-07-14
    # until the RBAC examples came, at least 45 match outright
    older = [c["file"] for c in CASES if c["added"] <= "2020-07-14"]
    assert len(older) == 49 and len(set(older) & set(match)) >= 45, sorted(set(older) - set(match))
    assert len(match) + len(LISTED) == len(CASES), (
        sorted(set(results) - set(match) - set(LISTED)), sorted(set(match) & set(LISTED)))
