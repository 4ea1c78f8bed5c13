"""How keys are spread over shards: Redis Cluster hash slots, and the two ways a Memcached client
picks a node (modulo vs consistent hashing).

The functions are the real algorithms, small enough to read: `key_slot` is what every Redis
Cluster node computes (CRC16/XMODEM of the key, or of its {hash tag}, modulo 16384), and the
hashers plug into pymemcache's HashClient (`HashClient(servers, hasher=ModuloHash)`), so the
lab measures key movement on real Memcached nodes, not only on paper.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from helpers.runtime.i18n import translator

_ = translator(__name__)

SLOTS = 16384


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as in the Redis Cluster spec."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else bytes(key)


def hash_tag(key: str | bytes) -> bytes:
    """The part of the key that is hashed: the text inside the first non-empty {...}, else all of it."""
    raw = _bytes(key)
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            return raw[start + 1:end]
    return raw


def key_slot(key: str | bytes) -> int:
    """The hash slot (0..16383) of a key: CRC16(hash tag or key) mod 16384."""
    return crc16(hash_tag(key)) % SLOTS


# --- client-side distribution for Memcached --------------------------------------------------------


def _h32(text: str) -> int:
    return int.from_bytes(hashlib.md5(text.encode()).digest()[:4], "little")


def _text(key: str | bytes) -> str:
    return key.decode() if isinstance(key, bytes) else str(key)


class ModuloHash:
    """node = hash(key) mod N: simple, but changing N remaps almost every key."""

    def __init__(self, nodes: Iterable[str] | None = None):
        self.nodes: list[str] = []
        for n in nodes or ():
            self.add_node(n)

    def add_node(self, node: str) -> None:
        if node not in self.nodes:
            self.nodes.append(node)

    def remove_node(self, node: str) -> None:
        self.nodes.remove(node)

    def get_node(self, key: str | bytes) -> str | None:
        if not self.nodes:
            return None
        return self.nodes[_h32(_text(key)) % len(self.nodes)]


class HashRing:
    """Consistent hashing (ketama style): each node owns many points on a ring of 2**32 positions;
    a key belongs to the next point clockwise. Adding a node takes over only the arcs before its
    points, so about 1/(N+1) of the keys move."""

    def __init__(self, nodes: Iterable[str] | None = None, points_per_node: int = 160):
        self.points_per_node = points_per_node
        self.nodes: list[str] = []
        self._points: list[int] = []
        self._owners: list[str] = []
        for n in nodes or ():
            self.add_node(n)

    def _rebuild(self) -> None:
        ring = sorted((_h32(f"{node}-{i}"), node) for node in self.nodes for i in range(self.points_per_node))
        self._points = [p for p, _ in ring]
        self._owners = [n for _, n in ring]

    def add_node(self, node: str) -> None:
        if node not in self.nodes:
            self.nodes.append(node)
            self._rebuild()

    def remove_node(self, node: str) -> None:
        self.nodes.remove(node)
        self._rebuild()

    def get_node(self, key: str | bytes) -> str | None:
        if not self._points:
            return None
        i = bisect.bisect(self._points, _h32(_text(key))) % len(self._points)
        return self._owners[i]


Hasher = Callable[[Sequence[str]], "ModuloHash | HashRing | object"]


def moved_fraction(keys: Sequence[str], before: Sequence[str], after: Sequence[str],
                   hasher: Hasher) -> float:
    """The share of keys whose node changes when the node list goes from `before` to `after`."""
    if not keys:
        return 0.0
    a, b = _build(hasher, before), _build(hasher, after)
    return sum(a.get_node(k) != b.get_node(k) for k in keys) / len(keys)


def _build(hasher: Hasher, nodes: Sequence[str]) -> object:
    """ModuloHash, HashRing and pymemcache's RendezvousHash all take the node list first."""
    return hasher(list(nodes))


def node_names(n: int) -> list[str]:
    """Names like the ones HashClient uses ("127.0.0.1:11211"), for paper experiments."""
    return [f"10.0.0.{i + 1}:11211" for i in range(n)]


def rehash_explorer(keys: int = 1500) -> Any:
    """A slider over the pool size: how many keys move when one node joins, per hashing scheme.

    Returns the widget; `.update(n)` redraws for n nodes (what the slider calls; tests call it too).
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from pymemcache.client.rendezvous import RendezvousHash

    sample = [f"user:{i}" for i in range(keys)]
    schemes = {"modulo": ModuloHash, "hash ring": HashRing, "rendezvous": RendezvousHash}
    slider = w.IntSlider(value=3, min=1, max=12, description=_("nodes now"))
    out = w.Output()
    text = w.HTML()

    def update(n: int) -> dict[str, float]:
        moved = {name: moved_fraction(sample, node_names(n), node_names(n + 1), h) for name, h in schemes.items()}
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(5.5, 2.4))
            ax.bar(list(moved), list(moved.values()), color=["#cf222e", "#1a7f37", "#0969da"])
            ax.axhline(1 / (n + 1), color="k", linestyle="--", label=f"ideal 1/{n + 1}")
            ax.set_ylim(0, 1)
            ax.set_ylabel(_("keys that move"))
            ax.set_title(_("{n} -> {m} nodes", n=n, m=n + 1))
            ax.legend(fontsize=8)
            plt.show()
        text.value = _("Adding node {n}: modulo moves {modulo:.0%} of the keys, consistent hashing {ring:.0%} (ring) / "
                       "{rendezvous:.0%} (rendezvous).", n=n + 1, modulo=moved["modulo"], ring=moved["hash ring"],
                       rendezvous=moved["rendezvous"])
        return moved

    slider.observe(lambda change: update(change["new"]), names="value")
    box = w.VBox([slider, text, out])
    box.update = update  # type: ignore[attr-defined]
    update(slider.value)
    return box
