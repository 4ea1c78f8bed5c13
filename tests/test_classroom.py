"""A class on one server (docs/classroom.md): JupyterHub from PyPI with configurable-http-proxy from
npm and classroom/jupyterhub_config.py, four throwaway Unix users, each running lab 00 and lab 09 at
the same time through the hub (its REST API, then each server's kernels over the proxy, as
JupyterLab does). Then: no learner reaches another's services or files, the instructor sees the
progress of those who shared it, and the capacity figure (learners per GB and per core) is printed
and written to artifacts/classroom.json.

Run by `make classroom-test` (root; it installs the hub into a venv of its own first). Skipped
without ELASTICACHE_LAB_CLASSROOM_VENV. Everything it starts is stopped, the users are removed.
"""

from __future__ import annotations

import asyncio
import grp
import json
import os
import pwd
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = os.environ.get("ELASTICACHE_LAB_CLASSROOM_VENV", "")
CHP = os.environ.get("ELASTICACHE_LAB_CHP", "")
N_LEARNERS = int(os.environ.get("ELASTICACHE_LAB_CLASSROOM_LEARNERS", "4"))
LABS = ("labs/00_welcome.ipynb", "labs/09_replication_and_failover.ipynb")
CLASS_SECONDS = (15 + 40) * 60  # class time of labs 00 and 09 (docs/instructor-guide.md, Timings per lab)
HUB_PORT, HUB_API_PORT, PROXY_API_PORT = 18700, 18701, 18702
pytestmark = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and os.geteuid() == 0 and VENV and Path(VENV, "bin", "jupyterhub").exists()),
    reason="needs root, Linux and the classroom's venv with JupyterHub (make classroom-test)")
HUB = f"http://127.0.0.1:{HUB_PORT}"


def _sh(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def api(method: str, path: str, token: str, body: dict | None = None, timeout: float = 60) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else (b"" if method in ("POST", "PUT") else None)
    req = urllib.request.Request(HUB + path, data=data, method=method,
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


# --- running a notebook through a server's kernel API, as JupyterLab does ---------------------

async def run_notebook(user: str, token: str, path: str, cell_timeout: float = 600) -> dict:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    base = f"/user/{user}"
    loop = asyncio.get_running_loop()
    status, nb = await loop.run_in_executor(None, lambda: api("GET", f"{base}/api/contents/{path}?content=1", token))
    assert status == 200, (user, path, status, nb)
    status, sess = await loop.run_in_executor(None, lambda: api(
        "POST", f"{base}/api/sessions", token, {"path": path, "type": "notebook", "name": path.rsplit("/", 1)[-1],
                                                "kernel": {"name": "python3"}}))
    assert status == 201, (user, path, status, sess)
    kernel, session = sess["kernel"]["id"], uuid.uuid4().hex
    ws = await websocket_connect(HTTPRequest(
        f"ws://127.0.0.1:{HUB_PORT}{base}/api/kernels/{kernel}/channels?session_id={session}",
        headers={"Authorization": f"token {token}"}), max_message_size=64 * 1024 * 1024)
    errors, outputs, started = [], [], time.monotonic()
    try:
        for index, cell in enumerate(nb["content"]["cells"]):
            if cell["cell_type"] != "code" or not cell["source"].strip():
                continue
            reply = await execute(ws, session, cell["source"], cell_timeout)
            outputs.append(reply["text"])
            if reply["status"] != "ok":
                errors.append(f"cell {index}: {reply.get('ename')}: {reply.get('evalue')}\n{reply['text'][-1500:]}")
                break
    finally:
        ws.close()
        await loop.run_in_executor(None, lambda: api("DELETE", f"{base}/api/sessions/{sess['id']}", token))
    return {"user": user, "lab": path, "errors": errors, "seconds": round(time.monotonic() - started, 1),
            "text": "\n".join(outputs)}


async def execute(ws, session: str, code: str, timeout: float) -> dict:
    msg_id = uuid.uuid4().hex
    await ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session, "username": "",
                   "version": "5.3", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    text, reply, idle = [], None, False
    deadline = time.monotonic() + timeout
    while not (reply and idle):
        left = deadline - time.monotonic()
        if left <= 0:
            return {"status": "error", "ename": "Timeout", "evalue": f"no reply in {timeout} s", "text": "".join(text)}
        raw = await asyncio.wait_for(ws.read_message(), left)
        if raw is None:
            return {"status": "error", "ename": "Disconnected", "evalue": "the kernel's websocket closed",
                    "text": "".join(text)}
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = msg["header"]["msg_type"], msg["content"]
        if kind == "stream":
            text.append(content.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            text.append(content.get("data", {}).get("text/plain", ""))
        elif kind == "error":
            text.append("\n".join(content.get("traceback", []))[-3000:])
        elif kind == "status" and content.get("execution_state") == "idle":
            idle = True
        elif kind == "execute_reply":
            reply = content
    return {**reply, "text": "".join(text)}


async def run_code(user: str, token: str, code: str, timeout: float = 120) -> str:
    """Run `code` in a fresh kernel of the learner's server; its printed output."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    loop = asyncio.get_running_loop()
    base = f"/user/{user}"
    status, kern = await loop.run_in_executor(None, lambda: api("POST", f"{base}/api/kernels", token, {"name": "python3"}))
    assert status == 201, (status, kern)
    session = uuid.uuid4().hex
    ws = await websocket_connect(HTTPRequest(
        f"ws://127.0.0.1:{HUB_PORT}{base}/api/kernels/{kern['id']}/channels?session_id={session}",
        headers={"Authorization": f"token {token}"}))
    try:
        reply = await execute(ws, session, code, timeout)
    finally:
        ws.close()
        await loop.run_in_executor(None, lambda: api("DELETE", f"{base}/api/kernels/{kern['id']}", token))
    assert reply["status"] == "ok", (user, reply)
    return reply["text"]


# --- measuring the class: every process of the learners (and their namespaces' wrappers) ------

class Sampler(threading.Thread):
    def __init__(self, uids: set[int], wrapper_pids: callable) -> None:
        super().__init__(daemon=True)
        self.uids, self.wrapper_pids = uids, wrapper_pids
        self.stop_event = threading.Event()
        self.peak_pss = self.peak_rss = 0
        self.cpu: dict[tuple[int, str], float] = {}
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        pss = rss = 0
        wrappers = set(self.wrapper_pids())
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                st = os.stat(f"/proc/{entry}")
                if st.st_uid not in self.uids and int(entry) not in wrappers:
                    continue
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                self.cpu[(int(entry), stat[19])] = (int(stat[11]) + int(stat[12])) / self.tick
                for line in Path(f"/proc/{entry}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
            except (OSError, ValueError, IndexError):
                continue
        self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)

    def run(self) -> None:
        while not self.stop_event.wait(1.0):
            self.sample()


@pytest.fixture()
def classroom(open_tmp):
    tag = secrets.token_hex(2)
    learners = [f"elab-c{tag}-{i}" for i in range(1, N_LEARNERS + 1)]
    group, instructors = f"elab-l{tag}", f"elab-i{tag}"
    _sh(["groupadd", group]).check_returncode()
    _sh(["groupadd", instructors]).check_returncode()
    for name in learners:
        _sh(["useradd", "-m", "-s", "/bin/bash", "-G", group, name]).check_returncode()
    class_dir = open_tmp / "class-progress"
    class_dir.mkdir()
    os.chown(class_dir, 0, grp.getgrnam(instructors).gr_gid)
    class_dir.chmod(0o3773)
    open_tmp.chmod(0o755)
    state = open_tmp / "hub"
    token = secrets.token_hex(24)
    env = {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root", "LANG": "C.UTF-8",
           "ELASTICACHE_LAB_COURSE": str(REPO), "ELASTICACHE_LAB_COURSE_PYTHON": f"{VENV}/bin/python",
           "ELASTICACHE_LAB_HUB_STATE": str(state), "ELASTICACHE_LAB_HUB_PORT": str(HUB_PORT),
           "ELASTICACHE_LAB_HUB_API_PORT": str(HUB_API_PORT), "ELASTICACHE_LAB_PROXY_API_PORT": str(PROXY_API_PORT),
           "ELASTICACHE_LAB_LEARNERS_GROUP": group, "ELASTICACHE_LAB_CLASS_DIR": str(class_dir),
           "ELASTICACHE_LAB_TEST_SERVICE_TOKEN": token, "ELASTICACHE_LAB_TEST_USERS": ",".join(learners),
           "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(24)}
    if CHP:
        env["ELASTICACHE_LAB_CHP"] = CHP
    log = open(open_tmp / "hub.log", "w")
    hub = subprocess.Popen([f"{VENV}/bin/jupyterhub", "-f", str(REPO / "classroom" / "jupyterhub_config.py")],
                           env=env, cwd=open_tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert hub.poll() is None, (open_tmp / "hub.log").read_text()[-4000:]
            try:
                if api("GET", "/hub/api/", token, timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the hub did not start in 180 s"
            time.sleep(1)
        yield {"learners": learners, "token": token, "class_dir": class_dir, "instructors": instructors,
               "log": open_tmp / "hub.log", "hub": hub}
    finally:
        for name in learners:
            with __import__("contextlib").suppress(OSError):
                api("DELETE", f"/hub/api/users/{name}/server", token, timeout=30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(_sh(["pgrep", "-u", n]).stdout.strip() for n in learners):
            time.sleep(1)
        os.killpg(hub.pid, signal.SIGTERM)
        try:
            hub.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)
            hub.wait()
        pid_file = state / "proxy.pid"
        if pid_file.exists():  # the hub stops its proxy; never leave one behind
            with __import__("contextlib").suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        log.close()
        for name in learners:
            for pid in _sh(["pgrep", "-u", name]).stdout.split():
                _sh(["kill", "-9", pid])
            _sh(["userdel", "-r", name])
        _sh(["groupdel", group])
        _sh(["groupdel", instructors])


def wrapper_pids() -> list[int]:
    out = _sh(["pgrep", "-f", str(REPO / "classroom" / "isolate.py")]).stdout.split()
    return [int(p) for p in out]


def test_a_class_of_four_on_one_server(classroom):
    learners, token = classroom["learners"], classroom["token"]
    uids = {pwd.getpwnam(n).pw_uid for n in learners}
    status, _ = api("POST", "/hub/api/users", token, {"usernames": learners})
    assert status in (201, 409), status
    started = time.monotonic()
    for name in learners:
        status, body = api("POST", f"/hub/api/users/{name}/server", token, timeout=120)
        assert status in (201, 202, 500), (status, body)  # 500: JupyterHub 6.1 on a spawn slower than 10 s; polled below
    deadline = time.monotonic() + 240
    pending = set(learners)
    while pending:
        for name in sorted(pending):
            _, user = api("GET", f"/hub/api/users/{name}", token)
            server = (user or {}).get("servers", {}).get("", {})
            if server.get("ready"):
                pending.discard(name)
            elif not server.get("pending") and time.monotonic() - started > 30:
                pytest.fail(f"{name}'s server is neither ready nor starting: "
                            f"{classroom['log'].read_text()[-4000:]}")
        assert time.monotonic() < deadline, f"servers not ready: {pending}\n{classroom['log'].read_text()[-4000:]}"
        time.sleep(1)
    spawn_seconds = time.monotonic() - started
    tokens = {}
    for name in learners:
        status, body = api("POST", f"/hub/api/users/{name}/tokens", token,
                           {"scopes": [f"access:servers!user={name}"], "expires_in": 3600, "note": "classroom-test"})
        assert status == 201, (status, body)
        tokens[name] = body["token"]

    sampler = Sampler(uids, wrapper_pids)
    sampler.sample()
    sampler.start()
    run_started = time.monotonic()

    async def everyone() -> list[dict]:
        return await asyncio.gather(*(run_notebook(n, tokens[n], lab) for n in learners for lab in LABS))
    results = asyncio.run(everyone())
    run_seconds = time.monotonic() - run_started
    sampler.stop_event.set()
    sampler.join()
    failed = [f"{r['user']} {r['lab']}: {r['errors'][0]}" for r in results if r["errors"]]
    assert not failed, "\n\n".join(failed)

    # The capacity figure.
    cpu = sum(sampler.cpu.values())
    gib = 1024 ** 3
    per_learner_pss, per_learner_cpu = sampler.peak_pss / N_LEARNERS, cpu / N_LEARNERS
    figure = {
        "learners": N_LEARNERS, "labs": list(LABS), "spawn_seconds": round(spawn_seconds, 1),
        "run_seconds": round(run_seconds, 1),
        "lab_seconds": {f"{r['user']} {r['lab']}": r["seconds"] for r in results},
        "peak_pss_mb": round(sampler.peak_pss / 2**20), "peak_rss_mb": round(sampler.peak_rss / 2**20),
        "pss_per_learner_mb": round(per_learner_pss / 2**20), "cpu_seconds": round(cpu, 1),
        "cpu_seconds_per_learner": round(per_learner_cpu, 1),
        "learners_per_gb": round(gib / per_learner_pss, 1),
        # every learner running these two labs' cells at once, back to back: the worst case
        "learners_per_core_all_running": round(run_seconds / per_learner_cpu, 2),
        # at the class's pace: the two labs' class time (15 + 40 min, printed atop each notebook)
        "learners_per_core_class_pace": round(CLASS_SECONDS / per_learner_cpu, 1),
        "cores": os.cpu_count(),
    }
    out = REPO / "artifacts"
    out.mkdir(exist_ok=True)
    (out / "classroom.json").write_text(json.dumps(figure, indent=2) + "\n")
    print("\nClassroom capacity (labs 00 and 09, each learner running both at once):\n" + json.dumps(figure, indent=2))

    # No learner reaches another's services or files.
    probe = """
import json, os, socket
from helpers.runtime import services, state
out = {"home": str(state.home()), "ws": os.path.expanduser("~/elasticache-lab"), "ports": {}}
for s in services.status():
    for n in s.nodes:
        out["ports"][f"{s.name}/{n.name}"] = n.port
r = services.start("redis"); r.client().set("owner", os.environ["USER"])
print(json.dumps(out))
"""
    async def gather_info() -> dict:
        texts = await asyncio.gather(*(run_code(n, tokens[n], probe) for n in learners))
        return {n: json.loads(t.strip().splitlines()[-1]) for n, t in zip(learners, texts, strict=True)}
    info = asyncio.run(gather_info())
    assert all(len(i["ports"]) >= 3 for i in info.values()), info

    def attack(owner: str) -> str:
        target = info[owner]
        return f"""
import json, os, socket
target = {json.dumps(target)}
out = {{"connected": [], "read": []}}
for name, port in target["ports"].items():
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(b"*2\\r\\n$3\\r\\nGET\\r\\n$5\\r\\nowner\\r\\n")
            s.settimeout(3)
            try:
                reply = s.recv(4096)
            except OSError:
                reply = b""
            if {owner!r}.encode() in reply:
                out["connected"].append(name)
    except OSError:
        pass
for path in (target["home"], os.path.join(target["home"], "aws-credentials"),
             os.path.join(target["ws"], "labs", "00_welcome.ipynb"), target["ws"]):
    try:
        open(path).read(1) if not os.path.isdir(path) else os.listdir(path)
        out["read"].append(path)
    except OSError:
        pass
print(json.dumps(out))
"""
    async def attacks() -> list[tuple[str, str, dict]]:
        pairs = [(a, learners[(i + 1) % len(learners)]) for i, a in enumerate(learners)]
        texts = await asyncio.gather(*(run_code(a, tokens[a], attack(owner)) for a, owner in pairs))
        return [(a, o, json.loads(t.strip().splitlines()[-1])) for (a, o), t in zip(pairs, texts, strict=True)]
    for attacker, owner, seen in asyncio.run(attacks()):
        assert not seen["connected"], f"{attacker} reached {owner}'s {seen['connected']}"
        assert not seen["read"], f"{attacker} read {owner}'s {seen['read']}"

    # The instructor's view: learners who shared appear (statuses only); a learner cannot read the others'.
    sharers = learners[:2]
    for name in sharers:
        out = asyncio.run(run_code(name, tokens[name], "import subprocess, sys; print(subprocess.run("
                                   "[sys.executable, '-m', 'helpers', 'progress', '--share'], capture_output=True, "
                                   "text=True).stdout)"))
        assert "Shared with the instructor" in out, out
        # a check after sharing updates the shared file (a wrong answer: recorded as tried)
        asyncio.run(run_code(name, tokens[name], "from helpers.checks.lab00 import q1; q1.check(-1)"))
    assert sorted(p.stem for p in classroom["class_dir"].glob("*.json")) == sorted(sharers)
    peek = asyncio.run(run_code(learners[1], tokens[learners[1]], f"""
import os
try:
    open({str(classroom['class_dir'] / (sharers[0] + '.json'))!r}).read(); print("read")
except OSError as exc:
    print(type(exc).__name__)
try:
    os.listdir({str(classroom['class_dir'])!r}); print("listed")
except OSError as exc:
    print(type(exc).__name__)
"""))
    assert peek.split() == ["PermissionError", "PermissionError"], peek
    view = subprocess.run([f"{VENV}/bin/python", "-m", "helpers", "class-progress", "--dir", str(classroom["class_dir"]),
                           "--json"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), "ELASTICACHE_LAB_HOME": str(classroom["log"].parent / "instr")})
    assert view.returncode == 0, view.stderr[-2000:]
    rows = json.loads(view.stdout)
    assert sorted(r["user"] for r in rows) == sorted(sharers) and all(r["solved"] + r["attempted"] >= 1 for r in rows), rows
