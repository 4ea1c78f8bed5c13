"""Reserved cache nodes: the offerings of the course's dated price table, and the nodes bought (models/reserved.py)."""

from __future__ import annotations

from typing import Any

from helpers.aws.controlplane.honoured import honours
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.responses import int_or_none, tag_dict


def _charges(item: Any) -> list[dict[str, Any]]:
    return [{"RecurringChargeAmount": item.hourly, "RecurringChargeFrequency": "Hourly"}]


def offering_api(o: Any) -> dict[str, Any]:
    return {"ReservedCacheNodesOfferingId": o.offering_id, "CacheNodeType": o.node_type, "Duration": o.duration,
            "FixedPrice": o.fixed_price, "UsagePrice": o.usage_price, "ProductDescription": o.product,
            "OfferingType": o.offering_type, "RecurringCharges": _charges(o)}


def reserved_api(r: Any) -> dict[str, Any]:
    return {"ReservedCacheNodeId": r.node_id, "ReservedCacheNodesOfferingId": r.offering_id,
            "CacheNodeType": r.node_type, "StartTime": r.start, "Duration": r.duration, "FixedPrice": r.fixed_price,
            "UsagePrice": r.usage_price, "CacheNodeCount": r.count, "ProductDescription": r.product,
            "OfferingType": r.offering_type, "State": r.state, "RecurringCharges": _charges(r),
            "ReservationARN": r.arn}


def _filters(p: dict[str, Any]) -> dict[str, Any]:
    return {"node_type": p.get("CacheNodeType"), "duration": p.get("Duration"),
            "product": p.get("ProductDescription"), "offering_type": p.get("OfferingType")}


@honours("CacheNodeType", "Duration", "OfferingType", "ProductDescription", "ReservedCacheNodesOfferingId")
def describe_reserved_cache_nodes_offerings(p: dict[str, Any]) -> list[dict[str, Any]]:
    """The offerings of the course's dated price table (models/reserved.py), filtered as AWS filters."""
    filters, offering_id = _filters(p), p.get("ReservedCacheNodesOfferingId")
    return [offering_api(o) for o in PLANE.describe_offerings(offering_id, **filters)]


@honours("CacheNodeCount", "ReservedCacheNodeId", "ReservedCacheNodesOfferingId", "Tags")
def purchase_reserved_cache_nodes_offering(p: dict[str, Any]) -> dict[str, Any]:
    """A reserved-node record: `payment-pending` in the answer, then `active`; an unknown offering id is
    ReservedCacheNodesOfferingNotFound."""
    offering_id, node_id, count = p.get("ReservedCacheNodesOfferingId"), p.get("ReservedCacheNodeId"), p.get(
        "CacheNodeCount")
    tags = tag_dict(p)  # refused before anything is bought
    node = PLANE.purchase_offering(offering_id, node_id, int_or_none(count))
    PLANE.add_tags(node.arn, tags)
    return {"ReservedCacheNode": reserved_api(node)}


@honours("CacheNodeType", "Duration", "OfferingType", "ProductDescription", "ReservedCacheNodeId",
         "ReservedCacheNodesOfferingId")
def describe_reserved_cache_nodes(p: dict[str, Any]) -> list[dict[str, Any]]:
    """The reserved nodes bought with purchase-reserved-cache-nodes-offering (none at first, as on an AWS
    account without any: describe-reserved-cache-nodes.rst's key); one asked for by id and not bought is
    ReservedCacheNodeNotFound."""
    filters, node_id, offering_id = _filters(p), p.get("ReservedCacheNodeId"), p.get("ReservedCacheNodesOfferingId")
    return [reserved_api(r) for r in PLANE.describe_reserved(node_id, offering_id, **filters)]
