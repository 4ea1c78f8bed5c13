"""Measuring Redis data structures: memory per element, small encodings, and a counter race.

Lab 01 asks the real server (MEMORY USAGE, OBJECT ENCODING, CONFIG GET) instead of quoting
numbers from the documentation, because they change between Redis/Valkey versions and configs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from helpers.runtime.i18n import translator
from helpers.runtime.state import LabError

log = logging.getLogger(__name__)
_ = translator(__name__)

STRUCTURES = ("string", "hash", "set", "zset", "list")


def unlink_matching(r: Any, pattern: str) -> int:
    """Delete every key matching `pattern` (SCAN + UNLINK in batches, never KEYS: it would block a busy server)."""
    deleted = 0
    batch: list[str] = []
    for key in r.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += r.unlink(*batch)
            batch = []
    if batch:
        deleted += r.unlink(*batch)
    return deleted


def delete_prefix(r: Any, prefix: str) -> int:
    """Delete every key starting with `prefix` (SCAN + UNLINK, never KEYS): re-runs start clean."""
    if not prefix or prefix in ("*", ":"):
        raise LabError(f"Refusing to delete the keys of prefix {prefix!r}: that would delete other labs' keys. "
                       "Give a real prefix such as 'lab01:'.")
    return unlink_matching(r, f"{prefix}*")


def _memory(r: Any, key: str) -> int:
    used = r.memory_usage(key, samples=0)  # samples=0: measure every element, not an estimate
    if used is None:
        raise LabError(f"MEMORY USAGE found no key {key!r}; was it written?")
    return int(used)


def load_structure(r: Any, kind: str, key: str, items: dict[str, str]) -> list[str]:
    """Store `items` (member -> value) as one structure of `kind`; return the keys written.

    "string" writes one key per item (key:member), the others one key holding every item:
    a hash keeps member->value, a set and a list keep the members, a zset keeps member->score.
    """
    pipe = r.pipeline(transaction=False)
    if kind == "string":
        keys = [f"{key}:{m}" for m in items]
        for k, v in zip(keys, items.values(), strict=True):
            pipe.set(k, v)
        pipe.execute()
        return keys
    pipe.delete(key)
    chunk = list(items.items())
    for i in range(0, len(chunk), 1000):
        part = dict(chunk[i:i + 1000])
        if kind == "hash":
            pipe.hset(key, mapping=part)
        elif kind == "set":
            pipe.sadd(key, *part)
        elif kind == "zset":
            pipe.zadd(key, {m: float(len(v)) + j for j, (m, v) in enumerate(part.items(), start=i)})
        elif kind == "list":
            pipe.rpush(key, *part)
        else:
            raise LabError(f"Unknown structure {kind!r}; choose one of {', '.join(STRUCTURES)}.")
    pipe.execute()
    return [key]


def bytes_per_element(r: Any, prefix: str, items: dict[str, str],
                      kinds: Sequence[str] = STRUCTURES) -> dict[str, float]:
    """MEMORY USAGE of the same items held as each structure, divided by the number of items."""
    result: dict[str, float] = {}
    for kind in kinds:
        base = f"{prefix}mem:{kind}"
        keys = load_structure(r, kind, base, items)
        total = sum(_memory(r, k) for k in keys)
        result[kind] = total / len(items)
        r.unlink(*keys)
    return result


@dataclass
class EncodingPoint:
    size: int
    encoding: str
    bytes_per_element: float


def encoding_curve(r: Any, kind: str, key: str, sizes: Iterable[int]) -> list[EncodingPoint]:
    """Grow one structure through `sizes` and record OBJECT ENCODING and bytes per element.

    Members are short ('m0001'; integers for a set, so small sets can use an intset), so the
    entry-count threshold is what changes the encoding.
    """
    if kind not in ("hash", "set", "zset", "list"):
        raise LabError(f"encoding_curve works on hash, set, zset or list, not {kind!r}.")
    r.delete(key)
    points: list[EncodingPoint] = []
    have = 0
    for size in sorted(sizes):
        new = {(str(i) if kind == "set" else f"m{i:04d}"): f"v{i}" for i in range(have, size)}
        if new:
            pipe = r.pipeline(transaction=False)
            if kind == "hash":
                pipe.hset(key, mapping=new)
            elif kind == "set":
                pipe.sadd(key, *new)
            elif kind == "zset":
                pipe.zadd(key, {m: i for i, m in enumerate(new, start=have)})
            else:
                pipe.rpush(key, *new)
            pipe.execute()
        have = size
        points.append(EncodingPoint(size, r.object("encoding", key), _memory(r, key) / size))
    r.delete(key)
    return points


def listpack_threshold(r: Any, kind: str) -> int | None:
    """The server's configured entry limit for the compact encoding of `kind` (CONFIG GET).

    For a set it is the intset limit: encoding_curve() fills sets with integers, which stay an
    intset up to set-max-intset-entries (512) on every engine. Valkey and Redis 7.2+ also have
    set-max-listpack-entries (128), for sets of short strings only.
    """
    names = {"hash": ["hash-max-listpack-entries", "hash-max-ziplist-entries"],
             "zset": ["zset-max-listpack-entries", "zset-max-ziplist-entries"],
             "set": ["set-max-intset-entries"]}.get(kind, [])
    for name in names:
        value = r.config_get(name).get(name)
        if value is not None:
            return int(value)
    return None


def plot_bytes_per_element(per_element: dict[str, float], ax: Any = None, title: str = "") -> Any:
    """A bar chart: bytes per element for each structure (lower is leaner)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.2))
    kinds = list(per_element)
    bars = ax.bar(kinds, [per_element[k] for k in kinds], color="#4c72b0")
    ax.bar_label(bars, fmt="%.0f")
    ax.set_ylabel("bytes per element (MEMORY USAGE)")
    ax.set_title(title or "The same items, held as different structures")
    return ax


def plot_encoding_curve(points: list[EncodingPoint], threshold: int | None = None, ax: Any = None,
                        title: str = "") -> Any:
    """Bytes per element as a structure grows, coloured by encoding, with the threshold marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.2))
    encodings = list(dict.fromkeys(p.encoding for p in points))
    colours = ["#55a868", "#c44e52", "#8172b2", "#ccb974"]
    for enc, colour in zip(encodings, colours, strict=False):
        pts = [p for p in points if p.encoding == enc]
        ax.plot([p.size for p in pts], [p.bytes_per_element for p in pts], "o-", color=colour, label=enc)
    if threshold:
        ax.axvline(threshold, color="grey", linestyle="--", label=f"max entries = {threshold}")
    ax.set_xscale("log")
    ax.set_xlabel("number of elements")
    ax.set_ylabel("bytes per element")
    ax.set_title(title)
    ax.legend()
    return ax


def counter_race(client_factory: Any, key: str, threads: int = 4, per_thread: int = 300,
                 atomic: bool = True) -> int:
    """Increment `key` from several threads, each with its own connection; return the final value.

    atomic=True uses INCR (one command the server runs alone); atomic=False reads with GET and
    writes back GET+1 with SET, so two threads can read the same value and one update is lost.
    """
    first = client_factory()
    first.set(key, 0)
    barrier = threading.Barrier(threads)
    errors: list[Exception] = []

    def work() -> None:
        r = client_factory()
        try:
            barrier.wait()
            for _ in range(per_thread):
                if atomic:
                    r.incr(key)
                else:
                    r.set(key, int(r.get(key)) + 1)
        except Exception as exc:  # raised in the caller's thread below
            log.debug("a counter worker failed: %s", exc, exc_info=True)
            errors.append(exc)
        finally:
            r.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise LabError(f"A worker thread failed: {errors[0]!r}") from errors[0]
    return int(first.get(key))


def encoding_widget(r: Any, key: str, kind: str = "hash", max_size: int = 1200) -> tuple[Any, Any]:
    """A slider for the number of elements; shows OBJECT ENCODING and MEMORY USAGE measured live.

    Returns (widget, update): update(size) rebuilds the structure at that size and returns the
    EncodingPoint, so a headless run can call it once.
    """
    import ipywidgets as widgets

    threshold = listpack_threshold(r, kind)
    start = threshold or 128
    slider = widgets.IntSlider(value=start, min=1, max=max_size, step=1, description=_("elements"),
                               continuous_update=False)
    out = widgets.HTML()

    def update(size: int) -> EncodingPoint:
        point = encoding_curve(r, kind, key, [size])[0]
        limit = _(" (the server's limit is {threshold})", threshold=threshold) if threshold else ""
        out.value = _("<b>{kind}</b> with <b>{size}</b> elements{limit}: encoding <code>{encoding}</code>, MEMORY USAGE "
                      "{bytes:,.0f} bytes = <b>{per_element:.1f}</b> bytes per element", kind=kind, size=size,
                      limit=limit, encoding=point.encoding, bytes=point.bytes_per_element * size,
                      per_element=point.bytes_per_element)
        return point

    slider.observe(lambda change: update(change["new"]), names="value")
    return widgets.VBox([slider, out]), update

