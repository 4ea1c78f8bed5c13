"""Session stores against real Redis and Memcached, and the web app served by two real instances."""

from __future__ import annotations

import uuid

import pytest

from helpers import memcached_client, redis_client
from helpers.topics import sessions


@pytest.fixture(scope="module")
def r():
    client = redis_client()
    yield client
    for key in client.scan_iter(match="t04*"):
        client.delete(key)


@pytest.fixture
def store(r):
    return sessions.RedisSessionStore(r, prefix=f"t04{uuid.uuid4().hex[:6]}", ttl=60)


@pytest.fixture
def apps(store):
    servers = sessions.start_instances(store)
    yield servers
    for s in servers:
        s.stop()


def test_session_ids_are_unguessable():
    ids = {sessions.new_session_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) >= 40 for i in ids)


def test_create_get_update_destroy(r, store):
    sid = store.create("ana", cart=["kettle"])
    assert r.type(store.key(sid)) == "hash"
    s = store.get(sid)
    assert s["user"] == "ana" and s["cart"] == ["kettle"] and s["last_seen"] >= s["created"]
    assert store.update(sid, cart=["kettle", "mug"]) and store.get(sid)["cart"] == ["kettle", "mug"]
    assert store.sessions_of("ana") == [sid]
    assert store.destroy(sid) and store.get(sid) is None and store.sessions_of("ana") == []
    assert not store.update(sid, cart=[]) and not store.destroy(sid)
    assert store.get("") is None
    with pytest.raises(ValueError):
        sessions.RedisSessionStore(r, ttl=0)


def test_sliding_expiry_renews_only_existing_sessions(r, store):
    sid = store.create("ana")
    r.pexpire(store.key(sid), 100)  # almost expired
    assert store.get(sid, touch=False) is not None and store.ttl_ms(sid) <= 100
    store.get(sid)  # a request
    assert store.ttl_ms(sid) > 50_000
    assert store.get("forged-id") is None and not r.exists(store.key("forged-id"))


def test_absolute_lifetime(r):
    s = sessions.RedisSessionStore(r, prefix="t04abs", ttl=60, absolute_ttl=0.0001)
    sid = s.create("ana")
    import time

    time.sleep(0.01)
    assert s.get(sid) is None and not r.exists(s.key(sid))


def test_revoke_user_deletes_only_their_sessions(store):
    mine = [store.create("luis") for _ in range(3)]
    other = store.create("marta")
    assert sorted(store.sessions_of("luis")) == sorted(mine)
    assert store.revoke_user("luis") == 3
    assert all(store.get(s) is None for s in mine) and store.get(other) is not None
    assert store.revoke_user("nobody") == 0


def test_two_instances_share_sessions(apps, store):
    a, b = apps
    assert a.port != b.port and a.alive and b.alive
    browser = sessions.Browser()
    assert browser.login(a, "ana", "wrong").status_code == 401
    resp = browser.login(a, "ana")
    assert resp.status_code == 200 and resp.json()["instance"] == "A"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    me = browser.me(b)
    assert me.status_code == 200 and me.json() == {"user": "ana", "cart": [], "instance": "B"}
    browser.add(a, "kettle")
    assert browser.add(b, "mug").json()["cart"] == ["kettle", "mug"]
    assert browser.logout(b).status_code == 200
    assert browser.me(a).status_code == 401
    browser.close()


def test_revocation_through_the_app(apps, store):
    a, b = apps
    laptops = [sessions.Browser() for _ in range(2)]
    for lap in laptops:
        assert lap.login(a, "jorge").status_code == 200
    store.revoke_user("jorge")
    assert [lap.me(b).status_code for lap in laptops] == [401, 401]


def test_store_errors_become_503(r):
    class Broken:
        ttl = 1

        def get(self, sid, touch=True):
            raise ConnectionError("down")

    with sessions.AppServer(sessions.create_app(Broken(), "X"), "X") as server:
        browser = sessions.Browser()
        browser.http.cookies.set("sid", "abc")
        resp = browser.me(server)
        assert resp.status_code == 503 and "unavailable" in resp.json()["error"]
    assert not server.alive


def test_stop_all():
    store = sessions.RedisSessionStore(redis_client(), prefix="t04stop", ttl=5)
    servers = sessions.start_instances(store, ("P", "Q", "R"))
    assert sessions.stop_all() >= 3
    assert not any(s.alive for s in servers) and sessions.AppServer.running == []


def test_memcached_store_with_generations():
    mc = memcached_client()
    store = sessions.MemcachedSessionStore(mc, prefix=f"t04{uuid.uuid4().hex[:6]}", ttl=60)
    sid = store.create("ana", cart=["kettle"])
    assert store.get(sid)["cart"] == ["kettle"]
    assert store.update(sid, cart=[]) and store.get(sid)["cart"] == []
    other = store.create("marta")
    store.revoke_user("ana")
    assert store.get(sid) is None and store.get(other) is not None
    fresh = store.create("ana")  # a new login after the revocation works
    assert store.get(fresh)["user"] == "ana"
    assert store.destroy(fresh) and store.get(fresh) is None
    with pytest.raises(ValueError):
        sessions.MemcachedSessionStore(mc, ttl=0.5)
