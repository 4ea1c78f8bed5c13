"""The lab touches only what it started, talks only to the servers it started, and explains
every broken state in a sentence. Loopback only; each case takes a few seconds at most."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from helpers.exercises import core
from helpers.exercises.core import Exercise, Wrong, call_learner
from helpers.runtime import engines, notebook, process, services, state
from helpers.runtime.service import Service, conf_quote, memcached_argv
from helpers.runtime.state import LabError, LabStateWarning

REPO = Path(__file__).resolve().parents[1]


def run_cli(home: Path, *args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "ELASTICACHE_LAB_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# --- 1. stop ends only the lab's own processes -------------------------------------------------

def test_stop_spares_a_process_started_by_hand_in_the_state_directory(isolated_home):
    services.start("memcached")
    bystander = subprocess.Popen(["sleep", "60"], cwd=state.home())
    try:
        stopped = services.stop()
        assert any("memcached" in s for s in stopped)
        assert bystander.poll() is None, "a process the lab did not start was stopped"
    finally:
        bystander.kill()
        bystander.wait()


def test_stop_never_ends_the_shell_that_runs_it(isolated_home):
    services.start("memcached")
    home = state.home()
    script = f"cd {json.dumps(str(home))} && {sys.executable} -m helpers stop && echo still-here"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "ELASTICACHE_LAB_HOME": str(home), "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert "still-here" in out.stdout


def test_stop_spares_a_state_directory_nested_inside(isolated_home, monkeypatch):
    outer = state.home()
    inner_home = outer / "services" / "another learner"
    monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(inner_home))
    inner = services.start("memcached")
    monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(outer))
    mine = services.start("memcached")
    try:
        services.stop()
        assert gone(mine.nodes[0].pid)
        assert inner.nodes[0].alive(), "the nested state directory's server was stopped"
        assert inner.nodes[0].pid not in {p.pid for p in process.state_dir_processes()}
    finally:
        monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(inner_home))
        services.stop()
        monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(outer))


def test_an_engine_is_recognised_by_its_config_even_without_the_ledger(isolated_home):
    svc = services.start("redis")
    try:
        (state.home() / state.LEDGER).unlink()
        (state.home() / state.REGISTRY).write_text("{}")  # every record lost
        assert svc.nodes[0].pid in {p.pid for p in process.state_dir_processes()}
        services.stop()
        assert gone(svc.nodes[0].pid)
    finally:  # no record is left to stop it by: never leave the server behind if an assertion failed
        left = process.find(svc.nodes[0].pid, svc.nodes[0].create_time)
        with contextlib.suppress(psutil.Error):
            if left is not None:
                left.kill()


def test_a_state_directory_like_tmp_claims_no_engine_started_there_by_hand(isolated_home):
    """With ELASTICACHE_LAB_HOME at a shared place (~, /tmp), an engine someone runs there is not the lab's."""
    binary = engines.find_binary("memcached")
    port = engines.free_port()
    by_hand = subprocess.Popen(memcached_argv(binary, port), cwd=state.home(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        assert by_hand.pid not in {p.pid for p in process.state_dir_processes()}
        services.stop()
        assert by_hand.poll() is None
    finally:
        by_hand.kill()
        by_hand.wait()


# --- 2. a restart never connects to another program's server ---------------------------------

class Impostor:
    """Another program that took a port and answers Redis's and Memcached's readiness probes."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port may hold TIME_WAITs
        for _ in range(100):  # the killed server's connections may hold the port a moment
            try:
                self.sock.bind((engines.LOOPBACK, port))
                break
            except OSError:
                time.sleep(0.05)
        else:
            print(subprocess.run(["ss", "-tanp"], capture_output=True, text=True).stdout)
            self.sock.bind((engines.LOOPBACK, port))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    data = conn.recv(64)
                    conn.sendall(b"+PONG\r\n" if data.startswith(b"PING") else b"VERSION 9.9.9\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.mark.parametrize("topology", ["redis", "memcached"])
def test_restart_on_a_port_another_program_took_moves_to_a_fresh_port(isolated_home, topology, capsys):
    svc = services.start(topology)
    old = svc.nodes[0]
    old.kill()
    impostor = Impostor(old.port)
    try:
        again = services.start(topology)
        node = again.nodes[0]
        assert node.port != old.port
        assert node.alive() and engines.listens_on(node.process(), node.port)
        assert services.get(topology).nodes[0].pid == node.pid  # the record holds the live process
        assert f"Port {old.port} was taken by another program" in capsys.readouterr().err
    finally:
        impostor.close()


def test_readiness_means_the_started_process_holds_the_port(isolated_home):
    sleeper = process.spawn(["sleep", "30"], cwd=state.home(), log=state.home() / "sleep.log")
    port = engines.free_port()
    impostor = Impostor(port)
    try:
        assert engines.probe_redis(engines.LOOPBACK, port)  # someone answers...
        assert not engines.listens_on(sleeper, port)  # ...but not the process we started
        with pytest.raises(LabError, match="did not answer"):
            engines.wait_ready(sleeper, engines.LOOPBACK, port, engines.probe_redis, timeout=0.5)
    finally:
        impostor.close()
        sleeper.stop()


def test_move_port_rewrites_the_command_line_and_the_config(tmp_path):
    conf = tmp_path / "redis-1000.conf"
    conf.write_text("port 0\ntls-port 1000\nsentinel monitor m 127.0.0.1 1000 2\n")
    node = engines.Node(name="n", kind="redis", role="primary", host="127.0.0.1", port=1000, pid=1, create_time=0,
                        argv=["redis-server", str(conf)], workdir=str(tmp_path), log=str(tmp_path / "log"))
    engines.move_port(node, 2000)
    assert node.port == 2000
    assert conf.read_text().splitlines() == ["port 0", "tls-port 2000", "sentinel monitor m 127.0.0.1 1000 2"]
    aws = engines.Node(name="aws", kind="aws", role="endpoint", host="127.0.0.1", port=1000, pid=1, create_time=0,
                       argv=["python", "-m", "helpers.aws.server", "--port", "1000"], workdir="/", log="/x")
    engines.move_port(aws, 3000)
    assert aws.argv[-1] == "3000" and aws.port == 3000


# --- 3. paths with spaces, quotes and non-ASCII letters -----------------------------------------

def test_conf_quote_escapes_what_redis_would_split():
    assert conf_quote('/tmp/a b/"q"\\x') == '"/tmp/a b/\\"q\\"\\\\x"'
    with pytest.raises(LabError, match="line break"):
        conf_quote("/tmp/a\nb")


@pytest.mark.parametrize("dirname", ["home with spaces", 'quo"te \\ and ü ñ 日本'])
def test_redis_topologies_start_in_a_state_directory_with_an_awkward_path(tmp_path, monkeypatch, dirname):
    monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(tmp_path / dirname))
    try:
        svc = services.start("redis", persistence=True)
        assert svc.client().set("k", "v") and svc.client().get("k") == "v"
        rep = services.start("replicated", replicas=1)
        assert rep.nodes[0].alive() and any(n.role == "sentinel" for n in rep.nodes)
    finally:
        services.stop()


# --- 4 and 6. damaged state files ----------------------------------------------------------------

NODE = {"name": "redis", "kind": "redis", "role": "standalone", "host": "127.0.0.1", "port": 1, "pid": 1,
        "create_time": 0.0, "argv": ["redis-server"], "workdir": "/", "log": "/x"}
BAD_REGISTRIES = {
    "service is a string": b'{"redis": "garbage"}',
    "aws is a string": b'{"aws": "garbage"}',
    "empty record": b'{"redis": {}}',
    "node missing fields": json.dumps({"redis": {"name": "redis", "topology": "redis", "nodes": [
        {k: v for k, v in NODE.items() if k != "pid"}]}}).encode(),
    "not utf-8": b"\x00\xff\xfe",
    "a list": b"[]",
}


@pytest.mark.parametrize("content", BAD_REGISTRIES.values(), ids=BAD_REGISTRIES.keys())
def test_a_wrongly_shaped_registry_is_set_aside_with_one_warning(isolated_home, content):
    home = state.home()
    (home / state.REGISTRY).write_bytes(content)
    with pytest.warns(LabStateWarning, match="damaged"):
        assert services.status() == []
    assert list(home.glob("services.json.corrupt-*"))
    assert services.status() == []  # once set aside, no more warnings


def test_import_and_doctor_survive_a_damaged_registry(isolated_home):
    home = state.home()
    (home / state.REGISTRY).write_bytes(b"\x00\xff\xfe")
    (home / "progress.json").write_text('{"00": {"q1": "x"}}')
    doctor = run_cli(home, "doctor")
    assert "Traceback" not in doctor.stderr and "Traceback" not in doctor.stdout
    assert "progress.json" in doctor.stdout and "damaged" in doctor.stdout
    assert "services.json" in doctor.stderr + doctor.stdout
    imported = subprocess.run([sys.executable, "-c", "import helpers"], capture_output=True, text=True,
                              env={**os.environ, "ELASTICACHE_LAB_HOME": str(home), "PYTHONPATH": str(REPO)})
    assert imported.returncode == 0 and "Traceback" not in imported.stderr


@pytest.mark.parametrize("content", ["[]", '{"00": {"q1": "x"}}', '{"00": []}'])
def test_a_wrongly_shaped_progress_file_is_set_aside(isolated_home, content):
    (state.home() / "progress.json").write_text(content)
    with pytest.warns(LabStateWarning, match="progress starts afresh"):
        assert core.progress() == {}
    core.record("00", "q1", "correct")
    assert core.progress()["00"]["q1"]["status"] == "correct"


def test_servers_of_a_truncated_registry_are_reported_and_stopped(isolated_home):
    svc = services.start("memcached")
    text = (state.home() / state.REGISTRY).read_text()
    (state.home() / state.REGISTRY).write_text(text[: len(text) // 2])
    with pytest.warns(LabStateWarning, match=r"1 server process\(es\) it recorded are still running.*helpers stop"):
        services.status()
    assert [p.pid for p in services.unrecorded_processes()] == [svc.nodes[0].pid]
    services.stop()
    assert gone(svc.nodes[0].pid)


# --- 5. problems with the state directory itself --------------------------------------------

def _one_error_line(home: str, capsys, monkeypatch) -> str:
    from helpers.tools import cli

    monkeypatch.setenv("ELASTICACHE_LAB_HOME", home)
    assert cli.main(["status"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_state_directory_problems_are_one_error_line(tmp_path, capsys, monkeypatch):
    regular = tmp_path / "a-file"
    regular.write_text("x")
    assert "not a directory" in _one_error_line(str(regular), capsys, monkeypatch)
    assert "cannot be used" in _one_error_line("/proc/no-such-dir/lab", capsys, monkeypatch)
    assert "cannot be used" in _one_error_line(str(regular / "below-a-file"), capsys, monkeypatch)


def test_a_read_only_or_unwritable_state_directory_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(tmp_path / "ro"))

    def read_only(*_a, **_k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "chmod", read_only)
    monkeypatch.setattr(Path, "write_text", read_only)
    with pytest.raises(LabError, match=r"cannot be used \(read-only file system\)"):
        state.home()
    monkeypatch.undo()
    monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(tmp_path / "rw"))
    state.home()
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    with pytest.raises(LabError, match="cannot be used"):
        state.home()


def test_importing_helpers_with_a_broken_state_directory_keeps_aws_local(tmp_path):
    regular = tmp_path / "file"
    regular.write_text("x")
    code = "import os, helpers; print(os.environ['AWS_ENDPOINT_URL'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "ELASTICACHE_LAB_HOME": str(regular), "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("http://127.0.0.1")


# --- 7, 8, 9. feedback, time limits, SystemExit -----------------------------------------------

def _exercise(checker) -> Exercise:
    return Exercise(lab="99", qid="q1", title="t", checker=checker, hint_text="", solution_text="")


def test_feedback_never_echoes_a_huge_answer():
    from helpers.checks import all_exercises

    huge = "x" * 5_000_000
    for ex in all_exercises():
        if ex.setup is None and ex.make_reference is None and isinstance(ex.reference, (str, dict)):
            answer = {k: huge for k in ex.reference} if isinstance(ex.reference, dict) else huge
            result = ex.evaluate(answer)
            assert len(result.message) <= core.MAX_FEEDBACK + 100, f"{ex}: {len(result.message)} characters"
    assert len(core.expect_choice.__doc__ or "") < 10_000
    with pytest.raises(Wrong) as exc:
        core.expect_choice(huge, ["a", "b"])
    assert len(str(exc.value)) < 300


def test_a_slow_learner_function_gets_feedback_within_the_budget(monkeypatch):
    monkeypatch.setattr(core, "TIME_BUDGET", 0.5)
    calls = []

    def slow(*_args):
        calls.append(1)
        time.sleep(3)

    started = time.monotonic()
    result = _exercise(lambda fn: [call_learner(fn, i) for i in range(4000)]).evaluate(slow)
    assert time.monotonic() - started < 2
    assert result.status == "incorrect" and "took more than 0.5 s" in result.message
    assert len(calls) == 1  # not called again once the budget was spent


def test_lab03_jitter_check_answers_quickly_for_a_sleeping_function(monkeypatch):
    from helpers.checks import lab03

    monkeypatch.setattr(core, "TIME_BUDGET", 0.5)
    started = time.monotonic()
    result = lab03.q2.evaluate(lambda base, jitter: time.sleep(30))
    assert time.monotonic() - started < 2
    assert "took more than" in result.message


def test_fast_learner_functions_are_not_slowed_down():
    result = _exercise(lambda fn: None if sum(call_learner(fn, i) for i in range(4000)) else None).evaluate(
        lambda i: i)
    assert result.correct


@pytest.mark.parametrize("exc", [SystemExit(3), SystemExit, GeneratorExit(), BaseException("odd")])
def test_base_exceptions_from_learner_code_become_feedback(exc):
    def learner(*_a, **_k):
        raise exc

    via_call = _exercise(lambda fn: call_learner(fn, 1)).evaluate(learner)
    assert via_call.status == "incorrect" and "raised" in via_call.message
    direct = _exercise(lambda fn: fn(1)).evaluate(learner)
    assert direct.status == "error"


def test_keyboard_interrupt_still_interrupts():
    def learner(*_a):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _exercise(lambda fn: fn(1)).evaluate(learner)


SAMPLE = [("00", "q2"), ("01", "q1"), ("02", "q1"), ("03", "q2"), ("04", "q1"), ("05", "q2"),
          ("06", "q1"), ("10", "q1"), ("12", "q4")]


@pytest.mark.parametrize("lab,qid", SAMPLE)
def test_system_exit_never_escapes_a_lab_check(isolated_home, lab, qid):
    from helpers.checks import all_exercises

    # The check's own budget: a 2 s budget ran out on a loaded machine before the check had called the
    # function once (it raises at once, so the budget never matters here).
    calls = []

    def exits(*_a, **_k):
        calls.append(1)
        raise SystemExit(1)

    ex = next(e for e in all_exercises() if (e.lab, e.qid) == (lab, qid))
    assert ex.evaluate(exits).status in ("incorrect", "error")
    assert calls


# --- 11. restarts after a crash say what was lost ----------------------------------------------

def test_a_restart_after_kill_9_says_what_was_lost(isolated_home, capsys):
    svc = services.start("memcached")
    killed = psutil.Process(svc.nodes[0].pid)
    os.kill(killed.pid, signal.SIGKILL)
    process.wait_gone(killed, 10)  # SIGKILL is delivered, not yet acted on, when os.kill returns
    services.start("memcached")
    err = capsys.readouterr().err
    assert "was restarted after it stopped" in err and "gone" in err
    services.start("memcached")
    assert "restarted" not in capsys.readouterr().err  # a healthy service says nothing


def test_the_aws_endpoint_restart_notice():
    node = engines.Node(name="aws", kind="aws", role="endpoint", host="127.0.0.1", port=1, pid=1, create_time=0,
                        argv=[], workdir="/", log="/x")
    svc = Service(name="aws", topology="aws", options={}, nodes=[node])
    assert services.restart_notice(svc, [node]) == (
        "The local AWS endpoint was restarted after it stopped; its resources were read back from the state "
        "directory (their data too, after a clean stop).")


def _replicated(dead_count: int) -> tuple[Service, list]:
    nodes = [engines.Node(name=f"g-{i}", kind="redis", role="replica", host="127.0.0.1", port=i, pid=i,
                          create_time=0, argv=[], workdir="/", log="/x") for i in range(1, 4)]
    return Service(name="g", topology="replicated", options={}, nodes=nodes), nodes[:dead_count]


def test_a_restart_notice_counts_one_node_in_the_singular():
    svc, dead = _replicated(1)
    assert services.restart_notice(svc, dead) == (
        "The Redis service 'g': restarted g-1 after it stopped; the restarted nodes copy their data again "
        "from the live ones.")
    svc, dead = _replicated(2)
    assert services.restart_notice(svc, dead).startswith("The Redis service 'g': restarted g-1, g-2 after they stopped;")


# --- 12. a lost server in a notebook cell is one paragraph --------------------------------------

@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    assert notebook.install(sh)
    yield sh
    sh.set_custom_exc((), None)
    InteractiveShell.clear_instance()


def test_a_lost_redis_server_is_one_paragraph_and_tb_keeps_the_traceback(shell, capsys):
    port = "lab09"
    shell.run_cell("from redis.sentinel import MasterNotFoundError\n"
                   f"raise MasterNotFoundError('No master found for {port} : ' + 'x' * 3000)")
    out = capsys.readouterr()
    text = out.out + out.err
    assert "The Redis server of this lab is not answering".lower() in text.lower()
    assert "python -m helpers status" in text and "Traceback" not in text and len(text) < 800
    shell.run_line_magic("tb", "")
    assert "Traceback" in capsys.readouterr().out


def test_a_lab_error_is_its_sentence_and_other_errors_keep_their_traceback(shell, capsys):
    shell.run_cell("from helpers import LabError; raise LabError('The thing is off. Turn it on.')")
    text = capsys.readouterr().out
    assert "LabError: The thing is off. Turn it on." in text and "Traceback" not in text
    shell.run_cell("1/0")
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_a_lost_memcached_server_is_one_paragraph(shell, capsys):
    port = engines.free_port()
    shell.run_cell(f"from pymemcache.client.base import Client; Client(('127.0.0.1', {port})).get('k')")
    text = capsys.readouterr().out
    assert "Memcached server of this lab is not answering" in text and "Traceback" not in text
    shell.run_cell("raise ConnectionRefusedError('not from a client')")
    assert "Traceback" in capsys.readouterr().out  # only errors raised by the clients are shortened


@contextlib.contextmanager
def small_disk(where: Path, size: str = "1m"):
    """A tmpfs of `size` mounted at `where` (root only: the test is skipped where mount is not permitted)."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True,
                       capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs here ({exc}): the full-disk case needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True, timeout=30)


def fill(disk: Path) -> Path:
    """Fill `disk` to the last byte with one file; its path (delete it to free the disk)."""
    filler = disk / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_under_the_state_directory_is_one_clear_error(tmp_path, monkeypatch):
    """The servers run, then the state directory's disk fills up: each client helper says so in one LabError
    (where, and what to do), never a raw `OSError: [Errno 28]`."""
    import helpers

    with small_disk(tmp_path / "disk") as disk:
        home = disk / "lab"
        monkeypatch.setenv(state.ENV_HOME, str(home))
        try:
            for name in ("redis", "memcached", "aws"):
                services.start(name)
            filler = fill(disk)
            calls = {"redis_client": helpers.redis_client, "memcached_client": helpers.memcached_client,
                     "aws_client": lambda: helpers.aws_client("elasticache")}
            for what, call in calls.items():
                with pytest.raises(LabError) as info:
                    call()
                message = str(info.value)
                assert str(home) in message and "is full" in message and state.ENV_HOME in message, (what, message)
                assert "\n" not in message, (what, message)
            filler.unlink()  # space again: the same helpers work
            assert helpers.redis_client().ping()
        finally:
            with contextlib.suppress(Exception):
                (disk / "filler").unlink()
            services.stop()


def test_a_stepped_wall_clock_leaves_the_running_engines_running(isolated_home, monkeypatch, capsys):
    """psutil's create_time() is the boot time plus the time since boot, and the boot time moves when the
    wall clock is stepped (a laptop resumed from sleep, an NTP correction, a virtual machine restored).
    The same engine must still be the same engine: alive, reused with its data, and stopped by stop()."""
    import psutil._pslinux as pslinux

    if not sys.platform.startswith("linux"):
        pytest.skip("the boot time is Linux's")
    svc = services.start("memcached")
    pid = svc.nodes[0].pid
    client = helpers_memcached(svc)
    client.set("kept", b"yes")
    real, before = pslinux.boot_time, psutil.Process(pid).create_time()
    monkeypatch.setattr(pslinux, "boot_time", lambda: real() + 10.0)  # the clock stepped 10 s forward
    assert psutil.Process(pid).create_time() - before >= 9  # what psutil now says of the same process
    again = services.start("memcached")
    assert [n.pid for n in again.nodes] == [pid] and again.nodes[0].alive()
    assert "restarted" not in capsys.readouterr().err
    assert helpers_memcached(again).get("kept") == b"yes"
    services.stop("memcached")
    assert gone(pid)


def helpers_memcached(svc):
    from pymemcache.client.base import Client

    node = svc.nodes[0]
    return Client((node.host, node.port), connect_timeout=5, timeout=5)
