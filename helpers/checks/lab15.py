"""Lab 15 (production practices): exercises, checked on real clients, tokens and the lab's price table."""

from __future__ import annotations

from typing import Any

from helpers.exercises.core import (
    Exercise,
    LearnerCodeError,
    Wrong,
    call_learner,
    expect_choices_per_item,
    expect_keys,
    expect_number,
    expect_type,
    shown,
    type_name,
)
from helpers.runtime.i18n import N_, translator
from helpers.topics import practices

_ = translator(__name__)
LAB = "15"


# --- q1: a client that fails fast and retries politely ----------------------------------------------

RETRIES_NEEDED = 3


def _retry_behaviour(retry: Any) -> tuple[int, bool]:
    """How the client's retry policy behaves, seen through redis-py's public Retry.call_with_retry: how many
    failed attempts it makes before it gives up or succeeds (an operation that fails RETRIES_NEEDED times, then
    succeeds), and whether its backoff draws random numbers (jitter) on the way.

    redis-py's backoff policies with jitter draw their waits from the `random` module; the ones without
    (NoBackoff, ConstantBackoff, ExponentialBackoff) never do, so the random generator's state tells them
    apart without timing anything."""
    import random

    import redis

    failures = []

    def operation() -> str:
        if len(failures) < RETRIES_NEEDED:
            raise redis.ConnectionError(_("the node is restarting"))
        return "ok"

    before = random.getstate()
    try:
        call_learner(retry.call_with_retry, operation, failures.append, what=_("your client's retry policy"))
    except LearnerCodeError:
        if len(failures) <= RETRIES_NEEDED:
            return len(failures) - 1, random.getstate() != before
        raise
    return len(failures), random.getstate() != before


def _check_client(answer: Any) -> str:
    import redis

    if not callable(answer):
        raise Wrong(_("Expected a function make_client(host, port), but got {answer}.",
                      answer=type_name(answer)))
    client = call_learner(answer, "127.0.0.1", 6399, what=_("your function make_client('127.0.0.1', 6399)"))
    if not isinstance(client, redis.Redis):
        raise Wrong(_("make_client returned {client}; return a redis.Redis client.", client=type_name(client)))
    other = call_learner(answer, "127.0.0.2", 6400, what=_("your function make_client('127.0.0.2', 6400)"))
    if not isinstance(other, redis.Redis) or (other.connection_pool.connection_kwargs.get("host"),
                                              other.connection_pool.connection_kwargs.get("port")) != ("127.0.0.2", 6400):
        raise Wrong(_("make_client('127.0.0.2', 6400) returned a client for another address: connect to the host "
                      "and port your function receives."))
    timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    if timeout is None:
        raise Wrong(_("Your client has no socket_timeout: against a hung (paused) node a call waits forever, as "
                      "you saw in section 2. Pass socket_timeout=... (a second or less)."))
    if timeout > 1:
        raise Wrong(_("socket_timeout={timeout} s is longer than the 1 s the question allows: every attempt at a "
                      "hung node holds a request (and a pooled connection) that long, and each retry waits it "
                      "again (redis-py's defaults are 5 s and 10 retries).", timeout=timeout))
    retry = client.get_retry()
    retries = retry.get_retries() if retry else 0
    retried, jitter = _retry_behaviour(retry) if retry else (0, False)
    if retries < RETRIES_NEEDED or retried < RETRIES_NEEDED:
        raise Wrong(_("Your client retries {count} time(s): a node restart or a failover takes longer than that. "
                      "Pass retry=Retry(<a backoff>, 3 or more).", count=min(retries, retried)))
    if not jitter:
        raise Wrong(_("Your retries wait without jitter: NoBackoff and ConstantBackoff retry at the same fixed "
                      "pace, ExponentialBackoff grows the waits but identically for every client, so clients that "
                      "failed together retry together and hit the recovering node at once. Use EqualJitterBackoff "
                      "(or another *Jitter* policy)."))
    return (_("socket_timeout={timeout} s bounds every call; {retries} retries with jittered, growing "
              "waits spread the reconnections out while the node comes back.",
              timeout=timeout, retries=retries))


def _client_reference(host: str, port: int) -> Any:
    import redis
    from redis.backoff import EqualJitterBackoff
    from redis.retry import Retry

    return redis.Redis(host=host, port=port, socket_timeout=0.5, socket_connect_timeout=0.5,
                       retry=Retry(EqualJitterBackoff(cap=1.0, base=0.05), 5))


def _wrong_client(**kwargs: Any) -> Any:
    def make(host: str, port: int) -> Any:
        import redis

        return redis.Redis(host=host, port=port, **kwargs)
    return make


def _retry(backoff: str, retries: int) -> Any:
    from redis import backoff as b
    from redis.retry import Retry

    made = {"NoBackoff": lambda: b.NoBackoff(), "ConstantBackoff": lambda: b.ConstantBackoff(0.1)}
    return Retry(made[backoff]() if backoff in made else getattr(b, backoff)(cap=1.0, base=0.05), retries)


q1 = Exercise(
    lab=LAB, qid="q1", title="A client that fails fast and retries with backoff and jitter",
    checker=_check_client,
    hint_text="redis.Redis(host=..., port=..., socket_timeout=..., retry=Retry(EqualJitterBackoff(cap=..., "
              "base=...), retries)) — from redis.retry import Retry; from redis.backoff import EqualJitterBackoff.",
    solution_text="from redis.backoff import EqualJitterBackoff\nfrom redis.retry import Retry\n\n"
                  "def make_client(host, port):\n"
                  "    return redis.Redis(host=host, port=port, socket_timeout=0.5, socket_connect_timeout=0.5,\n"
                  "                       retry=Retry(EqualJitterBackoff(cap=1.0, base=0.05), 5))",
    reference=_client_reference,
    wrong=[
        (_wrong_client(socket_timeout=None), "no socket_timeout"),
        (_wrong_client(), "longer than"),  # redis-py 8's defaults: 5 s, 10 retries
        (lambda h, p: _wrong_client(socket_timeout=5, retry=_retry("EqualJitterBackoff", 5))(h, p), "longer than"),
        (lambda h, p: _wrong_client(socket_timeout=0.5, retry=_retry("NoBackoff", 0))(h, p), "retries 0 time"),
        (lambda h, p: _wrong_client(socket_timeout=0.5, retry=_retry("EqualJitterBackoff", 2))(h, p), "retries 2 time"),
        (lambda h, p: _wrong_client(socket_timeout=2, retry=_retry("FullJitterBackoff", 5))(h, p), "longer than"),
        (lambda h, p: _wrong_client(socket_timeout=0.5, retry=_retry("ConstantBackoff", 5))(h, p), "fixed pace"),
        (lambda h, p: _wrong_client(socket_timeout=0.5, retry=_retry("NoBackoff", 5))(h, p), "without jitter"),
        (lambda h, p: _wrong_client(socket_timeout=0.5, retry=_retry("ExponentialBackoff", 5))(h, p), "without jitter"),
        (lambda h, p: None, "return a redis.Redis"),
        (lambda h, p: _client_reference("127.0.0.1", 6399), "another address"),
    ],
)


# --- q2: connecting with an IAM token --------------------------------------------------------------------

CACHE, USER, OTHER_USER = "orders-cache", "orders-app", "billing-app"


def _is_token_for(password: Any, user_id: str, cache: str) -> bool:
    """True when `password` has the shape of an ElastiCache IAM token for this user and cache (a SigV4-presigned
    connect request without its scheme, signed for the service elasticache)."""
    if not isinstance(password, str) or "://" in password:
        return False
    parts = practices.parse_token(password)
    return (parts.get("host") == cache and parts.get("Action") == "connect" and parts.get("User") == user_id
            and parts.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256"
            and str(parts.get("X-Amz-Credential", "")).endswith("/elasticache/aws4_request")
            and len(str(parts.get("X-Amz-Signature", ""))) == 64)


def _provider_credentials(provider: Any) -> tuple[Any, Any]:
    """(username, password) from a redis-py credential provider, as redis-py asks for them on connecting."""
    if not callable(getattr(provider, "get_credentials", None)):
        raise Wrong(_("credential_provider is {provider}; redis-py calls its get_credentials() on every new "
                      "connection, so pass an object that has one (a redis.CredentialProvider, e.g. the lab's "
                      "practices.IAMCredentialProvider).", provider=type_name(provider)))
    creds = call_learner(provider.get_credentials, what=_("your credential provider's get_credentials()"))
    if isinstance(creds, str):
        creds = (creds,)
    if not isinstance(creds, (tuple, list)) or not 1 <= len(creds) <= 2:
        raise Wrong(_("get_credentials() returned {creds}; redis-py expects (username, password).",
                      creds=type_name(creds)))
    return (None, creds[0]) if len(creds) == 1 else (creds[0], creds[1])


def _check_iam_kwargs(answer: Any) -> str:
    if not callable(answer):
        raise Wrong(_("Expected a function iam_connect_kwargs(user_id, token), but got {answer}.",
                      answer=type_name(answer)))
    token = practices.iam_auth_token(USER, CACHE)
    got = call_learner(answer, USER, token, what=_("your function iam_connect_kwargs('orders-app', token)"))
    expect_type(got, dict, _("what iam_connect_kwargs returns"))
    via_provider = "credential_provider" in got
    if via_provider:
        if "password" in got or "username" in got:
            raise Wrong(_("Pass either credential_provider or username and password, not both: redis-py refuses a "
                          "client given both."))
        username, password = _provider_credentials(got["credential_provider"])
    else:
        username, password = got.get("username"), got.get("password")
    if password == USER and username == token:
        raise Wrong(_("Username and password are swapped: the user id is the user name, the token is the password."))
    if username is None:
        raise Wrong(_("No username: AUTH with a password alone authenticates the `default` user, not the "
                      "IAM-enabled user. Pass username=user_id."))
    if username != USER:
        raise Wrong(_("username is {username}; for an IAM-enabled user it is the user id ('orders-app'), which "
                      "ElastiCache requires to equal the user name.", username=shown(username)))
    if password != token and not (via_provider and _is_token_for(password, USER, CACHE)):
        raise Wrong(_("password must be the token itself (the presigned request without 'http://'), generated for "
                      "this user and cache."))
    if got.get("ssl") is not True:
        raise Wrong(_("IAM authentication works only with in-transit encryption: pass ssl=True (the token is a "
                      "bearer credential for 15 minutes; it must never cross the network in clear)."))
    again = call_learner(answer, OTHER_USER, practices.iam_auth_token(OTHER_USER, CACHE),
                         what=_("your function iam_connect_kwargs('billing-app', token)"))
    if isinstance(again, dict) and "credential_provider" in again:
        again_user = _provider_credentials(again["credential_provider"])[0]
    else:
        again_user = again.get("username") if isinstance(again, dict) else None
    if again_user != OTHER_USER:
        raise Wrong(_("For the user 'billing-app' your function gave the user name {again_user}: use the user id "
                      "your function receives.", again_user=shown(again_user)))
    if via_provider:
        return (_("a credential provider: redis-py asks it for (user id, fresh token) on every new connection, "
                  "so a pool never reconnects with an expired token; over TLS."))
    return _("user id as the user name, the token as the password, over TLS.")


def _redis_provider(user_id: str, password: str) -> Any:
    from redis.credentials import UsernamePasswordCredentialProvider

    return UsernamePasswordCredentialProvider(user_id, password)


q2 = Exercise(
    lab=LAB, qid="q2", title="Connection settings for an IAM-authenticated user",
    checker=_check_iam_kwargs,
    hint_text="Return a dict of redis.Redis keyword arguments: username=..., password=..., ssl=...",
    solution_text="def iam_connect_kwargs(user_id, token):\n"
                  "    return {'username': user_id, 'password': token, 'ssl': True}",
    reference=lambda user_id, token: {"username": user_id, "password": token, "ssl": True},
    also_right=[
        lambda u, t: {"credential_provider": practices.IAMCredentialProvider(u, CACHE), "ssl": True},
        lambda u, t: {"credential_provider": _redis_provider(u, t), "ssl": True},
    ],
    wrong=[
        (lambda u, t: {"password": t, "ssl": True}, "No username"),
        (lambda u, t: {"username": t, "password": u, "ssl": True}, "swapped"),
        (lambda u, t: {"username": u, "password": t}, "in-transit encryption"),
        (lambda u, t: {"username": u, "password": "my-static-password", "ssl": True}, "token itself"),
        (lambda u, t: [u, t], "dict"),
        (lambda u, t: {"credential_provider": practices.IAMCredentialProvider(u, CACHE)}, "in-transit encryption"),
        (lambda u, t: {"credential_provider": practices.IAMCredentialProvider(t, CACHE), "ssl": True}, "username is"),
        (lambda u, t: {"credential_provider": practices.IAMCredentialProvider(u, "other-cache"), "ssl": True},
         "token itself"),
        (lambda u, t: {"credential_provider": _redis_provider(u, "my-static-password"), "ssl": True}, "token itself"),
        (lambda u, t: {"credential_provider": (u, t), "ssl": True}, "get_credentials"),
        (lambda u, t: {"username": "orders-app", "password": t, "ssl": True}, "billing-app"),
        (lambda u, t: {"credential_provider": _redis_provider(u, t), "password": t, "ssl": True}, "not both"),
    ],
)


# --- q3: the order of a TLS migration ----------------------------------------------------------------------

STEPS = ("set_preferred", "move_clients_to_tls", "check_no_plaintext_clients", "set_required")


def _check_tls_order(answer: Any) -> str:
    expect_type(answer, (list, tuple), _("your answer"))
    steps = list(answer)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise Wrong(_("{value!r} is not one of the steps: {steps}.",
                      value=unknown[0], steps=', '.join(map(repr, STEPS))))
    if sorted(steps) != sorted(STEPS):
        raise Wrong(_("Use each of the four steps exactly once: {steps}.", steps=', '.join(map(repr, STEPS))))
    if steps.index("set_required") < steps.index("move_clients_to_tls"):
        raise Wrong(_("Setting the mode to required before the clients moved drops every plaintext connection (you "
                      "saw it in section 5): an outage for every client not yet on TLS."))
    if steps.index("move_clients_to_tls") < steps.index("set_preferred"):
        raise Wrong(_("Clients cannot move to TLS before the cluster offers it: first preferred, which opens TLS "
                      "next to plaintext."))
    if steps.index("check_no_plaintext_clients") > steps.index("set_required"):
        raise Wrong(_("Check that no plaintext client is left before you require TLS, not after: afterwards the "
                      "stragglers have already been cut off."))
    return _("preferred → clients move → nobody left on plaintext → required: no client ever loses its "
             "connection.")


q3 = Exercise(
    lab=LAB, qid="q3", title="Migrating a running cluster to TLS, in order",
    checker=_check_tls_order,
    hint_text="Which mode lets both kinds of client connect? When is it safe to refuse plaintext?",
    solution_text="answer = ['set_preferred', 'move_clients_to_tls', 'check_no_plaintext_clients', 'set_required']",
    reference=list(STEPS),
    wrong=[
        (["set_required", "move_clients_to_tls", "check_no_plaintext_clients", "set_preferred"], "outage"),
        (["move_clients_to_tls", "set_preferred", "check_no_plaintext_clients", "set_required"], "before the cluster"),
        (["set_preferred", "move_clients_to_tls", "set_required", "check_no_plaintext_clients"], "not after"),
        (["set_preferred", "set_required"], "exactly once"),
        (["set_preferred", "enable_tls", "check_no_plaintext_clients", "set_required"], "not one of the steps"),
        ("set_preferred", "list"),
    ],
)


# --- q4: a serverless bill -------------------------------------------------------------------------------------

Q4_WORKLOAD = {"data_gb": 3, "requests_per_s": 500, "kb_per_request": 4}


_ROWS = practices.load_prices()


def _q4_expected() -> float:
    rows = practices.load_prices()
    return practices.serverless_monthly(rows, "redis", **Q4_WORKLOAD)["total"]


def _check_serverless_bill(answer: Any) -> str:
    got = expect_number(answer, _("your monthly cost"))
    rows = practices.load_prices()
    want = _q4_expected()
    if abs(got - want) <= 0.01 * want:
        return _("${want:,.2f} a month; storage is {storage:.0%} of it.",
                 want=want, storage=practices.serverless_monthly(rows, 'redis', **Q4_WORKLOAD)['storage'] / want)
    one_ecpu = practices.serverless_monthly(rows, "redis", data_gb=3, requests_per_s=500, kb_per_request=1)["total"]
    if abs(got - one_ecpu) <= 0.01 * one_ecpu:
        raise Wrong(_("You counted 1 ECPU per request; each request transfers 4 KB, and ElastiCache charges 1 ECPU "
                      "per KB transferred."))
    storage_only = practices.serverless_monthly(rows, "redis", **Q4_WORKLOAD)["storage"]
    if abs(got - storage_only) <= 0.01 * storage_only:
        raise Wrong(_("That is the storage alone; add the ECPUs (requests x KB per request over the month)."))
    if abs(got - want / practices.HOURS_PER_MONTH) <= 0.01 * want / practices.HOURS_PER_MONTH:
        raise Wrong(_("That is one hour's cost; the lab estimates a month as 730 hours (8,760 h / 12)."))
    raise Wrong(_("${got:,.2f} is not it. Storage: GB x 730 h x the GB-hour price; compute: requests/s x 3600 "
                  "x 730 x ECPUs per request / 1e6 x the price per million ECPUs.", got=got))


q4 = Exercise(
    lab=LAB, qid="q4", title="A month of ElastiCache Serverless (Redis OSS)",
    checker=_check_serverless_bill,
    hint_text="practices.serverless_monthly(prices, 'redis', data_gb=..., requests_per_s=..., kb_per_request=...) "
              "does it, or compute it by hand from the table: GB-hours and million ECPUs.",
    solution_text="answer = practices.serverless_monthly(prices, 'redis', data_gb=3, requests_per_s=500,\n"
                  "                                      kb_per_request=4)['total']",
    make_reference=_q4_expected,
    wrong=[
        (practices.serverless_monthly(_ROWS, "redis", data_gb=3, requests_per_s=500, kb_per_request=1)["total"],
         "1 ECPU per request"),
        (practices.serverless_monthly(_ROWS, "redis", **Q4_WORKLOAD)["storage"], "storage alone"),
        (_q4_expected() / practices.HOURS_PER_MONTH, "one hour"),
        (_q4_expected() * 2, "not it"),
        ("about 100 dollars", "number"),
    ],
)


# --- q5: reaching the cache ----------------------------------------------------------------------------------------

PATHS = {
    "lambda_function": "vpc",
    "ecs_service_in_another_vpc": "peering",
    "thirty_vpcs_in_many_accounts": "transit_gateway",
    "developer_laptop": "bastion_or_vpn",
}
WHY = {
    "lambda_function": N_("a Lambda function reaches the cache by being attached to the cache's VPC: its "
                          "subnets plus a security group the cache's group admits"),
    "ecs_service_in_another_vpc": N_("one other VPC: VPC peering (non-overlapping CIDRs, routes both ways, the "
                                     "cache's security group admitting the other VPC's range or group)"),
    "thirty_vpcs_in_many_accounts": N_("many VPCs and accounts: a Transit Gateway hub rather than a mesh of peerings"),
    "developer_laptop": N_("a node-based cluster has no public endpoint: from outside AWS you come in through a VPN "
                           "or a bastion/SSM port forward into the VPC"),
}


def _check_paths(answer: Any) -> str:
    expect_keys(answer, PATHS, _("your dict"))
    # A Transit Gateway also connects one other VPC (it works on AWS, so it is not wrong); peering is the
    # simpler and cheaper link for a single pair of VPCs, which the feedback says.
    tgw_for_one = answer.get("ecs_service_in_another_vpc") == "transit_gateway"
    if tgw_for_one:
        answer = {**answer, "ecs_service_in_another_vpc": "peering"}
    # ElastiCache Serverless for Valkey 9.0+ can be created with a public endpoint (IAM authentication and
    # TLS 1.3 required), which a laptop reaches without a VPN: right on AWS for that kind of cache only.
    public_laptop = answer.get("developer_laptop") == "public_endpoint"
    if public_laptop:
        answer = {**answer, "developer_laptop": "bastion_or_vpn"}
    expect_choices_per_item(answer, PATHS, ("vpc", "peering", "transit_gateway", "bastion_or_vpn", "public_endpoint"),
                            explain=lambda item, got: _("{item!r}: not {got!r} — {why}.", item=item, got=got,
                                                         why=_(WHY[item])))
    note = _(" A Transit Gateway for the single other VPC works too; for one pair of VPCs, peering is simpler and "
             "has no per-attachment or per-GB processing charge.") if tgw_for_one else ""
    if public_laptop:
        note += _(" A public endpoint for the laptop is right only for an ElastiCache Serverless cache for Valkey "
                  "9.0 or later created with one (IAM authentication and TLS 1.3 required); a node-based cluster has "
                  "none, and its laptop path is a VPN or a bastion.")
        return _("The other paths end inside the cache's VPC, through a security group.") + note
    return _("No public endpoints: every path ends inside the cache's VPC, through a security group.") + note


q5 = Exercise(
    lab=LAB, qid="q5", title="How each client reaches the cache",
    checker=_check_paths,
    hint_text="An ElastiCache node has only private addresses in its VPC. What brings each client into that VPC?",
    solution_text="answer = {'lambda_function': 'vpc', 'ecs_service_in_another_vpc': 'peering',\n"
                  "          'thirty_vpcs_in_many_accounts': 'transit_gateway', 'developer_laptop': 'bastion_or_vpn'}",
    reference=dict(PATHS),
    also_right=[{**PATHS, "ecs_service_in_another_vpc": "transit_gateway"},
                {**PATHS, "developer_laptop": "public_endpoint"}],
    wrong=[
        ({**PATHS, "ecs_service_in_another_vpc": "public_endpoint"}, "VPC peering"),
        ({**PATHS, "developer_laptop": "vpc"}, "VPN"),
        ({**PATHS, "lambda_function": "public_endpoint"}, "attached to the cache's VPC"),
        ({**PATHS, "thirty_vpcs_in_many_accounts": "peering"}, "Transit Gateway"),
        ({"lambda_function": "vpc"}, "missing"),
        ({**PATHS, "ecs_service_in_another_vpc": "internet"}, "not one of the choices"),
    ],
)
