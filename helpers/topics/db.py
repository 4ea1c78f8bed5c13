"""The lab's "primary database": SQLite behind a wrapper that counts every round trip.

Caching is judged by what it saves the database, so the wrapper counts queries and writes,
tracks how many run at the same time (a cache stampede shows up as a peak), and keeps the
time of each query for plots. SQLite runs in-process, so a query costs only its real work;
`network_latency_ms` optionally adds a *modelled* network round trip (clearly not measured)
to show what a remote database such as Amazon RDS would add on top.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from helpers.runtime.flow import on_failure
from helpers.runtime.state import LabError


class Database:
    """A SQLite database shared by threads (one connection per thread) that counts its work."""

    def __init__(self, path: str | Path, network_latency_ms: float = 0.0, readonly: bool = False):
        self.path = Path(path)
        if not self.path.exists():
            raise LabError(f"The database file {self.path} does not exist. Build it with "
                           "helpers.topics.dataset.build() (the lab's first cell does this).")
        if network_latency_ms < 0:
            raise ValueError("network_latency_ms cannot be negative.")
        self.network_latency_ms = float(network_latency_ms)
        self.readonly = readonly
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self.reset_counts()

    # --- connections ---------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            uri = f"file:{self.path}?mode={'ro' if self.readonly else 'rw'}"
            conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection (the object can be used again afterwards)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.ProgrammingError:  # closed from another thread: harmless
                pass
        self._local = threading.local()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- counting ------------------------------------------------------------------------
    def reset_counts(self) -> None:
        """Start counting from zero (call before each experiment)."""
        with getattr(self, "_lock", threading.Lock()):
            self.queries = 0
            self.writes = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self.query_times: list[float] = []  # time.monotonic() of each read query

    def stats(self) -> dict[str, int]:
        return {"queries": self.queries, "writes": self.writes, "max_in_flight": self.max_in_flight}

    @contextmanager
    def _round_trip(self, write: bool) -> Any:
        with self._lock:
            if write:
                self.writes += 1
            else:
                self.queries += 1
                self.query_times.append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.network_latency_ms:
                time.sleep(self.network_latency_ms / 1000.0)  # MODELLED network round trip, not measured
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    # --- the API the labs use -----------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Run one read query; rows come back as plain dicts."""
        with self._round_trip(write=False):
            rows = self._conn().execute(sql, params).fetchall()
        return [dict(r) for r in rows]

    def query_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one write statement in its own transaction; returns the number of rows changed."""
        if self.readonly:
            raise LabError("This database handle is read-only; open a working copy to write to it.")
        with self._round_trip(write=True):
            cur = self._conn().execute(sql, params)
        return cur.rowcount

    def execute_many(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> int:
        """Run several writes in ONE transaction and one round trip (what a batching writer does)."""
        if self.readonly:
            raise LabError("This database handle is read-only; open a working copy to write to it.")
        changed = 0
        with self._round_trip(write=True):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            with on_failure(lambda: conn.execute("ROLLBACK")):
                for sql, params in statements:
                    changed += conn.execute(sql, params).rowcount
                conn.execute("COMMIT")
        return changed


PRODUCT_PAGE_SQL = """
WITH
  target AS (
    SELECT p.id, p.sku, p.name, p.description, p.price_cents, p.stock, p.category_id, c.name AS category
    FROM products p JOIN categories c ON c.id = p.category_id
    WHERE p.id = :pid),
  rating AS (
    SELECT COUNT(*) AS n, ROUND(AVG(rating), 2) AS average,
           SUM(rating = 5) AS five, SUM(rating = 4) AS four, SUM(rating = 3) AS three,
           SUM(rating = 2) AS two, SUM(rating = 1) AS one
    FROM reviews WHERE product_id = :pid),
  recent AS (
    SELECT r.rating, r.title, u.name AS author, r.created_at
    FROM reviews r JOIN users u ON u.id = r.user_id
    WHERE r.product_id = :pid ORDER BY r.created_at DESC, r.id DESC LIMIT 3),
  also AS (
    SELECT other.product_id AS id, COUNT(DISTINCT other.order_id) AS together
    FROM order_items mine
    JOIN order_items other ON other.order_id = mine.order_id AND other.product_id <> mine.product_id
    WHERE mine.product_id = :pid
    GROUP BY other.product_id ORDER BY together DESC, other.product_id LIMIT 5),
  category_sales AS (
    SELECT oi.product_id, SUM(oi.quantity) AS units
    FROM order_items oi JOIN products q ON q.id = oi.product_id
    WHERE q.category_id = (SELECT category_id FROM target)
    GROUP BY oi.product_id)
SELECT json_object(
  'id', t.id, 'sku', t.sku, 'name', t.name, 'description', t.description,
  'price_cents', t.price_cents, 'stock', t.stock, 'category', t.category,
  'rating', (SELECT json_object('count', n, 'average', average, 'histogram',
                                json_array(COALESCE(one, 0), COALESCE(two, 0), COALESCE(three, 0),
                                           COALESCE(four, 0), COALESCE(five, 0))) FROM rating),
  'recent_reviews', (SELECT json_group_array(json_object('rating', rating, 'title', title, 'author', author,
                                                         'date', created_at)) FROM recent),
  'also_bought', (SELECT json_group_array(json_object('id', a.id, 'name', pr.name, 'orders_together', a.together))
                  FROM also a JOIN products pr ON pr.id = a.id),
  'units_sold', COALESCE((SELECT units FROM category_sales WHERE product_id = t.id), 0),
  'category_rank', 1 + (SELECT COUNT(*) FROM category_sales
                        WHERE units > COALESCE((SELECT units FROM category_sales WHERE product_id = t.id), 0))
) AS page
FROM target t
"""


class ShopDB(Database):
    """The shop's database with the queries the caching labs put a cache in front of."""

    def product_page(self, product_id: int) -> dict[str, Any] | None:
        """Everything a product page shows, in one realistically costly query.

        Joins and aggregates: rating summary, latest reviews with their authors, "customers
        also bought" (a self-join over order items) and the product's bestseller rank in its
        category (an aggregation over every sale in the category). None if there is no such product.
        """
        row = self.query_one(PRODUCT_PAGE_SQL, {"pid": int(product_id)})
        return json.loads(row["page"]) if row else None

    def product(self, product_id: int) -> dict[str, Any] | None:
        """Just the product row (a cheap primary-key lookup)."""
        return self.query_one("SELECT id, sku, name, price_cents, stock, category_id FROM products WHERE id = ?",
                              (int(product_id),))

    def price(self, product_id: int) -> int | None:
        row = self.query_one("SELECT price_cents FROM products WHERE id = ?", (int(product_id),))
        return row["price_cents"] if row else None

    def update_price(self, product_id: int, price_cents: int) -> int:
        """Change a price (the write the invalidation examples react to); returns rows changed."""
        return self.execute("UPDATE products SET price_cents = ?, updated_at = datetime('now') WHERE id = ?",
                            (int(price_cents), int(product_id)))

    def product_ids(self, limit: int | None = None) -> list[int]:
        sql = "SELECT id FROM products ORDER BY id" + (f" LIMIT {int(limit)}" if limit else "")
        return [r["id"] for r in self.query(sql)]

    def bestsellers(self, n: int = 10) -> list[int]:
        """The n most ordered products: the "hot keys" of the shop."""
        rows = self.query("SELECT product_id, SUM(quantity) AS units FROM order_items "
                          "GROUP BY product_id ORDER BY units DESC, product_id LIMIT ?", (int(n),))
        return [r["product_id"] for r in rows]

    def counts(self) -> dict[str, int]:
        """Row counts per table (what the lab shows after loading)."""
        out = {}
        for table in ("users", "categories", "products", "orders", "order_items", "reviews"):
            out[table] = self.query_one(f"SELECT COUNT(*) AS n FROM {table}")["n"]
        return out
