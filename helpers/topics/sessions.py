"""Web sessions in a shared store, and a small real web app (Flask) that uses them.

Two instances of the app run in threads of the kernel, each on its own loopback port, like two
servers behind a load balancer. Neither keeps sessions in its own memory: both read and write
them in the shared store, so a user logged in through one is logged in on the other.

Stores:
- RedisSessionStore: one hash per session (`<prefix>:sess:<sid>`) with sliding expiry, plus a
  set per user (`<prefix>:user:<id>:sessions`) so "log this user out everywhere" is one call.
- MemcachedSessionStore: one JSON value per session with sliding expiry (touch). Memcached has
  no sets, so revocation uses a per-user generation number instead; and nothing survives a restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from typing import Any, Protocol

from helpers.runtime.state import LabError

log = logging.getLogger(__name__)

COOKIE = "sid"


def new_session_id() -> str:
    """An unguessable session id: 256 bits from the OS's CSPRNG (never a counter, never a user id)."""
    return secrets.token_urlsafe(32)


class SessionStore(Protocol):
    ttl: float

    def create(self, user: str, **data: Any) -> str: ...
    def get(self, sid: str, touch: bool = True) -> dict[str, Any] | None: ...
    def update(self, sid: str, **data: Any) -> bool: ...
    def destroy(self, sid: str) -> bool: ...
    def revoke_user(self, user: str) -> int: ...


TOUCH = """
if redis.call('exists', KEYS[1]) == 0 then return {} end
redis.call('hset', KEYS[1], 'last_seen', ARGV[2])
redis.call('pexpire', KEYS[1], ARGV[1])
return redis.call('hgetall', KEYS[1])
"""


class RedisSessionStore:
    """Sessions as Redis hashes with a sliding TTL (seconds; fractions allowed for demonstrations)."""

    def __init__(self, r: Any, prefix: str = "lab04", ttl: float = 1800, absolute_ttl: float | None = None):
        if ttl <= 0:
            raise ValueError("A session TTL must be positive.")
        self.r, self.prefix, self.ttl, self.absolute_ttl = r, prefix, ttl, absolute_ttl

    def key(self, sid: str) -> str:
        return f"{self.prefix}:sess:{sid}"

    def user_key(self, user: str) -> str:
        return f"{self.prefix}:user:{user}:sessions"

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    def create(self, user: str, **data: Any) -> str:
        sid = new_session_id()
        now = time.time()
        fields = {"user": user, "created": f"{now:.3f}", "last_seen": f"{now:.3f}",
                  **{k: json.dumps(v) for k, v in data.items()}}
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.key(sid), mapping=fields)
        pipe.pexpire(self.key(sid), self._ttl_ms)
        pipe.sadd(self.user_key(user), sid)
        pipe.pexpire(self.user_key(user), self._ttl_ms)
        pipe.execute()
        return sid

    def get(self, sid: str, touch: bool = True) -> dict[str, Any] | None:
        """The session, or None; `touch` restarts its TTL (sliding expiry: only idle users are logged out)."""
        if not sid:
            return None
        key = self.key(sid)
        if touch:  # one atomic script: never resurrects a session that expired a moment ago
            flat = self.r.eval(TOUCH, 1, key, self._ttl_ms, f"{time.time():.3f}")
            raw = dict(zip(flat[::2], flat[1::2], strict=True))
        else:
            raw = self.r.hgetall(key)
        if not raw:
            return None
        if self.absolute_ttl and time.time() - float(raw["created"]) > self.absolute_ttl:
            self.destroy(sid)  # an absolute limit: even an active session must log in again eventually
            return None
        if touch:
            self.r.pexpire(self.user_key(raw["user"]), self._ttl_ms)  # the user's set outlives their sessions
        return _decode(raw)

    def update(self, sid: str, **data: Any) -> bool:
        key = self.key(sid)
        if not self.r.exists(key):
            return False
        self.r.hset(key, mapping={k: json.dumps(v) for k, v in data.items()})
        return True

    def ttl_ms(self, sid: str) -> int:
        return int(self.r.pttl(self.key(sid)))

    def destroy(self, sid: str) -> bool:
        user = self.r.hget(self.key(sid), "user")
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.key(sid))
        if user is not None:
            pipe.srem(self.user_key(user), sid)
        return bool(pipe.execute()[0])

    def sessions_of(self, user: str) -> list[str]:
        """The user's live session ids (ids whose hash already expired are dropped from the set)."""
        sids = sorted(self.r.smembers(self.user_key(user)))
        if not sids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for sid in sids:
            pipe.exists(self.key(sid))
        alive = [sid for sid, ok in zip(sids, pipe.execute(), strict=True) if ok]
        dead = set(sids) - set(alive)
        if dead:
            self.r.srem(self.user_key(user), *dead)
        return alive

    def revoke_user(self, user: str) -> int:
        """Log a user out everywhere (password change, stolen laptop): delete every session in their set."""
        sids = list(self.r.smembers(self.user_key(user)))
        pipe = self.r.pipeline(transaction=True)
        for sid in sids:
            pipe.delete(self.key(sid))
        pipe.delete(self.user_key(user))
        results = pipe.execute()
        return sum(results[:-1])


def _decode(raw: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"user": raw["user"], "created": float(raw["created"]),
                           "last_seen": float(raw["last_seen"])}
    for k, v in raw.items():
        if k not in out:
            try:
                out[k] = json.loads(v)
            except ValueError:
                out[k] = v
    return out


class MemcachedSessionStore:
    """Sessions as JSON values in Memcached, with sliding expiry via TOUCH.

    Memcached TTLs are whole seconds, it has no sets (so no list of a user's sessions) and no
    persistence. Revocation therefore works by a per-user *generation* number stored next to the
    sessions: bump it, and every session carrying the old number is rejected on its next use.
    """

    def __init__(self, client: Any, prefix: str = "lab04", ttl: int = 1800):
        if int(ttl) < 1:
            raise ValueError("Memcached expiry is in whole seconds: the TTL must be at least 1.")
        self.mc, self.prefix, self.ttl = client, prefix, int(ttl)

    def key(self, sid: str) -> str:
        return f"{self.prefix}:sess:{sid}"

    def gen_key(self, user: str) -> str:
        return f"{self.prefix}:gen:{user}"

    def _generation(self, user: str) -> int:
        raw = self.mc.get(self.gen_key(user))
        if raw is None:
            self.mc.add(self.gen_key(user), b"1", expire=0)
            raw = self.mc.get(self.gen_key(user)) or b"1"
        return int(raw)

    def create(self, user: str, **data: Any) -> str:
        sid = new_session_id()
        now = time.time()
        value = {"user": user, "created": now, "last_seen": now, "gen": self._generation(user), **data}
        self.mc.set(self.key(sid), json.dumps(value).encode(), expire=self.ttl)
        return sid

    def get(self, sid: str, touch: bool = True) -> dict[str, Any] | None:
        if not sid:
            return None
        raw = self.mc.get(self.key(sid))
        if raw is None:
            return None
        session = json.loads(raw)
        if session.get("gen") != self._generation(session["user"]):
            self.mc.delete(self.key(sid))  # revoked: its generation is old
            return None
        if touch:
            session["last_seen"] = time.time()
            self.mc.set(self.key(sid), json.dumps(session).encode(), expire=self.ttl)
        return session

    def update(self, sid: str, **data: Any) -> bool:
        session = self.get(sid, touch=False)
        if session is None:
            return False
        session.update(data)
        self.mc.set(self.key(sid), json.dumps(session).encode(), expire=self.ttl)
        return True

    def destroy(self, sid: str) -> bool:
        return bool(self.mc.delete(self.key(sid), noreply=False))

    def revoke_user(self, user: str) -> int:
        """Invalidate every session of `user` by bumping their generation (returns the new generation)."""
        self._generation(user)
        return int(self.mc.incr(self.gen_key(user), 1))


# --- the web app ------------------------------------------------------------------------------

DEMO_USERS = ("ana", "luis", "marta", "jorge")
DEMO_PASSWORD_FILE = "lab04-demo-password"


def demo_password() -> str:
    """The demo users' password: generated once per state directory, kept in an owner-only file."""
    from helpers.runtime import state

    path = state.home() / DEMO_PASSWORD_FILE
    if not path.exists():
        state.write_secret(path, secrets.token_urlsafe(12))
    return path.read_text().strip()


def create_app(store: SessionStore, name: str, secure_cookie: bool = False) -> Any:
    """A Flask app: /login, /me, /cart, /logout. `name` tells which instance answered.

    The cookie is HttpOnly (scripts cannot read it) and SameSite=Lax (not sent on cross-site
    POSTs); `secure_cookie=True` adds Secure (HTTPS only), which production must set but plain
    HTTP on loopback cannot use.
    """
    from flask import Flask, jsonify, request
    from werkzeug.security import check_password_hash, generate_password_hash

    app = Flask(f"shop-{name}")
    hashes = {u: generate_password_hash(demo_password(), method="pbkdf2:sha256:10000") for u in DEMO_USERS}

    @app.errorhandler(Exception)
    def store_down(exc: Exception) -> Any:  # e.g. the session store restarting: a clear 503, not a crash page
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return exc
        return jsonify(error=f"session store unavailable ({type(exc).__name__})", instance=name), 503

    def current() -> tuple[str | None, dict[str, Any] | None]:
        sid = request.cookies.get(COOKIE)
        return sid, store.get(sid) if sid else None

    @app.post("/login")
    def login() -> Any:
        body = request.get_json(silent=True) or {}
        user, password = str(body.get("user", "")), str(body.get("password", ""))
        if user not in hashes or not check_password_hash(hashes[user], password):
            return jsonify(error="wrong user or password", instance=name), 401
        sid = store.create(user, cart=[])
        resp = jsonify(user=user, instance=name)
        resp.set_cookie(COOKIE, sid, httponly=True, samesite="Lax", secure=secure_cookie, path="/")
        return resp

    @app.get("/me")
    def me() -> Any:
        _sid, session = current()
        if session is None:
            return jsonify(error="not logged in", instance=name), 401
        return jsonify(user=session["user"], cart=session.get("cart", []), instance=name)

    @app.post("/cart")
    def add_to_cart() -> Any:
        sid, session = current()
        if session is None:
            return jsonify(error="not logged in", instance=name), 401
        item = (request.get_json(silent=True) or {}).get("item")
        cart = list(session.get("cart", [])) + [item]
        store.update(sid, cart=cart)
        return jsonify(cart=cart, instance=name)

    @app.post("/logout")
    def logout() -> Any:
        sid = request.cookies.get(COOKIE)
        if sid:
            store.destroy(sid)
        resp = jsonify(ok=True, instance=name)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    return app


class AppServer:
    """One instance of the app on a free loopback port, served by werkzeug in a daemon thread."""

    running: list[AppServer] = []

    def __init__(self, app: Any, name: str):
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:  # no access log in the notebook
                pass

        self.name = name
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name=f"app-{name}", daemon=True)
        self.thread.start()
        AppServer.running.append(self)

    def stop(self) -> None:
        if self in AppServer.running:
            AppServer.running.remove(self)
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def __enter__(self) -> AppServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<AppServer {self.name} at {self.url}>"


def start_instances(store: SessionStore, names: tuple[str, ...] = ("A", "B")) -> list[AppServer]:
    """Start one app instance per name, all sharing `store` (what a load balancer spreads users over)."""
    try:
        return [AppServer(create_app(store, n), n) for n in names]
    except OSError as exc:
        raise LabError(f"Could not start the web app on loopback: {exc}. Is another process using all ports?") from exc


def stop_all() -> int:
    """Stop every app instance this kernel started (the lab's last cell; test teardown)."""
    servers = list(AppServer.running)
    for s in servers:
        s.stop()
    return len(servers)


class Browser:
    """A user's browser: a requests.Session that keeps cookies, plus helpers for the app's endpoints."""

    def __init__(self) -> None:
        import requests

        self.http = requests.Session()

    def login(self, server: AppServer, user: str, password: str | None = None) -> Any:
        return self.http.post(f"{server.url}/login", json={"user": user, "password": password or demo_password()},
                              timeout=10)

    def me(self, server: AppServer) -> Any:
        return self.http.get(f"{server.url}/me", timeout=10)

    def add(self, server: AppServer, item: str) -> Any:
        return self.http.post(f"{server.url}/cart", json={"item": item}, timeout=10)

    def logout(self, server: AppServer) -> Any:
        return self.http.post(f"{server.url}/logout", timeout=10)

    @property
    def sid(self) -> str | None:
        return self.http.cookies.get(COOKIE)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # closing pooled connections the server already dropped
            self.http.close()


def memcached_client_for_apps(svc: Any) -> Any:
    """A Memcached client safe to share between the app's request threads, that reconnects after a restart.

    pymemcache's basic Client is one socket and not thread-safe; PooledClient gives each thread its own
    connection, and RetryingClient retries once on a connection that died with the server.
    """
    from pymemcache.client.base import PooledClient
    from pymemcache.client.retrying import RetryingClient
    from pymemcache.exceptions import MemcacheUnexpectedCloseError

    pooled = PooledClient((svc.host, svc.port), connect_timeout=2, timeout=5, max_pool_size=16)
    return RetryingClient(pooled, attempts=3, retry_delay=0.05,
                          retry_for=[MemcacheUnexpectedCloseError, ConnectionError, BrokenPipeError])
