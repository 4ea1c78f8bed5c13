"""Reserved cache nodes, as AWS documents them: offerings, a purchase, the reserved nodes bought.

The oracle is AWS's API reference and the AWS CLI's examples (describe-reserved-cache-nodes-offerings.rst,
purchase-reserved-cache-nodes-offering.rst, describe-reserved-cache-nodes.rst): an offering has a term
(Duration in seconds), a payment option (OfferingType), a FixedPrice, a UsagePrice and hourly
RecurringCharges; a purchase answers the reserved node `payment-pending` with CacheNodeCount, StartTime
and the offering's terms; the node is then listed by describe-reserved-cache-nodes (and becomes
`active`); an unknown offering id is ReservedCacheNodesOfferingNotFound, an unknown reserved node
ReservedCacheNodeNotFound. The prices are the course's dated table (data/elasticache_prices.csv), read
here with the csv module, not through our code.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from support import elasticache_fixture, error_of

from helpers.aws import endpoint as localaws
from helpers.runtime import services

ROOT = Path(__file__).resolve().parent.parent
ec = elasticache_fixture("rsv-")


def table_rows() -> list[dict[str, str]]:
    with open(ROOT / "data" / "elasticache_prices.csv", newline="") as fh:
        return [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))
                if r["option"] == "reserved_1y"]


def test_offerings_are_the_dated_table_rows(ec):
    offerings = ec.describe_reserved_cache_nodes_offerings()["ReservedCacheNodesOfferings"]
    rows = table_rows()
    assert rows and len(offerings) == len(rows)
    got = {(o["ProductDescription"], o["CacheNodeType"]): o for o in offerings}
    for row in rows:  # the table says: one year, no upfront payment, an hourly rate
        o = got[(row["engine"], row["item"])]
        assert o["Duration"] == 31536000 and o["OfferingType"] == "No Upfront"
        assert o["FixedPrice"] == 0.0 and o["UsagePrice"] == 0.0
        assert o["RecurringCharges"] == [{"RecurringChargeAmount": float(row["usd"]), "RecurringChargeFrequency": "Hourly"}]
    # the same ids in every call (and after a restart: they are derived from the offering)
    again = ec.describe_reserved_cache_nodes_offerings()["ReservedCacheNodesOfferings"]
    assert [o["ReservedCacheNodesOfferingId"] for o in again] == [o["ReservedCacheNodesOfferingId"] for o in offerings]


def test_offering_filters(ec):
    one = ec.describe_reserved_cache_nodes_offerings(CacheNodeType="cache.r7g.large", ProductDescription="valkey")[
        "ReservedCacheNodesOfferings"]
    assert [(o["CacheNodeType"], o["ProductDescription"]) for o in one] == [("cache.r7g.large", "valkey")]
    assert len(ec.describe_reserved_cache_nodes_offerings(Duration="1")["ReservedCacheNodesOfferings"]) == len(table_rows())
    assert ec.describe_reserved_cache_nodes_offerings(Duration="3")["ReservedCacheNodesOfferings"] == []
    assert ec.describe_reserved_cache_nodes_offerings(OfferingType="All Upfront")["ReservedCacheNodesOfferings"] == []
    code, _, _ = error_of(ec.describe_reserved_cache_nodes_offerings, Duration="2")
    assert code == "InvalidParameterValue"
    code, _, _ = error_of(ec.describe_reserved_cache_nodes_offerings, ReservedCacheNodesOfferingId="no-such-offering")
    assert code == "ReservedCacheNodesOfferingNotFound"
    page = ec.describe_reserved_cache_nodes_offerings(MaxRecords=20)
    assert "Marker" not in page


def test_purchase_records_a_reserved_node(ec):
    offering = ec.describe_reserved_cache_nodes_offerings(CacheNodeType="cache.t4g.micro", ProductDescription="redis")[
        "ReservedCacheNodesOfferings"][0]
    oid = offering["ReservedCacheNodesOfferingId"]
    code, _, status = error_of(ec.purchase_reserved_cache_nodes_offering,
                               ReservedCacheNodesOfferingId="xxxxxxx-4da5-4b90-b92d-929fbd7abed2")
    assert code == "ReservedCacheNodesOfferingNotFound" and status < 500
    assert error_of(ec.purchase_reserved_cache_nodes_offering, ReservedCacheNodesOfferingId=oid,
                    CacheNodeCount=0)[0] == "InvalidParameterValue"
    node = ec.purchase_reserved_cache_nodes_offering(ReservedCacheNodesOfferingId=oid, ReservedCacheNodeId="rsv-one",
                                                     CacheNodeCount=2,
                                                     Tags=[{"Key": "team", "Value": "cache"}])["ReservedCacheNode"]
    assert node["State"] == "payment-pending" and node["CacheNodeCount"] == 2
    assert node["ReservedCacheNodesOfferingId"] == oid and node["CacheNodeType"] == "cache.t4g.micro"
    assert node["Duration"] == 31536000 and node["RecurringCharges"] == offering["RecurringCharges"]
    assert node["ReservationARN"].endswith(":reserved-instance:rsv-one")
    assert ec.list_tags_for_resource(ResourceName=node["ReservationARN"])["TagList"] == [{"Key": "team", "Value": "cache"}]
    assert error_of(ec.purchase_reserved_cache_nodes_offering, ReservedCacheNodesOfferingId=oid,
                    ReservedCacheNodeId="rsv-one")[0] == "ReservedCacheNodeAlreadyExists"
    deadline = time.monotonic() + 30
    while True:
        found = ec.describe_reserved_cache_nodes(ReservedCacheNodeId="rsv-one")["ReservedCacheNodes"]
        if found[0]["State"] == "active" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert found[0]["State"] == "active" and found[0]["CacheNodeCount"] == 2
    # AWS's own id form when none is given: ri-<date>-<time>-<ms>
    auto = ec.purchase_reserved_cache_nodes_offering(ReservedCacheNodesOfferingId=oid)["ReservedCacheNode"]
    assert auto["ReservedCacheNodeId"].startswith("ri-") and auto["CacheNodeCount"] == 1
    listed = {r["ReservedCacheNodeId"] for r in ec.describe_reserved_cache_nodes()["ReservedCacheNodes"]}
    assert {"rsv-one", auto["ReservedCacheNodeId"]} <= listed
    assert ec.describe_reserved_cache_nodes(ProductDescription="valkey")["ReservedCacheNodes"] == []
    assert error_of(ec.describe_reserved_cache_nodes, ReservedCacheNodeId="rsv-none")[0] == "ReservedCacheNodeNotFound"


def test_reserved_nodes_survive_a_stop_and_start(isolated_home):
    services.start("aws")
    ec = localaws.client("elasticache")
    oid = ec.describe_reserved_cache_nodes_offerings()["ReservedCacheNodesOfferings"][0]["ReservedCacheNodesOfferingId"]
    ec.purchase_reserved_cache_nodes_offering(ReservedCacheNodesOfferingId=oid, ReservedCacheNodeId="kept-ri")
    services.stop()
    services.start("aws")
    ec = localaws.client("elasticache")
    found = ec.describe_reserved_cache_nodes(ReservedCacheNodeId="kept-ri")["ReservedCacheNodes"]
    assert found[0]["ReservedCacheNodesOfferingId"] == oid
    assert ec.describe_reserved_cache_nodes_offerings()["ReservedCacheNodesOfferings"][0][
        "ReservedCacheNodesOfferingId"] == oid
