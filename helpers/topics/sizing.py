"""Sizing a cache: which ElastiCache node type holds a dataset, from the node-type table in data/.

A node's listed memory is not all for data: ElastiCache reserves `reserved-memory-percent`
(25% by default) for backups, replication buffers and the OS, and a cache needs headroom to
grow. The sizing rule the labs teach is: usable = memory x (1 - reserved), and pick the
smallest node whose usable memory covers the dataset plus its growth.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from helpers.runtime.state import LabError, repo_root

GIB = 1024**3
DEFAULT_RESERVED = 0.25  # ElastiCache's default reserved-memory-percent (Redis OSS / Valkey)
TABLE = "elasticache_node_types.csv"


@dataclass(frozen=True)
class NodeType:
    name: str
    family: str
    vcpu: int
    memory_gib: float
    network: str

    def usable_gib(self, reserved: float = DEFAULT_RESERVED) -> float:
        """Memory left for data once `reserved` (a fraction) is set aside."""
        return self.memory_gib * (1 - reserved)


def data_dir() -> Path:
    """The repository's data/ directory (the helpers package sits next to it)."""
    return repo_root() / "data"


def node_types(path: Path | None = None) -> list[NodeType]:
    """Every node type in the table, smallest memory first."""
    path = path or data_dir() / TABLE
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    except FileNotFoundError:
        raise LabError(f"The node-type table {path} is missing. It ships with the lab in data/; "
                       "restore it with `git checkout -- data/`.") from None
    rows = csv.DictReader(lines)
    out = [NodeType(r["node_type"], r["family"], int(r["vcpu"]), float(r["memory_gib"]), r["network_performance"])
           for r in rows]
    return sorted(out, key=lambda n: (n.memory_gib, n.vcpu, n.name))


def node_type(name: str) -> NodeType:
    for n in node_types():
        if n.name == name:
            return n
    raise LabError(f"{name!r} is not in the node-type table; names look like 'cache.r7g.large'.")


def pick_node_type(dataset_gib: float, reserved: float = DEFAULT_RESERVED, growth: float = 0.0,
                   families: Iterable[str] | None = None) -> NodeType:
    """The smallest node type (in `families`, if given) whose usable memory holds the dataset.

    `growth` is extra room as a fraction (0.2 = 20% growth expected).
    """
    if dataset_gib <= 0:
        raise LabError("The dataset size must be positive (GiB).")
    if not 0 <= reserved < 1:
        raise LabError("reserved is a fraction between 0 and 1 (0.25 = 25%).")
    need = dataset_gib * (1 + growth)
    wanted = set(families) if families else None
    for n in node_types():
        if wanted is not None and n.family not in wanted:
            continue
        if n.usable_gib(reserved) >= need:
            return n
    raise LabError(f"No single node type holds {need:.1f} GiB of data. Shard the data over several nodes "
                   "(cluster mode, lab 10), or store less.")


def shards_needed(dataset_gib: float, node: NodeType, reserved: float = DEFAULT_RESERVED,
                  growth: float = 0.0) -> int:
    """How many shards of `node` hold the dataset (cluster mode spreads keys over shards)."""
    import math

    return max(1, math.ceil(dataset_gib * (1 + growth) / node.usable_gib(reserved)))
