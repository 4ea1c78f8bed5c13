"""No request parameter is accepted and then ignored: every parameter of every implemented action, from
botocore's model of the API (not from our code), is either acted on or refused with InvalidParameterValue.

Three checks: every parameter a handler declares honoured (@honours) is read by it when sent (a recording
mapping of the request, the model stopped at its first call); every other parameter of the model is
refused over the real endpoint, naming it, before anything is made; and the parameters found accepted
and ignored before (NetworkType/IpDiscovery ipv6, TransitEncryptionMode preferred, LogDeliveryConfigurations,
ClusterMode compatible, create-cache-cluster Port) are either real or refused with their reason.
"""

from __future__ import annotations

import importlib
import pkgutil
import socket
from datetime import datetime, timezone

import botocore.session
import pytest
from support import elasticache_fixture, error_of

from helpers.aws import client as cpc

MODEL = botocore.session.get_session().get_service_model("elasticache")
REFUSED = ("InvalidParameterValue", "InvalidParameterCombination")
ec = elasticache_fixture("prm-")


def op_name(action: str) -> str:
    return "".join(w.capitalize() for w in action.split("_"))


def value(shape, name: str = "", depth: int = 0):
    """A plausible valid value of a botocore shape (client-side validation passes)."""
    t = shape.type_name
    if t == "string":
        if getattr(shape, "enum", None):
            return shape.enum[0]
        return "prm-" + name.lower()[:30] if name.endswith(("Id", "Name", "Identifier")) else "prm-value-" + name[:20]
    if t in ("integer", "long"):
        return max(int(shape.metadata.get("min", 1)), 1)
    if t == "double":
        return 1.0
    if t == "boolean":
        return True
    if t == "timestamp":
        return datetime(2030, 1, 1, tzinfo=timezone.utc)
    if t == "list":
        return [value(shape.member, name, depth + 1)]
    if t == "structure":
        return {k: value(v, k, depth + 1) for k, v in shape.members.items()} if depth < 4 else {}
    return {}


def handlers():
    from helpers.aws.controlplane import api

    for action, handler in api.HANDLERS.items():
        fn = next((c.cell_contents for c in handler.__closure__ or () if callable(c.cell_contents)
                   and getattr(c.cell_contents, "__module__", "").startswith("helpers.aws.controlplane.responses")),
                  None)
        if fn is not None:  # the subnet groups' handlers wrap moto's own
            assert hasattr(fn, "honours"), f"{action}'s handler declares no honoured parameters"
            yield action, fn


class _Stop(Exception):
    pass


class _Plane:
    """The model, stopped at its first call (`answer` None), or answering every call with `answer`."""

    def __init__(self, answer=None):
        self.answer = answer

    def __getattr__(self, name):
        def call(*_a, **_k):
            if self.answer is None:
                raise _Stop(name)
            return self.answer
        return call


def test_every_declared_parameter_is_read_when_sent(monkeypatch):
    from helpers.aws.controlplane import honoured, responses

    modules = [importlib.import_module(f"{responses.__name__}.{m.name}") for m in pkgutil.iter_modules(responses.__path__)]
    unread = {}
    for action, fn in handlers():
        members = MODEL.operation_model(op_name(action)).input_shape.members
        for name in sorted(fn.honours):
            assert name in members, f"{action} declares {name}, which botocore's model does not have"
            read = False
            for answer in (None, []):  # stopped at the model, or a model that found nothing (paging after it)
                for m in modules:
                    monkeypatch.setattr(m, "PLANE", _Plane(answer), raising=False)
                p = honoured.Recording({name: value(members[name], name)})
                try:
                    fn(p)
                except Exception:  # noqa: BLE001 - the model stopped or refused; what was read is recorded
                    pass
                read = read or name in p.read
            if not read:
                unread.setdefault(action, []).append(name)
    assert not unread, f"declared honoured but never read: {unread}"


def test_the_recording_sees_an_ignored_parameter():
    """The check above can fail: a handler that declares a parameter it never reads is caught."""
    from helpers.aws.controlplane import honoured

    @honours_for_test("A", "B")
    def handler(p):
        return p.get("A")

    p = honoured.Recording({"A": 1, "B": 2})
    handler(p)
    assert p.read == {"A"} and set(handler.honours) - p.read == {"B"}


def honours_for_test(*names):
    from helpers.aws.controlplane.honoured import honours

    return honours(*names)


def test_every_other_parameter_is_refused_by_name(ec):
    """Every parameter of botocore's model that a handler does not honour, sent with the action's required
    ones, is refused with InvalidParameterValue (HTTP 400) before anything is made."""
    from helpers.aws.controlplane import honoured

    accepted = []
    for action, fn in handlers():
        shape = MODEL.operation_model(op_name(action)).input_shape
        required = {k: value(shape.members[k], k) for k in shape.required_members}
        for name in sorted(set(shape.members) - honoured.honoured(fn)):
            code, msg, status = error_of(getattr(ec, action), **{**required, name: value(shape.members[name], name)})
            if code not in REFUSED or status != 400:
                accepted.append((action, name, code, msg[:80]))
            elif name not in msg and msg != honoured.NOT_LOCAL.get(action, {}).get(name):
                accepted.append((action, name, "no reason", msg[:80]))
    assert not accepted, accepted
    names = {c["CacheClusterId"] for c in ec.describe_cache_clusters()["CacheClusters"]}
    assert not {n for n in names if n.startswith("prm-")}


def _refused(call, **kwargs) -> str:
    code, msg, status = error_of(call, **kwargs)
    assert code in REFUSED and status == 400, (code, msg)
    return msg


def test_ipv6_and_compatible_are_refused_with_their_reason(ec):
    base = {"ReplicationGroupId": "prm-rg", "ReplicationGroupDescription": "d", "Engine": "valkey",
            "CacheNodeType": "cache.t4g.micro", "NumCacheClusters": 1}
    assert "127.0.0.1" in _refused(ec.create_replication_group, **base, NetworkType="ipv6")
    assert "127.0.0.1" in _refused(ec.create_replication_group, **base, IpDiscovery="ipv6")
    assert "TransitEncryptionEnabled" in _refused(ec.create_replication_group, **base,
                                                  TransitEncryptionMode="required")
    sharded = {k: v for k, v in base.items() if k != "NumCacheClusters"}
    assert "compatible" in _refused(ec.create_replication_group, **sharded, ClusterMode="compatible")
    assert "127.0.0.1" in _refused(ec.create_cache_cluster, CacheClusterId="prm-cc", Engine="memcached",
                                   CacheNodeType="cache.t4g.micro", NumCacheNodes=1, NetworkType="ipv6")
    for kwargs in ({"ClusterMode": "compatible"},):  # TLS modes and log delivery are real: test_transit_encryption.py,
        # test_log_delivery.py
        msg = _refused(ec.modify_replication_group, ReplicationGroupId="prm-rg", ApplyImmediately=True, **kwargs)
        assert "not modelled" in msg
    assert not [g for g in ec.describe_replication_groups()["ReplicationGroups"]
                if g["ReplicationGroupId"] == "prm-rg"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_create_cache_cluster_listens_on_the_port_it_was_given(ec):
    for bad in (-1, 0, 70000):
        msg = _refused(ec.create_cache_cluster, CacheClusterId="prm-port", Engine="memcached",
                       CacheNodeType="cache.t4g.micro", NumCacheNodes=1, Port=bad)
        assert "Port" in msg
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        msg = _refused(ec.create_cache_cluster, CacheClusterId="prm-port", Engine="memcached",
                       CacheNodeType="cache.t4g.micro", NumCacheNodes=1, Port=taken.getsockname()[1])
        assert "in use" in msg
    port = _free_port()
    ec.create_cache_cluster(CacheClusterId="prm-port", Engine="memcached", CacheNodeType="cache.t4g.micro",
                            NumCacheNodes=1, Port=port)
    cpc.wait_for(ec, cache_cluster_id="prm-port")
    cc = ec.describe_cache_clusters(CacheClusterId="prm-port", ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert cc["CacheNodes"][0]["Endpoint"]["Port"] == port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:  # memcached answers there
        s.sendall(b"version\r\n")
        assert s.recv(100).startswith(b"VERSION")
    ec.delete_cache_cluster(CacheClusterId="prm-port")
    cpc.wait_deleted(ec, cache_cluster_id="prm-port")


@pytest.mark.parametrize("action", ["create_replication_group", "create_cache_cluster"])
def test_refused_parameters_make_nothing(ec, action):
    """A refusal comes before the model: no resource of that name appears."""
    kwargs = {"create_replication_group": {"ReplicationGroupId": "prm-none", "ReplicationGroupDescription": "d",
                                           "NetworkType": "ipv6"},
              "create_cache_cluster": {"CacheClusterId": "prm-none", "Engine": "memcached",
                                       "CacheNodeType": "cache.t4g.micro", "NumCacheNodes": 1,
                                       "LogDeliveryConfigurations": []}}[action]
    if action == "create_cache_cluster":
        kwargs["IpDiscovery"] = "ipv6"
    _refused(getattr(ec, action), **kwargs)
    ids = [c["CacheClusterId"] for c in ec.describe_cache_clusters()["CacheClusters"]]
    assert not [i for i in ids if i.startswith("prm-none")]
