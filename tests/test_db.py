"""The counting database wrapper and the shop's product page query."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter

import pytest

from helpers.runtime.state import LabError
from helpers.topics import dataset
from helpers.topics.db import Database, ShopDB


@pytest.fixture(scope="module")
def db():
    shop = dataset.open_shop("test-db")
    yield shop
    shop.close()


def test_missing_file_is_a_sentence(tmp_path):
    with pytest.raises(LabError, match="does not exist"):
        Database(tmp_path / "nope.sqlite")
    with pytest.raises(ValueError):
        Database(dataset.build(progress=False), network_latency_ms=-1)


def test_counts_reads_and_writes(db):
    db.reset_counts()
    pid = db.product_ids(limit=1)[0]
    db.product(pid)
    db.product_page(pid)
    db.update_price(pid, 1234)
    assert db.stats() == {"queries": 3, "writes": 1, "max_in_flight": 1}
    assert len(db.query_times) == 3
    db.reset_counts()
    assert db.queries == 0 and db.writes == 0


def test_peak_concurrency_is_tracked(db):
    db.reset_counts()
    hot = db.bestsellers(1)[0]
    barrier = threading.Barrier(6)

    def worker():
        barrier.wait()
        db.product_page(hot)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.queries == 7
    assert 1 <= db.max_in_flight <= 6 and db.in_flight == 0


def test_modelled_network_latency_is_added():
    slow = ShopDB(dataset.build(progress=False), network_latency_ms=20, readonly=True)
    start = time.perf_counter()
    slow.product(1)
    assert time.perf_counter() - start >= 0.019  # a lower bound: the modelled round trip was slept
    slow.close()


def test_execute_many_is_one_transaction(db):
    pid = db.product_ids(limit=1)[0]
    before = db.price(pid)
    db.reset_counts()
    with pytest.raises(sqlite3.IntegrityError):
        db.execute_many([("UPDATE products SET price_cents = ? WHERE id = ?", (1, pid)),
                         ("INSERT INTO categories (id, name) VALUES (1, 'dup')", ())])
    assert db.price(pid) == before  # rolled back
    assert db.execute_many([("UPDATE products SET price_cents = ? WHERE id = ?", (777, pid))]) == 1
    assert db.price(pid) == 777
    assert db.writes == 2


def test_product_page_matches_plain_queries(db):
    hot = db.bestsellers(3)[2]
    page = db.product_page(hot)
    assert page["id"] == hot and page["price_cents"] == db.price(hot)
    rows = db.query("SELECT rating FROM reviews WHERE product_id = ?", (hot,))
    assert page["rating"]["count"] == len(rows)
    assert page["rating"]["average"] == pytest.approx(sum(r["rating"] for r in rows) / len(rows), abs=0.01)
    assert sum(page["rating"]["histogram"]) == len(rows)
    assert len(page["recent_reviews"]) == 3
    # "customers also bought", recomputed in Python from the raw order items
    orders = {r["order_id"] for r in db.query("SELECT order_id FROM order_items WHERE product_id = ?", (hot,))}
    together: Counter[int] = Counter()
    for r in db.query("SELECT order_id, product_id FROM order_items"):
        if r["order_id"] in orders and r["product_id"] != hot:
            together[r["product_id"]] += 1
    top = sorted(together.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert [(a["id"], a["orders_together"]) for a in page["also_bought"]] == top
    assert page["category_rank"] >= 1 and page["units_sold"] > 0


def test_unknown_product(db):
    assert db.product_page(10**9) is None
    assert db.product(10**9) is None and db.price(10**9) is None


def test_readonly_handle_rejects_writes():
    ro = ShopDB(dataset.build(progress=False), readonly=True)
    with pytest.raises(LabError, match="read-only"):
        ro.execute("DELETE FROM products")
    with pytest.raises(LabError, match="read-only"):
        ro.execute_many([])
    ro.close()
