"""Memcached, observed: where keys land (nodes and slab classes), what a dead node costs.

Lab 02 asks the real servers (`stats slabs`, `stats items`, a `get` on each node) and compares
the answers with what pymemcache's client-side hashing predicts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from helpers.runtime.i18n import translator
from helpers.runtime.services import Service, start
from helpers.runtime.state import LabError

_ = translator(__name__)

Server = tuple[str, int]


def pool(name: str = "lab02-pool", nodes: int = 3) -> Service:
    """A Memcached pool of `nodes` real nodes (the "memcached-pool" topology), started or healed on demand."""
    return start("memcached-pool", name=name, nodes=nodes)


def hash_client(svc: Service, **kwargs: Any) -> Any:
    """A pymemcache HashClient over the pool that waits for replies and turns a dead node into misses."""
    from pymemcache.client.hash import HashClient

    kwargs.setdefault("connect_timeout", 0.5)
    kwargs.setdefault("timeout", 2)
    kwargs.setdefault("ignore_exc", True)
    kwargs.setdefault("default_noreply", False)
    return HashClient(servers_of(svc), **kwargs)


def servers_of(svc: Service) -> list[Server]:
    return [(n.host, n.port) for n in svc.nodes if n.kind == "memcached"]


def label(server: Server | str) -> str:
    """'host:port', the name HashClient hashes for a server."""
    return server if isinstance(server, str) else f"{server[0]}:{server[1]}"


def node_client(server: Server, **kwargs: Any) -> Any:
    """A client for one node that waits for replies, so errors are seen (noreply hides them)."""
    from pymemcache.client.base import Client

    kwargs.setdefault("connect_timeout", 1)
    kwargs.setdefault("timeout", 5)
    kwargs.setdefault("default_noreply", False)
    return Client(server, **kwargs)


def flush(svc: Service) -> None:
    """Empty every node of a pool the lab owns, so each run starts from the same state."""
    for server in servers_of(svc):
        c = node_client(server)
        c.flush_all()
        c.close()


def routed_node(hc: Any, key: str) -> str:
    """The 'host:port' a HashClient sends `key` to (its hasher, the same call `get`/`set` make)."""
    node = hc.hasher.get_node(key)
    if node is None:
        raise LabError("The client has no live server left to route to.")
    return node


def where_keys_live(servers: Sequence[Server], keys: Iterable[str]) -> dict[str, str | None]:
    """Ask every node which of `keys` it holds: key -> 'host:port' (None when no node has it)."""
    keys = list(keys)
    found: dict[str, str | None] = dict.fromkeys(keys)
    for server in servers:
        c = node_client(server)
        try:
            for i in range(0, len(keys), 200):
                for k in c.get_many(keys[i:i + 200]):
                    key = k.decode() if isinstance(k, bytes) else k
                    if found.get(key) is not None:
                        raise LabError(f"{key!r} is on two nodes; were these nodes written by another client?")
                    found[key] = label(server)
        finally:
            c.close()
    return found


# --- slab classes -------------------------------------------------------------------------------

@dataclass
class SlabLanding:
    value_size: int
    slab_class: int
    chunk_size: int


def _slab_stats(client: Any) -> dict[int, dict[str, int]]:
    classes: dict[int, dict[str, int]] = {}
    for raw, value in client.stats("slabs").items():
        name = raw.decode() if isinstance(raw, bytes) else raw
        if ":" in name:
            cls, field = name.split(":", 1)
            classes.setdefault(int(cls), {})[field] = int(value)
    return classes


def slab_class_of(client: Any, value_size: int, count: int = 5, prefix: str = "lab02:slab") -> SlabLanding:
    """Store `count` values of `value_size` bytes and find the slab class that took them.

    It reads the per-class `cmd_set` counters of `stats slabs` before and after: they only grow,
    so the class whose counter grew by `count` is where those items were stored.
    """
    before = _slab_stats(client)
    for i in range(count):
        client.set(f"{prefix}:{value_size}:{i}", b"x" * value_size, noreply=False)
    after = _slab_stats(client)
    grown = {c: s["cmd_set"] - before.get(c, {}).get("cmd_set", 0) for c, s in after.items()}
    cls = max(grown, key=lambda c: grown[c])
    if grown[cls] < count:
        raise LabError(f"Could not find the slab class of {value_size}-byte items (counters grew: {grown}).")
    return SlabLanding(value_size, cls, after[cls]["chunk_size"])


def slab_table(client: Any) -> list[dict[str, int]]:
    """One row per slab class in use: chunk size, chunks used, items stored (`stats items`)."""
    items: dict[int, int] = {}
    for raw, value in client.stats("items").items():
        name = raw.decode() if isinstance(raw, bytes) else raw
        parts = name.split(":")
        if len(parts) == 3 and parts[2] == "number":
            items[int(parts[1])] = int(value)
    return [{"class": c, "chunk_size": s["chunk_size"], "chunks_per_page": s["chunks_per_page"],
             "used_chunks": s["used_chunks"], "items": items.get(c, 0)}
            for c, s in sorted(_slab_stats(client).items())]


# --- client-side distribution ---------------------------------------------------------------------

def distribution(node_names: Sequence[str], keys: Iterable[str]) -> Counter[str]:
    """How many of `keys` pymemcache's default hashing (rendezvous) puts on each node."""
    from pymemcache.client.rendezvous import RendezvousHash

    hasher = RendezvousHash(list(node_names))
    counts: Counter[str] = Counter({n: 0 for n in node_names})
    counts.update(hasher.get_node(k) for k in keys)
    return counts


def moved_keys(keys: Sequence[str], before: Sequence[str], after: Sequence[str]) -> list[str]:
    """Keys whose node changes when the pool goes from `before` to `after` nodes."""
    from pymemcache.client.rendezvous import RendezvousHash

    h1, h2 = RendezvousHash(list(before)), RendezvousHash(list(after))
    return [k for k in keys if h1.get_node(k) != h2.get_node(k)]


def plot_distribution(counts: Counter[str] | dict[str, int], ax: Any = None, title: str = "") -> Any:
    import matplotlib.pyplot as plt

    if ax is None:
        _fig, ax = plt.subplots(figsize=(6.5, 3))
    names = list(counts)
    bars = ax.bar(names, [counts[n] for n in names], color="#4c72b0")
    ax.bar_label(bars)
    total = sum(counts.values())
    if names:
        ax.axhline(total / len(names), color="grey", linestyle="--", label=_("perfectly even"))
        ax.legend(loc="lower right")
    ax.set_ylabel(_("keys"))
    ax.set_title(title)
    return ax


def distribution_widget(keys: Sequence[str], max_nodes: int = 8) -> tuple[Any, Any]:
    """A node-count slider -> bar chart of keys per node, and how many keys moved from n-1 nodes.

    Returns (widget, update); update(n) redraws and returns (counts, moved) so a headless run can
    call it once.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    slider = widgets.IntSlider(value=3, min=1, max=max_nodes, description=_("nodes"), continuous_update=False)
    out = widgets.Output()

    def update(n: int) -> tuple[Counter[str], int]:
        names = [f"node-{i}" for i in range(1, n + 1)]
        counts = distribution(names, keys)
        moved = len(moved_keys(keys, names[:-1], names)) if n > 1 else 0
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(7, 3))
            plot_distribution(counts, ax, _("{keys} keys over {n} node(s): {moved} moved ({share:.0%}) when "
                                            "node-{n} joined", keys=len(keys), n=n, moved=moved,
                                            share=moved / len(keys)))
            plt.show()
            plt.close(fig)
        return counts, moved

    slider.observe(lambda change: update(change["new"]), names="value")
    return widgets.VBox([slider, out]), update
