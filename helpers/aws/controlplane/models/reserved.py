"""Reserved cache nodes: the offerings of the course's dated price table, and the reserved nodes bought.

An offering is a row of `data/elasticache_prices.csv` whose option is a reservation (`reserved_1y`: one
year, No Upfront, so FixedPrice 0 and an hourly RecurringCharge, as that table's rows say). Its id is
derived from what it is (engine, node type, term, payment option), so it is the same in every run and
after a restart. A purchase makes a reserved-node record: `payment-pending` in the answer
(purchase-reserved-cache-nodes-offering.rst), `active` once recorded, as AWS's states go; the records are
kept across `helpers stop`/`start` like the other records (table `reserved_nodes`).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from helpers.aws import catalogue
from helpers.aws.controlplane.errors import ApiError, invalid_value
from helpers.aws.controlplane.models.base import ACCOUNT, Backend, now, request_region

log = logging.getLogger(__name__)

PRICES = "elasticache_prices.csv"
YEAR = 31536000  # seconds: AWS's Duration of a one-year term
# the price table's reservation options: Duration (s) and AWS's OfferingType
TERMS = {"reserved_1y": (YEAR, "No Upfront")}
MAX_NODES = 300  # AWS's default quota of reserved nodes per account (ReservedCacheNodeQuotaExceeded above it)
NODE_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,254}$")


@dataclass(frozen=True)
class Offering:
    offering_id: str
    node_type: str
    duration: int
    fixed_price: float
    usage_price: float
    product: str  # ProductDescription: the engine
    offering_type: str
    hourly: float  # the RecurringCharge (Hourly)


@dataclass
class ReservedNode:
    node_id: str
    offering_id: str
    node_type: str
    duration: int
    fixed_price: float
    usage_price: float
    count: int
    product: str
    offering_type: str
    hourly: float
    region: str
    start: datetime = field(default_factory=now)
    state: str = "payment-pending"

    @property
    def arn(self) -> str:
        return f"arn:aws:elasticache:{self.region}:{ACCOUNT}:reserved-instance:{self.node_id}"


def offerings() -> list[Offering]:
    """Every offering of the dated price table (data/elasticache_prices.csv, its reservation rows)."""
    out = []
    with open(catalogue.data_dir() / PRICES, newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    for row in rows:
        term = TERMS.get(row["option"])
        if term is None:
            continue
        duration, kind = term
        ident = uuid.uuid5(uuid.NAMESPACE_URL, f"elasticache-lab:{row['engine']}:{row['item']}:{duration}:{kind}")
        out.append(Offering(str(ident), row["item"], duration, 0.0, 0.0, row["engine"], kind, float(row["usd"])))
    return out


def duration_seconds(value: Any) -> int | None:
    """AWS's Duration filter: years (1, 3) or seconds (31536000, 94608000)."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text in ("1", "3"):
        return int(text) * YEAR
    if text in (str(YEAR), str(3 * YEAR)):
        return int(text)
    raise invalid_value(f"Invalid value for Duration: {value}. Valid values: 1 | 3 | 31536000 | 94608000.")


def matches(item: Any, node_type: Any, duration: int | None, product: Any, offering_type: Any) -> bool:
    return ((not node_type or item.node_type == node_type) and (duration is None or item.duration == duration)
            and (not product or item.product == str(product).lower())
            and (not offering_type or item.offering_type == offering_type))


class ReservedNodes(Backend):
    def __init__(self) -> None:
        super().__init__()
        self.reserved_nodes: dict[str, ReservedNode] = {}

    def get_offering(self, offering_id: Any) -> Offering:
        found = next((o for o in offerings() if o.offering_id == str(offering_id or "")), None)
        if found is None:
            raise ApiError(f"ReservedCacheNodesOffering not found: {offering_id}", "ReservedCacheNodesOfferingNotFound")
        return found

    def describe_offerings(self, offering_id: Any = None, node_type: Any = None, duration: Any = None,
                           product: Any = None, offering_type: Any = None) -> list[Offering]:
        seconds = duration_seconds(duration)
        found = [self.get_offering(offering_id)] if offering_id else offerings()
        return [o for o in found if matches(o, node_type, seconds, product, offering_type)]

    def purchase_offering(self, offering_id: Any, node_id: Any = None, count: Any = None) -> ReservedNode:
        offering = self.get_offering(offering_id)
        n = 1 if count is None else int(count)
        if n < 1:
            raise invalid_value(f"CacheNodeCount must be at least 1 (got {n}).")
        start = now()
        if node_id in (None, ""):  # AWS's own form: ri-<date>-<time>-<milliseconds>
            node_id = f"ri-{start:%Y-%m-%d-%H-%M-%S}-{start.microsecond // 1000:03d}"
        node_id = str(node_id)
        if not NODE_ID_RE.match(node_id):
            raise invalid_value(f"Invalid ReservedCacheNodeId: {node_id}. It begins with a letter and holds "
                                "letters, digits and hyphens.")
        with self.lock:
            if node_id in self.reserved_nodes:
                raise ApiError(f"Reserved cache node {node_id} already exists.", "ReservedCacheNodeAlreadyExists")
            held = sum(r.count for r in self.reserved_nodes.values() if r.state != "retired")
            if held + n > MAX_NODES:
                raise ApiError(f"The purchase would exceed the quota of {MAX_NODES} reserved cache nodes.",
                               "ReservedCacheNodeQuotaExceeded")
            node = ReservedNode(node_id, offering.offering_id, offering.node_type, offering.duration,
                                offering.fixed_price, offering.usage_price, n, offering.product,
                                offering.offering_type, offering.hourly, request_region(), start=start)
            self.reserved_nodes[node_id] = node
        answer = dataclasses.replace(node)

        def work() -> None:  # locally there is nothing to pay: the purchase is recorded, then active
            node.state = "active"

        self.background(f"reserved-{node_id}", work, lambda msg: setattr(node, "state", "payment-failed"))
        return answer

    def get_reserved(self, node_id: Any) -> ReservedNode:
        with self.lock:
            found = self.reserved_nodes.get(str(node_id or ""))
        if found is None:
            raise ApiError(f"Reserved cache node {node_id} not found.", "ReservedCacheNodeNotFound")
        return found

    def describe_reserved(self, node_id: Any = None, offering_id: Any = None, node_type: Any = None,
                          duration: Any = None, product: Any = None, offering_type: Any = None) -> list[ReservedNode]:
        seconds = duration_seconds(duration)
        with self.lock:
            found = list(self.reserved_nodes.values())
        if node_id:
            found = [r for r in found if r.node_id == str(node_id)]
            if not found:
                raise ApiError(f"Reserved cache node {node_id} not found.", "ReservedCacheNodeNotFound")
        return [r for r in found if (not offering_id or r.offering_id == str(offering_id))
                and matches(r, node_type, seconds, product, offering_type)]
