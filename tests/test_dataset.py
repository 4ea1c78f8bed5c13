"""The generated shop dataset: deterministic, idempotent to build, realistic enough to cache."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from helpers.topics import dataset


def _digest(conn: sqlite3.Connection) -> str:
    h = hashlib.sha256()
    for table in ("users", "products", "orders", "order_items", "reviews"):
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
            h.update(repr(row).encode())
    return h.hexdigest()


def _small(monkeypatch: pytest.MonkeyPatch, seed: int) -> str:
    monkeypatch.setattr(dataset, "SIZES", {"users": 50, "categories": 4, "products": 40, "orders": 120,
                                           "reviews": 80})
    conn = sqlite3.connect(":memory:", isolation_level=None)
    counts = dataset.generate(conn, seed=seed, progress=False)
    assert counts["products"] == 40 and counts["orders"] == 120 and counts["order_items"] >= 120
    return _digest(conn)


def test_same_seed_same_data_other_seed_other_data(monkeypatch):
    assert _small(monkeypatch, 1) == _small(monkeypatch, 1)
    assert _small(monkeypatch, 1) != _small(monkeypatch, 2)


@pytest.fixture(scope="module")
def built():
    return dataset.build(progress=False)


def test_build_is_idempotent(built):
    stamp = built.stat().st_mtime_ns
    assert dataset.build(progress=False) == built
    assert built.stat().st_mtime_ns == stamp  # not rebuilt
    assert dataset.built_version(built) == (dataset.VERSION, dataset.SEED)


def test_damaged_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(tmp_path))
    monkeypatch.setattr(dataset, "SIZES", {"users": 20, "categories": 3, "products": 15, "orders": 30,
                                           "reviews": 10})
    path = dataset.pristine_path()
    path.write_text("not a database")
    assert dataset.built_version(path) is None
    assert dataset.build(progress=False) == path
    assert dataset.built_version(path) == (dataset.VERSION, dataset.SEED)


def test_sizes_and_shape(built):
    db = dataset.open_pristine()
    counts = db.counts()
    assert counts["products"] == dataset.SIZES["products"]
    assert counts["order_items"] > 30_000 and counts["reviews"] == dataset.SIZES["reviews"]
    assert built.stat().st_size < 30_000_000
    # Zipf-like popularity: the top 1% of products take a large share of the units sold.
    units = [r["u"] for r in db.query("SELECT SUM(quantity) AS u FROM order_items GROUP BY product_id ORDER BY u DESC")]
    top = sum(units[: len(units) // 100])
    assert top / sum(units) > 0.15
    db.close()


def test_working_copy_starts_fresh(built):
    db = dataset.open_shop("test-dataset")
    pid = db.product_ids(limit=1)[0]
    original = db.price(pid)
    db.update_price(pid, original + 100)
    assert db.price(pid) == original + 100
    db.close()
    again = dataset.open_shop("test-dataset")
    assert again.price(pid) == original
    kept = dataset.open_shop("test-dataset", fresh=False)
    kept.update_price(pid, 1)
    assert dataset.open_shop("test-dataset", fresh=False).price(pid) == 1
    with pytest.raises(ValueError):
        dataset.working_copy("../escape")


def test_working_copies_made_at_once_never_share_a_half_written_file(built):
    """A checker that ran out of time may still be copying when the next check copies the same database."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _i: dataset.working_copy("test-dataset-race"), range(16)))
    assert len(set(paths)) == 1
    with sqlite3.connect(paths[0]) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] > 0
    assert not list(paths[0].parent.glob("*.copying"))


def test_pristine_is_read_only(built):
    from helpers.runtime.state import LabError

    db = dataset.open_pristine()
    with pytest.raises(LabError, match="read-only"):
        db.update_price(1, 100)
