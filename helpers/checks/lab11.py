"""Lab 11 (security): exercises checked against real servers and the local AWS API.

Each checker does the real thing: applies an ACL rule to a scratch user and runs commands,
connects with the learner's TLS settings to a good server and to impostors, applies a security
group rule and reads it back, and rotates a token in the order given while an app keeps working.
"""

from __future__ import annotations

import uuid
from typing import Any

from helpers.exercises.core import Exercise, Wrong, call_learner, expect_choice, expect_type
from helpers.runtime import tls
from helpers.runtime.i18n import translator
from helpers.runtime.services import Service, start
from helpers.runtime.state import LabError
from helpers.topics import security

_ = translator(__name__)

LAB = "11"

# The services lab 11 uses; the checkers start the same ones with the same options.
APP_RULES = "on ~app:* +get +set +del"
SERVICES: dict[str, tuple[str, dict[str, Any]]] = {
    "auth": ("redis-auth", {}),
    "acl": ("redis-acl", {"users": {"app": APP_RULES}}),
    "tls": ("redis-tls", {}),
    "expired": ("redis-tls", {"cert": "expired"}),
    "wrong-host": ("redis-tls", {"cert": "wrong-host"}),
    "other-ca": ("redis-tls", {"cert": "other-ca"}),
    "memcached": ("memcached-sasl", {}),
}


def lab_service(which: str) -> Service:
    """Start (or find) one of lab 11's services: auth, acl, tls, expired, wrong-host, other-ca, memcached."""
    topo, options = SERVICES[which]
    return start(topo, name=f"lab11-{which}", **options)


# --- q2: a least-privilege ACL rule ------------------------------------------------------------

SCRATCH = "lab11-scratch"


def _outcome(fn: Any) -> str:
    import redis

    try:
        fn()
        return "allowed"
    except redis.exceptions.NoPermissionError:
        return "denied"
    except redis.AuthenticationError:
        return "login refused"


def _dry(svc: Service, command: list[str]) -> None:
    import redis

    verdict = security.dry_run(svc, SCRATCH, command)
    if verdict != "allowed":
        raise redis.exceptions.NoPermissionError(verdict)


def _check_acl_rule(answer: Any) -> str:
    import redis

    expect_type(answer, str, _("your ACL rule"))
    if not answer.strip():
        raise Wrong(_("Your ACL rule is empty: the user would have no permission at all (and be switched off)."))
    svc = lab_service("acl")
    try:
        security.set_user(svc, SCRATCH, answer)
    except LabError as exc:
        raise Wrong(str(exc)) from None
    except redis.ResponseError as exc:
        raise Wrong(_("Redis rejected the rule: {exc}. Rules are space-separated, e.g. `on ~prefix:* +get`.",
                      exc=exc)) from None
    admin = svc.client()
    admin.set("other:secret", "not for the app")
    user = security.user_client(svc, SCRATCH, **security.no_retry())
    try:
        login = _outcome(user.ping)
        if login == "login refused":
            raise Wrong(_("The user cannot log in: it is switched off. Start the rule with `on`."))
        needed = {
            "SET app:cart:1": lambda: user.set("app:cart:1", "3 items"),
            "GET app:cart:1": lambda: user.get("app:cart:1"),
            "DEL app:cart:1": lambda: user.delete("app:cart:1"),
        }
        for what, fn in needed.items():
            if _outcome(fn) != "allowed":
                raise Wrong(_("The application needs `{what}`, and your rule denies it (NOPERM). Allow the "
                              "commands GET, SET and DEL (+get +set +del) on the keys ~app:*.", what=what))
        forbidden = {
            "GET other:secret": (lambda: user.get("other:secret"),
                                 _("it can read keys outside app:* — limit keys with ~app:* instead of ~* or "
                                   "allkeys")),
            # Asked with ACL DRYRUN: a too-generous rule must not wipe the lab's cache for real.
            "FLUSHALL": (lambda: _dry(svc, ["FLUSHALL"]),
                         _("it can run FLUSHALL and wipe the whole cache — grant single commands, not +@all")),
            "CONFIG GET": (lambda: user.config_get("maxmemory"),
                           _("it can run CONFIG and change the server — grant single commands, not +@all")),
            "KEYS *": (lambda: user.keys("*"),
                       _("it can run KEYS, which blocks the server while it scans every key — leave "
                         "+@read/+@all out")),
            "HSET app:h": (lambda: user.hset("app:h", "f", "v"),
                           _("it can run commands the application does not need (HSET) — grant only "
                             "+get +set +del")),
        }
        for what, (fn, why) in forbidden.items():
            if _outcome(fn) == "allowed":
                admin.set("other:secret", "not for the app")
                raise Wrong(_("Too much privilege: `{what}` was allowed, so {why}.", what=what, why=why))
    finally:
        user.close()
        security.delete_user(svc, SCRATCH)
        admin.delete("other:secret", "app:h", "app:cart:1")
    return _("GET/SET/DEL on app:* allowed; other keys, FLUSHALL, CONFIG, KEYS and everything else denied.")


q2 = Exercise(
    lab=LAB, qid="q2", title="A least-privilege ACL rule for the application user",
    checker=_check_acl_rule,
    hint_text="Three parts: `on` (the user may log in), a key pattern `~app:*`, and the commands one by one "
              "with `+get +set +del`. Anything broader (`~*`, `+@all`, `allcommands`) gives too much.",
    solution_text="answer = 'on ~app:* +get +set +del'",
    reference="on ~app:* +get +set +del",
    wrong=[
        ("on ~* +@all", "too much privilege"),
        ("on ~app:* +@all", "flushall"),
        ("on ~* +get +set +del", "outside app:*"),
        ("on ~app:* +get", "denies it"),
        ("~app:* +get +set +del", "switched off"),
        ("on >secret ~app:* +get +set +del", "leave passwords out"),
        ("on ~app:* +get +set +del +hset", "hset"),
    ],
)


# --- q3: TLS client settings -------------------------------------------------------------------

def _check_tls_client(answer: Any) -> str:
    import redis

    good = lab_service("tls")
    client = call_learner(answer, good.host, good.port, what=_("your function make_client(host, port)"))
    if not isinstance(client, redis.Redis):
        raise Wrong(_("make_client should return a redis.Redis client, but it returned {type}.",
                      type=type(client).__name__))
    client.set_retry(security.no_retry()["retry"])
    try:
        client.ping()
    except redis.ConnectionError as exc:
        text = str(exc)
        if "verify failed" in text:
            raise Wrong(_("Your client does not trust the lab's CA, so it refuses the real server: pass "
                          "ssl_ca_certs=<the lab's CA file> (tls.tls_material().ca_file).")) from None
        raise Wrong(_("Your client could not talk to the TLS-only server — the connection was closed. It is "
                      "probably speaking plaintext: pass ssl=True.")) from None
    except redis.RedisError as exc:
        raise Wrong(_("Your client reached the server but PING failed: {exc}.", exc=exc)) from None
    finally:
        client.close()
    impostors = {
        "other-ca": _("a server whose certificate comes from a CA you do not trust (an impostor)"),
        "wrong-host": _("a server whose certificate is for another host name"),
        "expired": _("a server whose certificate has expired"),
    }
    for which, what in impostors.items():
        svc = lab_service(which)
        bad = call_learner(answer, svc.host, svc.port, what=_("your function make_client(host, port)"))
        bad.set_retry(security.no_retry()["retry"])
        try:
            bad.ping()
        except redis.ConnectionError:
            continue
        finally:
            bad.close()
        hint = (_("keep ssl_check_hostname=True") if which == "wrong-host"
                else _("never use ssl_cert_reqs='none': verification is what makes TLS safe"))
        raise Wrong(_("Your client also talked to {what}: it does not verify certificates properly — {hint}.",
                      what=what, hint=hint))
    return _("Encrypted, verified against the lab's CA, host name checked: impostors are refused.")


def _tls_reference(host: str, port: int) -> Any:
    import redis

    return redis.Redis(host=host, port=port, ssl=True, ssl_ca_certs=str(tls.tls_material().ca_file))


def _lazy_client(**options: Any) -> Any:
    def make(host: str, port: int) -> Any:
        import redis

        extra = {k: (str(tls.tls_material().ca_file) if v == "LAB_CA" else v) for k, v in options.items()}
        return redis.Redis(host=host, port=port, **extra)

    return make


q3 = Exercise(
    lab=LAB, qid="q3", title="TLS client settings that verify the server",
    checker=_check_tls_client,
    hint_text="redis.Redis(host=..., port=..., ssl=True, ssl_ca_certs=...) — the CA file is "
              "tls.tls_material().ca_file. Leave certificate and host name checks on (the defaults).",
    solution_text="def make_client(host, port):\n"
                  "    return redis.Redis(host=host, port=port, ssl=True,\n"
                  "                       ssl_ca_certs=str(tls.tls_material().ca_file))",
    reference=_tls_reference,
    wrong=[
        (_lazy_client(), "pass ssl=true"),
        (_lazy_client(ssl=True), "does not trust the lab's ca"),
        (_lazy_client(ssl=True, ssl_cert_reqs="none"), "impostor"),
        (_lazy_client(ssl=True, ssl_ca_certs="LAB_CA", ssl_check_hostname=False), "another host name"),
        (lambda host, port: {"ssl": True}, "should return a redis.redis client"),
    ],
)


# --- q1: a security group rule -----------------------------------------------------------------

def _sg_pair(ec2: Any) -> tuple[str, str, str]:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["lab11-check"]}])["Vpcs"]
    vpc = vpcs[0]["VpcId"] if vpcs else ec2.create_vpc(
        CidrBlock="10.99.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "lab11-check"}]}])["Vpc"]["VpcId"]
    tag = uuid.uuid4().hex[:8]
    app = ec2.create_security_group(GroupName=f"check-app-{tag}", Description="application", VpcId=vpc)["GroupId"]
    cache = ec2.create_security_group(GroupName=f"check-cache-{tag}", Description="cache", VpcId=vpc)["GroupId"]
    return vpc, app, cache


def _cleanup_sgs(ec2: Any, *groups: str) -> None:
    for g in groups:
        try:
            perms = ec2.describe_security_groups(GroupIds=[g])["SecurityGroups"][0]["IpPermissions"]
            if perms:
                ec2.revoke_security_group_ingress(GroupId=g, IpPermissions=perms)
        except Exception:  # noqa: BLE001 - best effort clean-up of scratch groups
            pass
    for g in groups:
        try:
            ec2.delete_security_group(GroupId=g)
        except Exception:  # noqa: BLE001
            pass


def _check_sg_rule(answer: Any) -> str:
    from helpers.aws.endpoint import client

    if not callable(answer):
        raise Wrong(_("Expected a function allow_app(ec2, cache_sg_id, app_sg_id), but got {type}.",
                      type=type(answer).__name__))
    ec2 = client("ec2")
    _vpc, app, cache = _sg_pair(ec2)
    try:
        call_learner(answer, ec2, cache, app, what=_("your function allow_app(ec2, cache_sg_id, app_sg_id)"))
        perms = ec2.describe_security_groups(GroupIds=[cache])["SecurityGroups"][0]["IpPermissions"]
        if not perms:
            raise Wrong(_("After allow_app, the cache's security group has no inbound rule: nothing could "
                          "connect. Call ec2.authorize_security_group_ingress(GroupId=cache_sg_id, "
                          "IpPermissions=[...])."))
        for p in perms:
            cidrs = [r.get("CidrIp") for r in p.get("IpRanges", [])] + \
                    [r.get("CidrIpv6") for r in p.get("Ipv6Ranges", [])]
            if "0.0.0.0/0" in cidrs or "::/0" in cidrs:
                raise Wrong(_("Your rule admits 0.0.0.0/0 — any address at all. Admit only the application's "
                              "security group (UserIdGroupPairs=[{'GroupId': app_sg_id}])."))
            if cidrs:
                raise Wrong(_("Your rule admits the address range(s) {ranges}: every machine in them, not only "
                              "the application. Reference the application's security group instead "
                              "(UserIdGroupPairs).", ranges=", ".join(map(str, cidrs))))
            if p.get("IpProtocol") in ("-1", "all"):
                raise Wrong(_("Your rule opens every protocol and every port. Open TCP 6379 only "
                              "(IpProtocol='tcp', FromPort=6379, ToPort=6379)."))
            if p.get("IpProtocol") != "tcp" or p.get("FromPort") != 6379 or p.get("ToPort") != 6379:
                raise Wrong(_("Your rule opens {protocol} ports {from_port}-{to_port}; Redis listens on TCP port "
                              "6379 only (FromPort=6379, ToPort=6379).", protocol=p.get("IpProtocol"),
                              from_port=p.get("FromPort"), to_port=p.get("ToPort")))
            groups = {g.get("GroupId") for g in p.get("UserIdGroupPairs", [])}
            if groups != {app}:
                raise Wrong(_("The rule must name exactly the application's security group as its source "
                              "(found {found}).", found=sorted(groups) or _("none")))
    finally:
        _cleanup_sgs(ec2, cache, app)
    return _("Only members of the application's security group can reach TCP 6379: no address ranges at all.")


def _sg_reference(ec2: Any, cache_sg_id: str, app_sg_id: str) -> None:
    ec2.authorize_security_group_ingress(GroupId=cache_sg_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "UserIdGroupPairs": [{"GroupId": app_sg_id}]}])


def _sg_rule(**perm: Any) -> Any:
    def allow(ec2: Any, cache_sg_id: str, app_sg_id: str) -> None:
        p = {k: ([{"GroupId": app_sg_id}] if v == "APP" else v) for k, v in perm.items()}
        ec2.authorize_security_group_ingress(GroupId=cache_sg_id, IpPermissions=[p])

    return allow


q1 = Exercise(
    lab=LAB, qid="q1", title="A security group that admits only the application",
    checker=_check_sg_rule,
    hint_text="ec2.authorize_security_group_ingress(GroupId=cache_sg_id, IpPermissions=[{'IpProtocol': 'tcp', "
              "'FromPort': 6379, 'ToPort': 6379, 'UserIdGroupPairs': [...]}]) — the source is a group, not a CIDR.",
    solution_text="def allow_app(ec2, cache_sg_id, app_sg_id):\n"
                  "    ec2.authorize_security_group_ingress(GroupId=cache_sg_id, IpPermissions=[{\n"
                  "        'IpProtocol': 'tcp', 'FromPort': 6379, 'ToPort': 6379,\n"
                  "        'UserIdGroupPairs': [{'GroupId': app_sg_id}]}])",
    reference=_sg_reference,
    wrong=[
        (_sg_rule(IpProtocol="tcp", FromPort=6379, ToPort=6379, IpRanges=[{"CidrIp": "0.0.0.0/0"}]), "0.0.0.0/0"),
        (_sg_rule(IpProtocol="tcp", FromPort=6379, ToPort=6379, IpRanges=[{"CidrIp": "10.0.0.0/16"}]),
         "address range"),
        (_sg_rule(IpProtocol="-1", UserIdGroupPairs="APP"), "every port"),
        (_sg_rule(IpProtocol="tcp", FromPort=0, ToPort=65535, UserIdGroupPairs="APP"), "6379 only"),
        (lambda ec2, cache, app: ec2.describe_security_groups(GroupIds=[cache]), "no inbound rule"),
    ],
)


# --- q4: rotating a token without downtime -----------------------------------------------------

STEPS = ("ROTATE", "UPDATE_CLIENTS", "SET")
ROTATION_USER = "lab11-rotation"


def _check_rotation(answer: Any) -> str:
    import redis

    expect_type(answer, (list, tuple), _("your list of steps"))
    if not answer:
        raise Wrong(_("Your list of steps is empty: the token was never rotated."))
    steps = [expect_choice(s, STEPS, _("step {n}", n=i + 1)) for i, s in enumerate(answer)]
    svc = lab_service("acl")
    security.delete_user(svc, ROTATION_USER)
    security.set_user(svc, ROTATION_USER, "on ~rot:* +get +set +ping")
    old = security.user_password(svc, ROTATION_USER)
    app_token = old
    live = security.user_client(svc, ROTATION_USER, **security.no_retry())
    live.ping()
    failures: list[str] = []

    def app_requests(after: str) -> None:
        for _attempt in range(3):  # new connections, as an app scaling out or reconnecting makes
            fresh = redis.Redis(host=svc.host, port=svc.port, username=ROTATION_USER, password=app_token,
                                **security.no_retry())
            try:
                fresh.get("rot:x")
            except redis.AuthenticationError:
                failures.append(after)
            finally:
                fresh.close()
        try:
            live.get("rot:x")
        except redis.RedisError:
            failures.append(_("{step} (the already-connected client)", step=after))

    try:
        for step in steps:
            if step == "UPDATE_CLIENTS":
                app_token = security.user_password(svc, ROTATION_USER)
            else:
                try:
                    security.rotate_password(svc, ROTATION_USER, step)
                except LabError:
                    raise Wrong(_("ROTATE twice in a row is refused: a user holds at most two tokens at once. "
                                  "Finish a rotation with SET before starting another.")) from None
            app_requests(step)
        still_old = redis.Redis(host=svc.host, port=svc.port, username=ROTATION_USER, password=old,
                                **security.no_retry())
        try:
            old_works = _outcome(still_old.ping) == "allowed"
        except redis.RedisError:
            old_works = False
        finally:
            still_old.close()
    finally:
        live.close()
        security.delete_user(svc, ROTATION_USER)
    if failures:
        raise Wrong(_("{count} application request(s) failed to log in, right after {first}: the application "
                      "still held a token the server no longer accepted. Clients must switch to the new token "
                      "while both are valid, before the old one is removed.", count=len(failures), first=failures[0]))
    if "ROTATE" not in steps:
        raise Wrong(_("The token never changed: start with ROTATE (a new token, valid beside the old one)."))
    if old_works:
        raise Wrong(_("No request failed, but the old token still works at the end: finish with SET, which "
                      "keeps only the new token (until then a leaked old token still opens the door)."))
    if app_token == old:
        raise Wrong(_("The application was never given the new token: include UPDATE_CLIENTS."))
    return _("Zero failed requests, connected clients kept, and the old token no longer works.")


q4 = Exercise(
    lab=LAB, qid="q4", title="Rotate an AUTH token without downtime",
    checker=_check_rotation,
    hint_text="ElastiCache's AuthTokenUpdateStrategy has ROTATE (new token, both valid) and SET (only the new "
              "one). Where must 'give the applications the new token' go?",
    solution_text="answer = ['ROTATE', 'UPDATE_CLIENTS', 'SET']",
    reference=["ROTATE", "UPDATE_CLIENTS", "SET"],
    wrong=[
        (["ROTATE", "SET", "UPDATE_CLIENTS"], "failed to log in"),
        (["ROTATE", "UPDATE_CLIENTS"], "old token still works"),
        (["UPDATE_CLIENTS", "ROTATE", "SET"], "failed"),
        (["SET"], "never changed"),
        (["ROTATE", "ROTATE"], "at most two"),
        (["rotate", "update", "set"], "not one of the choices"),
        ("ROTATE, UPDATE_CLIENTS, SET", "list"),
    ],
)


# --- q5: envelope encryption of a backup -----------------------------------------------------------

def _backup_key(kms: Any) -> str:
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    if aliases.get("alias/lab11-backups"):
        return aliases["alias/lab11-backups"]
    key_id = kms.create_key(Description="lab 11: backups of the cache")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/lab11-backups", TargetKeyId=key_id)
    return key_id


def _check_envelope(answer: Any) -> str:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from helpers.aws.endpoint import client

    if not callable(answer):
        raise Wrong(_("Expected a function seal(kms, key_id, data), but got {type}.", type=type(answer).__name__))
    kms = client("kms")
    key_id = _backup_key(kms)
    data = b"REDIS0011...app:customer:42:card 4111 1111 1111 1111..."
    what = _("your function seal(kms, key_id, data)")
    sealed = [call_learner(answer, kms, key_id, data, what=what) for _attempt in range(2)]
    for s in sealed:
        expect_type(s, dict, _("what seal returns"))
        missing = [k for k in ("encrypted_key", "nonce", "ciphertext") if k not in s]
        if missing:
            raise Wrong(_("seal must return a dict with 'encrypted_key', 'nonce' and 'ciphertext'; missing {missing}.",
                          missing=", ".join(missing)))
        for k in ("encrypted_key", "nonce", "ciphertext"):
            if not isinstance(s[k], bytes):
                raise Wrong(_("s[{key!r}] should be bytes, but it is {type}.", key=k, type=type(s[k]).__name__))
        if b"4111 1111" in s["ciphertext"] or s["ciphertext"] == data:
            raise Wrong(_("The card number is readable in your ciphertext: the data was not encrypted."))
        if len(s["encrypted_key"]) == 32:
            raise Wrong(_("Your encrypted_key is 32 bytes: that is the *plaintext* data key. Store "
                          "generate_data_key(...)['CiphertextBlob'] instead; whoever holds the plaintext key "
                          "needs no KMS permission to read the backup."))
        try:
            key = kms.decrypt(CiphertextBlob=s["encrypted_key"])["Plaintext"]
        except Exception:  # noqa: BLE001 - any KMS refusal means the key cannot be recovered
            raise Wrong(_("KMS cannot decrypt your encrypted_key: store the CiphertextBlob that "
                          "generate_data_key returned.")) from None
        try:
            plain = AESGCM(key).decrypt(s["nonce"], s["ciphertext"], None)
        except (InvalidTag, ValueError):
            raise Wrong(_("The data key from KMS does not decrypt your ciphertext with AES-GCM and your nonce: "
                          "encrypt with AESGCM(dk['Plaintext']).encrypt(nonce, data, None).")) from None
        if plain != data:
            raise Wrong(_("Decrypting gives back something other than the data you were given."))
        if len(s["nonce"]) != 12:
            raise Wrong(_("Your nonce is {n} bytes. Use 12 bytes (96 bits), what security.encrypt_with_data_key "
                          "does: the GCM nonce length NIST SP 800-38D recommends, used as is, where any other "
                          "length is first hashed, and the only one many decryptors accept.", n=len(s["nonce"])))
    if sealed[0]["nonce"] == sealed[1]["nonce"]:
        raise Wrong(_("Two backups were sealed with the same nonce. With AES-GCM a nonce must never repeat under "
                      "one key: use os.urandom(12) each time."))
    return _("Only KMS can unwrap the data key, and without it the backup is noise.")


def _seal_reference(kms: Any, key_id: str, data: bytes) -> dict[str, bytes]:
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    nonce = os.urandom(12)
    return {"encrypted_key": dk["CiphertextBlob"], "nonce": nonce,
            "ciphertext": AESGCM(dk["Plaintext"]).encrypt(nonce, data, None)}


def _seal_plaintext_key(kms: Any, key_id: str, data: bytes) -> dict[str, bytes]:
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    nonce = os.urandom(12)
    return {"encrypted_key": dk["Plaintext"], "nonce": nonce,
            "ciphertext": AESGCM(dk["Plaintext"]).encrypt(nonce, data, None)}


def _seal_fixed_nonce(kms: Any, key_id: str, data: bytes) -> dict[str, bytes]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    nonce = b"\x00" * 12
    return {"encrypted_key": dk["CiphertextBlob"], "nonce": nonce,
            "ciphertext": AESGCM(dk["Plaintext"]).encrypt(nonce, data, None)}


def _seal_16_byte_nonce(kms: Any, key_id: str, data: bytes) -> dict[str, bytes]:
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    nonce = os.urandom(16)
    return {"encrypted_key": dk["CiphertextBlob"], "nonce": nonce,
            "ciphertext": AESGCM(dk["Plaintext"]).encrypt(nonce, data, None)}


q5 = Exercise(
    lab=LAB, qid="q5", title="Seal a backup with a KMS data key (envelope encryption)",
    checker=_check_envelope,
    hint_text="dk = kms.generate_data_key(KeyId=key_id, KeySpec='AES_256') gives 'Plaintext' (use it, then "
              "forget it) and 'CiphertextBlob' (keep it). AESGCM(key).encrypt(nonce, data, None) with a fresh "
              "12-byte nonce from os.urandom.",
    solution_text="import os\nfrom cryptography.hazmat.primitives.ciphers.aead import AESGCM\n\n"
                  "def seal(kms, key_id, data):\n"
                  "    dk = kms.generate_data_key(KeyId=key_id, KeySpec='AES_256')\n"
                  "    nonce = os.urandom(12)\n"
                  "    return {'encrypted_key': dk['CiphertextBlob'], 'nonce': nonce,\n"
                  "            'ciphertext': AESGCM(dk['Plaintext']).encrypt(nonce, data, None)}",
    reference=_seal_reference,
    wrong=[
        (_seal_plaintext_key, "plaintext* data key"),
        (_seal_fixed_nonce, "same nonce"),
        (lambda kms, key_id, data: {"encrypted_key": b"k", "nonce": b"n", "ciphertext": data}, "readable"),
        (lambda kms, key_id, data: {"ciphertext": data}, "missing"),
        (lambda kms, key_id, data: kms.encrypt(KeyId=key_id, Plaintext=data), "missing"),
        (_seal_16_byte_nonce, "use 12 bytes"),
    ],
)
