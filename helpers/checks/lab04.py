"""Lab 04 (session store): exercises, checked against a real Redis."""

from __future__ import annotations

from typing import Any

from helpers.exercises.core import Exercise, Wrong, call_learner, expect_choice, expect_type
from helpers.runtime.i18n import N_, translator
from helpers.runtime.services import start
from helpers.topics import sessions

_ = translator(__name__)

LAB = "04"
PREFIX = "lab04check"


def _redis() -> Any:
    return start("redis").client()  # the course's shared Redis; every key starts with lab04check:


def _store(r: Any, ttl: float = 600) -> sessions.RedisSessionStore:
    return sessions.RedisSessionStore(r, prefix=PREFIX, ttl=ttl)


def _cleanup(r: Any) -> None:
    keys = list(r.scan_iter(match=f"{PREFIX}:*", count=1000))
    if keys:
        r.delete(*keys)


NONE_RETURNED = N_("Your function returned None for a session that exists. Is its body still the `...` "
                   "placeholder, or is a `return` missing?")


# --- q1: sliding expiry -------------------------------------------------------------------------

def _check_touch(fn: Any) -> str:
    r = _redis()
    _cleanup(r)
    store = _store(r)
    try:
        sid = store.create("ana", cart=["kettle"])
        key = store.key(sid)
        r.pexpire(key, 5000)  # 9 minutes and 55 seconds of idleness have passed
        got = call_learner(fn, r, key, 600, what=_("your function touch(r, key, ttl)"))
        if got is None:
            raise Wrong(_(NONE_RETURNED))
        expect_type(got, dict, _("what touch returns"))
        if got.get("user") != "ana":
            raise Wrong(_("touch returned {got!r}; it should return the session's fields (HGETALL), e.g. "
                          "{{'user': 'ana', ...}}.", got=got))
        left = r.ttl(key)
        if left == -1:
            raise Wrong(_("The session no longer has a TTL: it would never expire, even for a user who left. "
                          "Use EXPIRE (r.expire), not PERSIST."))
        if left <= 10:
            raise Wrong(_("After touch the session expires in {left} s: the TTL was not renewed. Sliding expiry "
                          "means every request restarts the clock: r.expire(key, ttl).", left=left))
        if left > 600:
            raise Wrong(_("After touch(r, key, 600) the session expires in {left} s, more than the 600 s asked for.",
                          left=left))
        missing = store.key("no-such-session")
        gone = call_learner(fn, r, missing, 600, what=_("your function touch(r, key, ttl)"))
        if r.exists(missing):
            raise Wrong(_("touch created a key for a session that did not exist: an attacker could invent session "
                          "ids. Only renew sessions that exist (EXPIRE on a missing key does nothing; HSET would "
                          "create it)."))
        if gone is not None:
            raise Wrong(_("For a session that does not exist touch returned {gone!r}; return None so the app "
                          "answers 401 and the user logs in again.", gone=gone))
        return _("The session is good for another {left} s; an idle one still expires on its own.", left=left)
    finally:
        _cleanup(r)


def _touch_reference(r: Any, key: str, ttl: int) -> dict | None:
    pipe = r.pipeline(transaction=True)
    pipe.hgetall(key)
    pipe.expire(key, ttl)
    session, _renewed = pipe.execute()
    return session or None


def _touch_without_renewal(r: Any, key: str, ttl: int) -> dict | None:
    return r.hgetall(key) or None


def _touch_creates(r: Any, key: str, ttl: int) -> dict | None:
    r.hset(key, "last_seen", "now")
    r.expire(key, ttl)
    return r.hgetall(key)


def _touch_persist(r: Any, key: str, ttl: int) -> dict | None:
    r.persist(key)
    return r.hgetall(key) or None


q1 = Exercise(
    lab=LAB, qid="q1", title="Sliding expiry: touch a session",
    checker=_check_touch,
    hint_text="Read the hash with r.hgetall(key) and restart its clock with r.expire(key, ttl); return None "
              "when HGETALL gives an empty dict. A pipeline sends both in one round trip.",
    solution_text="def touch(r, key, ttl):\n"
                  "    pipe = r.pipeline(transaction=True)\n"
                  "    pipe.hgetall(key)\n"
                  "    pipe.expire(key, ttl)          # a no-op when the key does not exist\n"
                  "    session, _ = pipe.execute()\n"
                  "    return session or None",
    reference=_touch_reference,
    wrong=[
        (_touch_without_renewal, "not renewed"),
        (_touch_creates, "created a key"),
        (_touch_persist, "never expire"),
        (lambda r, key, ttl: (r.expire(key, ttl), r.hgetall(key))[1], "does not exist"),
        (lambda r, key: r.hgetall(key), "raised TypeError"),
    ],
)


# --- q2: revoke every session of a user ----------------------------------------------------------

def _check_revoke(fn: Any) -> str:
    r = _redis()
    _cleanup(r)
    store = _store(r)
    try:
        mine = [store.create("luis") for _ in range(3)]
        other = store.create("marta")
        count = call_learner(fn, r, "luis", what=_("your function revoke_all(r, user) (prefix {prefix!r})", prefix=PREFIX))
        alive = [sid for sid in mine if r.exists(store.key(sid))]
        if alive:
            raise Wrong(_("{alive} of luis's 3 sessions are still alive: whoever holds those cookies is still "
                          "logged in. Delete each session hash named in the user's set (SMEMBERS).",
                          alive=len(alive)))
        if not r.exists(store.key(other)):
            raise Wrong(_("marta's session is gone too: revoke only the sessions listed in luis's set."))
        if r.exists(store.user_key("luis")):
            raise Wrong(_("The set {key!r} still exists: delete it too, it lists dead sessions.",
                          key=store.user_key("luis")))
        if count is None:
            raise Wrong(_("revoke_all returned None; return how many sessions it deleted (3 here)."))
        expect_type(count, int, _("what revoke_all returns"))
        if count != 3:
            raise Wrong(_("revoke_all returned {count}; it deleted 3 sessions.", count=count))
        again = call_learner(fn, r, "luis", what=_("your function revoke_all(r, user), called again for luis"))
        if again != 0:
            raise Wrong(_("Called again for luis, who has no session left, revoke_all returned {again!r}; it "
                          "deleted nothing, so return 0 (a user can log out everywhere twice).", again=again))
        return _("luis is logged out on every device at once; marta is not affected.")
    finally:
        _cleanup(r)


def _revoke_reference(r: Any, user: str) -> int:
    members = r.smembers(f"lab04check:user:{user}:sessions")
    deleted = r.delete(*[f"lab04check:sess:{sid}" for sid in members]) if members else 0
    r.delete(f"lab04check:user:{user}:sessions")
    return deleted


def _revoke_only_set(r: Any, user: str) -> int:
    return r.delete(f"lab04check:user:{user}:sessions")


def _revoke_everyone(r: Any, user: str) -> int:
    keys = list(r.scan_iter(match="lab04check:sess:*"))
    r.delete(f"lab04check:user:{user}:sessions")
    return r.delete(*keys) if keys else 0


def _revoke_keeps_set(r: Any, user: str) -> int:
    members = r.smembers(f"lab04check:user:{user}:sessions")
    return r.delete(*[f"lab04check:sess:{sid}" for sid in members]) if members else 0


def _revoke_one_when_none(r: Any, user: str) -> int:
    members = r.smembers(f"lab04check:user:{user}:sessions")
    deleted = r.delete(*[f"lab04check:sess:{sid}" for sid in members]) if members else 1
    r.delete(f"lab04check:user:{user}:sessions")
    return deleted


q2 = Exercise(
    lab=LAB, qid="q2", title="Log a user out everywhere",
    checker=_check_revoke,
    hint_text="The set 'lab04check:user:<user>:sessions' holds the session ids; each session is the hash "
              "'lab04check:sess:<sid>'. SMEMBERS, then DEL every hash and the set; DEL returns how many it deleted.",
    solution_text="def revoke_all(r, user):\n"
                  "    members = r.smembers(f'lab04check:user:{user}:sessions')\n"
                  "    deleted = r.delete(*[f'lab04check:sess:{sid}' for sid in members]) if members else 0\n"
                  "    r.delete(f'lab04check:user:{user}:sessions')\n"
                  "    return deleted",
    reference=_revoke_reference,
    wrong=[
        (_revoke_only_set, "still alive"),
        (_revoke_everyone, "marta's session is gone"),
        (_revoke_keeps_set, "still exists"),
        (lambda r, user: 0, "still alive"),
        (_revoke_one_when_none, "return 0"),
    ],
)


# --- q3: which store for which requirement -------------------------------------------------------

def _check_store_choice(answer: Any) -> str:
    choice = expect_choice(answer, ["redis", "memcached"], _("the session store"))
    if choice == "memcached":
        raise Wrong(_("Memcached loses every session when a node restarts (everyone logged out) and has no sets "
                      "to list a user's sessions. Which engine can persist and revoke by user?"))
    return _("Redis (with a replica and persistence) keeps sessions across a node restart or failover, and a set "
             "per user makes 'log out everywhere' one call.")


q3 = Exercise(
    lab=LAB, qid="q3", title="Sessions that survive a node restart and can be revoked per user",
    checker=_check_store_choice,
    hint_text="Look at what happened to the logged-in users when each store was restarted above.",
    solution_text="answer = 'redis'",
    reference="redis",
    wrong=[("memcached", "loses every session"), ("dynamodb", "not one of"), (["redis"], "a string")],
)


# --- q4: cookie flags -----------------------------------------------------------------------------

FLAGS = {"httponly": "HttpOnly", "secure": "Secure", "samesite": "SameSite"}
WHY = {
    "httponly": N_("without HttpOnly any script on the page (an XSS bug) can read the cookie and steal the "
                   "session"),
    "secure": N_("without Secure the browser also sends the cookie over plain HTTP, where anyone on the network "
                 "can read it"),
    "samesite": N_("without SameSite the browser attaches the cookie to requests other sites trigger (CSRF)"),
}


def _check_flags(answer: Any) -> str:
    expect_type(answer, (list, set, tuple), _("your answer (a list of flag names)"))
    names = set()
    for item in answer:
        if not isinstance(item, str):
            raise Wrong(_("Each flag is a string such as 'HttpOnly'; {item!r} is not.", item=item))
        names.add(item.strip().lower().split("=")[0])
    unknown = sorted(names - set(FLAGS) - {"path", "domain", "max-age", "expires"})
    if unknown:
        raise Wrong(_("{names} is not a cookie attribute that protects a session id. "
                      "The three that do are about scripts, plain HTTP and other sites.", names=", ".join(unknown)))
    for flag in ("httponly", "secure", "samesite"):
        if flag not in names:
            raise Wrong(_("Missing {flag}: {why}.", flag=FLAGS[flag], why=_(WHY[flag])))
    return _("HttpOnly, Secure and SameSite: the session id stays out of scripts, off plain HTTP and off other "
             "sites.")


q4 = Exercise(
    lab=LAB, qid="q4", title="The attributes a session cookie needs in production",
    checker=_check_flags,
    hint_text="Three attributes: one keeps JavaScript away from the cookie, one keeps it off plain HTTP, one "
              "keeps other sites from making your browser send it.",
    solution_text="answer = ['HttpOnly', 'Secure', 'SameSite']",
    reference=["HttpOnly", "Secure", "SameSite"],
    wrong=[
        (["HttpOnly", "SameSite"], "missing secure"),
        (["Secure", "SameSite=Lax"], "missing httponly"),
        (["HttpOnly", "Secure"], "missing samesite"),
        (["HttpOnly", "Secure", "SameSite", "Encrypted"], "not a cookie attribute"),
        ("HttpOnly", "a list"),
    ],
)
