"""Lab 13 (the ElastiCache control plane): exercises checked against the local API and real engines."""

from __future__ import annotations

from typing import Any

from helpers.exercises.core import Exercise, Wrong, call_learner, expect_choice, expect_type
from helpers.runtime.i18n import translator

_ = translator(__name__)

LAB = "13"
CHECK_CLUSTER = "lab13-check-mc"
CHECK_CLUSTER_SMALL = "lab13-check-mc1"  # a second, 1-node cluster: a hard-coded list cannot describe both
CHECK_PARAMS = "lab13-check-params"


def _ec() -> Any:
    from helpers.aws.endpoint import client

    return client("elasticache")


def _check_cluster(ec: Any, cluster_id: str = CHECK_CLUSTER, nodes: int = 2) -> dict[str, Any]:
    """A Memcached cluster for checking answers (created once, deleted by the lab's clean-up of 'lab13-')."""
    from botocore.exceptions import ClientError

    from helpers.aws import client as cpc

    try:
        ec.describe_cache_clusters(CacheClusterId=cluster_id)
    except ClientError:
        ec.create_cache_cluster(CacheClusterId=cluster_id, Engine="memcached", CacheNodeType="cache.t3.micro",
                                NumCacheNodes=nodes)
    return cpc.wait_for(ec, cache_cluster_id=cluster_id)


def _reference_endpoints(ec: Any, cluster_id: str) -> list[str]:
    cluster = ec.describe_cache_clusters(CacheClusterId=cluster_id, ShowCacheNodeInfo=True)["CacheClusters"][0]
    return [f"{n['Endpoint']['Address']}:{n['Endpoint']['Port']}" for n in cluster["CacheNodes"]]


def _check_endpoints(answer: Any) -> str:
    from helpers.aws import client as cpc

    ec = _ec()
    for cluster_id, nodes in ((CHECK_CLUSTER, 2), (CHECK_CLUSTER_SMALL, 1)):
        cluster = _check_cluster(ec, cluster_id, nodes)
        expected = sorted(_reference_endpoints(ec, cluster_id))
        result = call_learner(answer, ec, cluster_id, what=_("your function endpoints(ec, cluster_id)"))
        expect_type(result, list, _("what endpoints(...) returns"))
        if result and not all(isinstance(x, str) for x in result):
            raise Wrong(_("Return strings like '127.0.0.1:11211', one per node; got {type} items.",
                          type=type(result[0]).__name__))
        cfg = cluster.get("ConfigurationEndpoint", {})
        if len(expected) > 1 and result == [f"{cfg.get('Address')}:{cfg.get('Port')}"]:
            raise Wrong(_("That is the configuration endpoint only. Every node has its own endpoint under "
                          "CacheNodes[].Endpoint — and CacheNodes is only there with ShowCacheNodeInfo=True."))
        if sorted(result) != expected:
            raise Wrong(_("{cluster} has {count} node(s) at {expected}; endpoints(ec, {cluster!r}) returned "
                          "{result}. Describe the cluster you are given.", cluster=cluster_id, count=len(expected),
                          expected=expected, result=result))
        for ep in result:
            host, port = ep.rsplit(":", 1)
            cpc.memcached_at((host, int(port))).version()
    return _("The node endpoints of both clusters answer `version`: a Memcached client spreads keys over "
             "{cluster}'s {count} nodes.", cluster=CHECK_CLUSTER, count=len(_reference_endpoints(ec, CHECK_CLUSTER)))


def _endpoints_reference(ec: Any, cluster_id: str) -> list[str]:
    return _reference_endpoints(ec, cluster_id)


def _without_node_info(ec: Any, cluster_id: str) -> list[str]:
    cluster = ec.describe_cache_clusters(CacheClusterId=cluster_id)["CacheClusters"][0]
    return [f"{n['Endpoint']['Address']}:{n['Endpoint']['Port']}" for n in cluster["CacheNodes"]]


def _config_only(ec: Any, cluster_id: str) -> list[str]:
    c = ec.describe_cache_clusters(CacheClusterId=cluster_id)["CacheClusters"][0]["ConfigurationEndpoint"]
    return [f"{c['Address']}:{c['Port']}"]


def _tuples(ec: Any, cluster_id: str) -> list[tuple[str, int]]:
    cluster = ec.describe_cache_clusters(CacheClusterId=cluster_id, ShowCacheNodeInfo=True)["CacheClusters"][0]
    return [(n["Endpoint"]["Address"], n["Endpoint"]["Port"]) for n in cluster["CacheNodes"]]


q3 = Exercise(
    lab=LAB, qid="q3", title="Every node's endpoint of a cache cluster",
    checker=_check_endpoints,
    hint_text="describe_cache_clusters(CacheClusterId=..., ShowCacheNodeInfo=True)['CacheClusters'][0]"
              "['CacheNodes'] lists the nodes; each has an 'Endpoint' with 'Address' and 'Port'.",
    solution_text="def endpoints(ec, cluster_id):\n"
                  "    c = ec.describe_cache_clusters(CacheClusterId=cluster_id, ShowCacheNodeInfo=True)"
                  "['CacheClusters'][0]\n"
                  "    return [f\"{n['Endpoint']['Address']}:{n['Endpoint']['Port']}\" for n in c['CacheNodes']]",
    reference=_endpoints_reference,
    wrong=[(_without_node_info, "raised KeyError"), (_config_only, "configuration endpoint only"),
           (_tuples, "strings"), ("127.0.0.1:11211", "to be a function")],
)


POLICIES_CHECKED = ("allkeys-lfu", "volatile-ttl")


def _check_params(answer: Any) -> str:
    from botocore.exceptions import ClientError, ParamValidationError

    ec = _ec()
    try:
        ec.describe_cache_parameter_groups(CacheParameterGroupName=CHECK_PARAMS)
    except ClientError:
        from helpers.aws import client as cpc

        ec.create_cache_parameter_group(CacheParameterGroupName=CHECK_PARAMS,
                                        CacheParameterGroupFamily=cpc.engine_family(),
                                        Description="lab 13 checks")
    for policy in POLICIES_CHECKED:  # two policies: a function that ignores its argument cannot pass both
        ec.reset_cache_parameter_group(CacheParameterGroupName=CHECK_PARAMS, ResetAllParameters=True)
        values = call_learner(answer, policy, what=_("your function policy_change(policy)"))
        try:
            ec.modify_cache_parameter_group(CacheParameterGroupName=CHECK_PARAMS, ParameterNameValues=values)
        except ParamValidationError as exc:
            raise Wrong(_("boto3 rejected it before sending: ParameterNameValues is a *list* of dicts with the "
                          "keys 'ParameterName' and 'ParameterValue'. ({error})",
                          error=str(exc).splitlines()[0])) from None
        except ClientError as exc:
            err = exc.response["Error"]
            raise Wrong(_("The API answered {code}: {text}", code=err["Code"], text=err["Message"])) from None
        params = {p["ParameterName"]: p.get("ParameterValue") for p in
                  ec.describe_cache_parameters(CacheParameterGroupName=CHECK_PARAMS)["Parameters"]}
        if params["maxmemory-policy"] != policy:
            raise Wrong(_("After your change maxmemory-policy is {got!r}, not {policy!r}. Use the policy your "
                          "function receives.", got=params["maxmemory-policy"], policy=policy))
    return _("modify-cache-parameter-group changed the group; every engine using it got CONFIG SET at once.")


q2 = Exercise(
    lab=LAB, qid="q2", title="A parameter change in the API's shape",
    checker=_check_params,
    hint_text="ParameterNameValues=[{'ParameterName': ..., 'ParameterValue': ...}] — the Redis name of the "
              "setting, with hyphens.",
    solution_text="def policy_change(policy):\n"
                  "    return [{'ParameterName': 'maxmemory-policy', 'ParameterValue': policy}]",
    reference=lambda policy: [{"ParameterName": "maxmemory-policy", "ParameterValue": policy}],
    wrong=[(lambda policy: {"maxmemory-policy": policy}, "is a *list*"),
           (lambda policy: [{"ParameterName": "maxmemory_policy", "ParameterValue": policy}], "InvalidParameterValue"),
           (lambda policy: [{"ParameterName": "maxmemory-policy", "ParameterValue": "allkeys-lru"}],
            "not 'allkeys-lfu'"),
           (lambda policy: [{"ParameterName": "maxmemory-policy", "ParameterValue": "allkeys-lfu"}],
            "not 'volatile-ttl'")],
)


def _check_state_code(answer: Any) -> str:
    expect_type(answer, str, _("the error code"))
    if answer == "CacheClusterNotFound":
        raise Wrong(_("The cluster exists already (describe shows it as 'creating'); NotFound is for ids that do "
                      "not exist. The code names the cluster's *state*."))
    if answer == "InvalidParameterValue":
        raise Wrong(_("Every parameter was valid: the cluster id is right. What is wrong is the moment — the "
                      "cluster is not available yet."))
    if answer != "InvalidCacheClusterState":
        raise Wrong(_("{answer!r} is not the code. Try it: create a cluster and delete it in the next line, "
                      "then read e.response['Error']['Code'].", answer=answer))
    return _("Operations on a busy resource answer Invalid...State: wait until it is available (or use a waiter).")


q1 = Exercise(
    lab=LAB, qid="q1", title="Deleting a cluster that is still being created",
    checker=_check_state_code,
    hint_text="Catch botocore.exceptions.ClientError as e and print e.response['Error']['Code'].",
    solution_text="answer = 'InvalidCacheClusterState'",
    reference="InvalidCacheClusterState",
    wrong=[("CacheClusterNotFound", "exists already"), ("InvalidParameterValue", "moment"), ("Oops", "not the code")],
)


def _check_after_failover(answer: Any) -> str:
    choice = expect_choice(answer, ["keep", "describe", "restart"], _("your answer"))
    if choice == "restart":
        raise Wrong(_("Restarting the application is not needed: ElastiCache repoints the primary endpoint's DNS "
                      "name to the promoted replica, so the application only has to reconnect (and retry the writes "
                      "that failed during the switch)."))
    if choice == "describe":
        return _("That works, but on AWS it is not needed: describing the group gives back the same primary "
                 "endpoint, whose DNS name now points at the promoted replica. (The local endpoint behaves the same: "
                 "describe it again and you get the address you had.)")
    return _("On AWS the primary endpoint is a DNS name that ElastiCache repoints to the promoted replica: an "
             "application writing to it needs no change, only a reconnect and a retry of the writes that failed. "
             "Never cache the node's IP address or write to a node endpoint.")


q4 = Exercise(
    lab=LAB, qid="q4", title="Where to write after a failover",
    checker=_check_after_failover,
    hint_text="What is the primary endpoint on AWS: an address, or a DNS name that ElastiCache repoints?",
    solution_text="answer = 'keep'   # the primary endpoint's DNS name follows the new primary",
    reference="keep",
    also_right=["describe"],
    wrong=[("restart", "not needed"), ("reboot", "not one of the choices"), (3, "one of")],
)


UPGRADE_CHOICES = ["kept-same", "kept-new", "lost-same", "lost-new"]


def _check_upgrade_effect(answer: Any) -> str:
    choice = expect_choice(answer, UPGRADE_CHOICES, _("your answer"))
    if choice.startswith("lost"):
        raise Wrong(_("The keys were not lost: the replicas were upgraded first and synced from the primary, then a "
                      "planned failover handed the primary role to an upgraded replica before the old primary "
                      "restarted. A group with a replica keeps every key through a minor or a major upgrade (count "
                      "them: dbsize() on the endpoint after the upgrade)."))
    if choice.endswith("new"):
        raise Wrong(_("The endpoint did not change: AWS documents that an upgrade, even Redis OSS -> Valkey, keeps "
                      "the endpoint and every other aspect of the application. Compare the PrimaryEndpoint printed "
                      "before and after the upgrade."))
    return _("An in-place upgrade (minor, major, or Redis OSS -> Valkey) keeps the data of a replicated group and "
             "its endpoints: clients see each node restart once (a dropped connection, then a reconnect) and no "
             "more. A single-node cluster is unavailable while its node restarts.")


q5 = Exercise(
    lab=LAB, qid="q5", title="What an engine upgrade keeps",
    checker=_check_upgrade_effect,
    hint_text="Look at the two numbers the upgrade cell printed: the keys before and after, and the primary "
              "endpoint before and after.",
    solution_text="answer = 'kept-same'   # every key kept, same primary endpoint",
    reference="kept-same",
    wrong=[("lost-same", "not lost"), ("kept-new", "did not change"), ("lost-new", "not lost"),
           ("same", "one of")],
)
