"""Isolation between learners on one machine (docs/classroom.md): another Unix user cannot reach a
learner's Redis, Memcached or local AWS endpoint, nor read the secrets of their state directory.

Needs root (it creates two throwaway Unix users and removes them) and a Python every user can run
with the course installed (the classroom's venv): `make classroom-test` sets
ELASTICACHE_LAB_CLASSROOM_VENV; without it the test is skipped.

1. In the classroom (classroom/isolate.py, what the hub's spawner runs): the learner's services
   listen on the loopback of their own network namespace; from the host, the other user finds
   nothing there (refused, or some other program that does not hold the learner's data), cannot
   join the namespace, and cannot read the state directory.
2. Without a namespace (a learner running `make lab` on a shared machine): the local AWS endpoint
   still refuses the other user's requests, unsigned or signed with their own key, with AWS's errors.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = os.environ.get("ELASTICACHE_LAB_CLASSROOM_VENV", "")
pytestmark = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and os.geteuid() == 0 and VENV and Path(VENV, "bin", "python").exists()),
    reason="needs root, Linux and the classroom's venv (make classroom-test)")

TIMEOUT = 180


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, **kw)


@pytest.fixture()
def users():
    tag = secrets.token_hex(3)
    names = [f"elab-learner-{tag}", f"elab-intruder-{tag}"]
    for name in names:
        _run(["useradd", "-m", "-s", "/bin/bash", name]).check_returncode()
    try:
        yield names
    finally:
        for name in names:
            for pid in _run(["pgrep", "-u", name]).stdout.split():
                subprocess.run(["kill", "-9", pid], capture_output=True)
            _run(["userdel", "-r", name])


def _env(user: str) -> dict[str, str]:
    pw = pwd.getpwnam(user)
    return {"HOME": pw.pw_dir, "USER": user, "LOGNAME": user, "PATH": f"{VENV}/bin:/usr/bin:/bin:/usr/sbin",
            "PYTHONPATH": str(REPO), "MALLOC_ARENA_MAX": "2", "LANG": "C.UTF-8"}


def _as(user: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
    pw = pwd.getpwnam(user)
    return _run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", *argv],
                env=_env(user), cwd="/tmp", **kw)


LEARNER = textwrap.dedent("""
    import json, os, sys, time, urllib.request, urllib.error
    import boto3
    from helpers.runtime import services, state
    marker = sys.argv[2]
    out = {}
    r, m, a = services.start("redis"), services.start("memcached"), services.start("aws")
    r.client().set("marker", marker)
    mc = m.client(); mc.set("marker", marker.encode())
    from helpers.aws import endpoint
    ec = endpoint.client("elasticache")
    ec.create_cache_cluster(CacheClusterId="mine", Engine="memcached", CacheNodeType="cache.t3.micro", NumCacheNodes=1)
    out["ports"] = {"redis": r.port, "memcached": m.port, "aws": a.port}
    out["home"] = str(state.home())
    out["own_redis"] = r.client().get("marker")
    out["own_aws"] = [c["CacheClusterId"] for c in ec.describe_cache_clusters()["CacheClusters"]]
    req = urllib.request.Request(f"http://127.0.0.1:{a.port}/", data=b"Action=DescribeCacheClusters&Version=2015-02-02",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        urllib.request.urlopen(req, timeout=30)
        out["unsigned"] = "accepted"
    except urllib.error.HTTPError as exc:
        out["unsigned"] = f"{exc.code} {exc.read().decode()}"
    out["pid"] = os.getpid()
    path = sys.argv[1]
    with open(path + ".tmp", "w") as fh:
        json.dump(out, fh)
    os.rename(path + ".tmp", path)
    deadline = time.time() + 240
    while time.time() < deadline and not os.path.exists(path + ".done"):
        time.sleep(0.3)
""")

INTRUDER = textwrap.dedent("""
    import json, os, socket, sys, urllib.request, urllib.error
    info = json.load(open(sys.argv[1])); marker = sys.argv[2]
    out = {}
    def talk(port, payload):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(payload)
                s.settimeout(5)
                return s.recv(65536).decode("latin-1")
        except OSError as exc:
            return f"refused: {exc.__class__.__name__}"
    p = info["ports"]
    out["redis"] = talk(p["redis"], b"*2\\r\\n$3\\r\\nGET\\r\\n$6\\r\\nmarker\\r\\n")
    out["memcached"] = talk(p["memcached"], b"get marker\\r\\n")
    out["aws"] = talk(p["aws"], b"POST / HTTP/1.0\\r\\nContent-Type: application/x-www-form-urlencoded\\r\\n"
                                  b"Content-Length: 47\\r\\n\\r\\nAction=DescribeCacheClusters&Version=2015-02-02")
    for name in ("", "aws-credentials", "services.json"):
        path = os.path.join(info["home"], name)
        try:
            if name:
                open(path).read()
            else:
                os.listdir(path)
            out["read:" + name] = "read"
        except OSError as exc:
            out["read:" + name] = exc.__class__.__name__
    print(json.dumps(out))
""")


def _no_leak(reply: str, marker: str) -> bool:
    return marker not in reply and "mine" not in reply


def test_a_learner_s_services_are_theirs_alone_in_the_classroom(users, open_tmp):
    learner, intruder = users
    marker = "m-" + secrets.token_hex(8)
    info_path = open_tmp / "learner.json"
    open_tmp.chmod(0o1777)
    script = open_tmp / "learner.py"
    script.write_text(LEARNER)
    (open_tmp / "intruder.py").write_text(INTRUDER)
    for p in open_tmp.iterdir():
        p.chmod(0o755)
    pw = pwd.getpwnam(learner)
    proc = subprocess.Popen([f"{VENV}/bin/python", str(REPO / "classroom" / "isolate.py"), "--user", learner,
                             "--stop-command", f"{VENV}/bin/python -m helpers stop", "--",
                             f"{VENV}/bin/python", str(script), str(info_path), marker],
                            env=_env(learner), cwd=pw.pw_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not info_path.exists():
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the learner's services did not start"
            time.sleep(0.3)
        info = json.loads(info_path.read_text())
        # The learner reaches their own services, and their endpoint refuses an unsigned request.
        assert info["own_redis"] == marker and info["own_aws"] == ["mine"], info
        assert info["unsigned"].startswith("403") and "MissingAuthenticationToken" in info["unsigned"], info
        # The other user, on the same machine: nothing of the learner's is reachable or readable.
        out = _as(intruder, [f"{VENV}/bin/python", str(open_tmp / "intruder.py"), str(info_path), marker])
        assert out.returncode == 0, out.stderr[-2000:]
        seen = json.loads(out.stdout)
        for service in ("redis", "memcached", "aws"):
            assert _no_leak(seen[service], marker), (service, seen[service])
        assert seen["read:"] == "PermissionError" and seen["read:aws-credentials"] == "PermissionError", seen
        assert seen["read:services.json"] == "PermissionError", seen
        # ... nor join the learner's network namespace.
        joined = _as(intruder, ["nsenter", f"--net=/proc/{info['pid']}/ns/net", "true"])
        assert joined.returncode != 0, "another user joined the learner's network namespace"
        mode = os.stat(info["home"]).st_mode & 0o777
        creds = os.stat(Path(info["home"]) / "aws-credentials").st_mode & 0o777
        assert mode == 0o700 and creds == 0o600, (oct(mode), oct(creds))
    finally:
        info_path.with_name(info_path.name + ".done").touch()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # When the server ends, nothing of the learner's is left running (the last ones may still be
    # being reaped by init for a moment).
    deadline = time.monotonic() + 20
    while _run(["pgrep", "-u", learner]).stdout.strip() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _run(["ps", "-o", "pid,stat,args", "-u", learner]).stdout
    assert not _run(["pgrep", "-u", learner]).stdout.strip(), left


def test_the_aws_endpoint_refuses_another_user_without_a_namespace(users, open_tmp):
    """A learner who runs the course directly on a shared machine: the endpoint is on the host's
    loopback, where the other user can connect, and it refuses every request not signed with the
    learner's key (AWS's errors, HTTP 403)."""
    learner, intruder = users
    start = _as(learner, [f"{VENV}/bin/python", "-c",
                          "import json; from helpers.runtime import services; a = services.start('aws');"
                          "from helpers.aws import endpoint; endpoint.client('sqs').create_queue(QueueName='mine');"
                          "print(json.dumps({'port': a.port}))"])
    assert start.returncode == 0, start.stderr[-3000:]
    port = json.loads(start.stdout.strip().splitlines()[-1])["port"]
    try:
        probe = textwrap.dedent(f"""
            import json, urllib.request, urllib.error, boto3, botocore
            url = "http://127.0.0.1:{port}/"
            out = {{}}
            req = urllib.request.Request(url, data=b"Action=ListQueues&Version=2012-11-05",
                                         headers={{"Content-Type": "application/x-www-form-urlencoded"}})
            try:
                urllib.request.urlopen(req, timeout=30); out["unsigned"] = "accepted"
            except urllib.error.HTTPError as exc:
                out["unsigned"] = exc.code, exc.read().decode()
            for key in ("testing", "AKIAINTRUDERKEY00000"):
                c = boto3.client("elasticache", endpoint_url=url, region_name="us-east-1",
                                 aws_access_key_id=key, aws_secret_access_key="guess")
                try:
                    c.describe_cache_clusters(); out[key] = "accepted"
                except botocore.exceptions.ClientError as exc:
                    out[key] = exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
            print(json.dumps(out))
        """)
        out = _as(intruder, [f"{VENV}/bin/python", "-c", probe])
        assert out.returncode == 0, out.stderr[-2000:]
        seen = json.loads(out.stdout)
        assert seen["unsigned"][0] == 403 and "MissingAuthenticationToken" in seen["unsigned"][1], seen
        assert seen["testing"] == ["InvalidClientTokenId", 403], seen
        assert seen["AKIAINTRUDERKEY00000"] == ["InvalidClientTokenId", 403], seen
        # The learner's key with a wrong secret: the signature does not match.
        pw = pwd.getpwnam(learner)
        key_id = next(line.split("=", 1)[1].strip() for line in
                      (Path(pw.pw_dir) / ".cache" / "elasticache-lab" / "aws-credentials").read_text().splitlines()
                      if line.startswith("aws_access_key_id"))
        wrong = _as(intruder, [f"{VENV}/bin/python", "-c", textwrap.dedent(f"""
            import boto3, botocore
            c = boto3.client("sqs", endpoint_url="http://127.0.0.1:{port}/", region_name="us-east-1",
                             aws_access_key_id="{key_id}", aws_secret_access_key="not-the-secret")
            try:
                c.list_queues(); print("accepted")
            except botocore.exceptions.ClientError as exc:
                print(exc.response["Error"]["Code"])
        """)])
        assert wrong.stdout.strip().endswith("SignatureDoesNotMatch"), (wrong.stdout, wrong.stderr[-2000:])
        # The learner's own AWS CLI (credentials from the private file) still works.
        mine = _as(learner, ["bash", "-c", f'eval "$({VENV}/bin/python -m helpers env)" && '
                                           "aws elasticache describe-cache-clusters --output json"])
        assert mine.returncode == 0 and '"CacheClusters"' in mine.stdout, mine.stderr[-2000:]
        assert "aws_secret_access_key" not in _as(learner, [f"{VENV}/bin/python", "-m", "helpers", "env"]).stdout
    finally:
        _as(learner, [f"{VENV}/bin/python", "-m", "helpers", "stop"])
