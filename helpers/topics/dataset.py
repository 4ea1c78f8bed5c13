"""The shop dataset: a product catalogue with users, orders and reviews, generated with a fixed seed.

The generator is the source of truth (see data/README.md): the same VERSION and SEED give the
same database, byte for byte in content, on every machine, so the labs' numbers are comparable
and nothing large lives in git. Popularity follows a Zipf-like law (a few bestsellers get most
orders, as in real shops), which is what makes caching pay off and stampedes hurt.

    path = build()                 # idempotent: skips when the current version is already built
    db = open_shop("lab03")        # a fresh, writable working copy for one lab
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from filelock import FileLock

from helpers.runtime import state
from helpers.runtime.flow import on_failure
from helpers.topics.db import ShopDB

VERSION = 1
SEED = 20240611
SIZES = {"users": 6000, "categories": 16, "products": 2400, "orders": 30000, "reviews": 36000}
ZIPF_S = 0.9  # popularity skew: weight of the product ranked k is 1 / k**ZIPF_S
EPOCH = datetime(2024, 1, 1)
DAYS = 540

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
  id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
  country TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE products (
  id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT NOT NULL, description TEXT NOT NULL,
  category_id INTEGER NOT NULL REFERENCES categories(id), price_cents INTEGER NOT NULL,
  stock INTEGER NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
  status TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE order_items (
  order_id INTEGER NOT NULL REFERENCES orders(id), product_id INTEGER NOT NULL REFERENCES products(id),
  quantity INTEGER NOT NULL, price_cents INTEGER NOT NULL, PRIMARY KEY (order_id, product_id)) WITHOUT ROWID;
CREATE TABLE reviews (
  id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL REFERENCES products(id),
  user_id INTEGER NOT NULL REFERENCES users(id), rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
  title TEXT NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL);
"""

INDEXES = """
CREATE INDEX order_items_product ON order_items(product_id, order_id);
CREATE INDEX orders_user ON orders(user_id);
CREATE INDEX reviews_product ON reviews(product_id, created_at);
CREATE INDEX products_category ON products(category_id);
"""

CATEGORIES = ["Kitchen", "Garden", "Books", "Toys", "Sports", "Office", "Audio", "Cameras", "Phones",
              "Computers", "Bathroom", "Bedroom", "Pets", "Tools", "Travel", "Music"]
ADJECTIVES = ["Compact", "Classic", "Deluxe", "Eco", "Smart", "Pro", "Mini", "Rugged", "Silent", "Vintage",
              "Modular", "Portable", "Ultra", "Everyday", "Premium", "Foldable", "Wireless", "Heavy-duty"]
MATERIALS = ["Bamboo", "Steel", "Oak", "Ceramic", "Carbon", "Cotton", "Glass", "Copper", "Leather", "Linen",
             "Aluminium", "Walnut", "Wool", "Granite"]
NOUNS = {
    "Kitchen": ["Kettle", "Pan", "Knife Set", "Grinder", "Toaster", "Blender"],
    "Garden": ["Hose", "Planter", "Shears", "Lantern", "Bench", "Rake"],
    "Books": ["Cookbook", "Atlas", "Novel", "Field Guide", "Notebook", "Almanac"],
    "Toys": ["Puzzle", "Robot", "Kite", "Train Set", "Board Game", "Blocks"],
    "Sports": ["Racket", "Yoga Mat", "Bottle", "Helmet", "Ball", "Jump Rope"],
    "Office": ["Desk Lamp", "Chair", "Stapler", "Organizer", "Pen Set", "Monitor Stand"],
    "Audio": ["Headphones", "Speaker", "Turntable", "Microphone", "Earbuds", "Amplifier"],
    "Cameras": ["Tripod", "Lens", "Camera Bag", "Flash", "Gimbal", "Light Meter"],
    "Phones": ["Phone Case", "Charger", "Power Bank", "Screen Guard", "Dock", "Cable"],
    "Computers": ["Keyboard", "Mouse", "Laptop Sleeve", "USB Hub", "Webcam", "SSD"],
    "Bathroom": ["Towel", "Shower Head", "Mirror", "Soap Dish", "Scale", "Bath Mat"],
    "Bedroom": ["Pillow", "Duvet", "Alarm Clock", "Blanket", "Night Light", "Sheet Set"],
    "Pets": ["Dog Bed", "Cat Tree", "Leash", "Feeder", "Litter Box", "Chew Toy"],
    "Tools": ["Drill", "Hammer", "Wrench Set", "Tape Measure", "Level", "Saw"],
    "Travel": ["Backpack", "Suitcase", "Neck Pillow", "Packing Cubes", "Adapter", "Toiletry Bag"],
    "Music": ["Ukulele", "Metronome", "Guitar Strap", "Capo", "Music Stand", "Harmonica"],
}
FIRST = ["Ana", "Luis", "Marta", "Jorge", "Lucia", "Pablo", "Sofia", "Diego", "Elena", "Carlos", "Noa", "Hugo",
         "Emma", "Liam", "Olivia", "Noah", "Mia", "Leo", "Chloe", "Ivan", "Sara", "Omar", "Nina", "Raul"]
LAST = ["Garcia", "Martinez", "Lopez", "Sanchez", "Perez", "Gomez", "Smith", "Jones", "Brown", "Taylor",
        "Rossi", "Muller", "Dubois", "Silva", "Kim", "Nguyen", "Costa", "Novak", "Ortiz", "Romero"]
COUNTRIES = ["ES", "MX", "AR", "CO", "CL", "PE", "US", "GB", "FR", "DE", "IT", "PT", "BR"]
TITLES = {5: ["Excellent", "Love it", "Exactly as described", "Best purchase this year"],
          4: ["Very good", "Works well", "Good value", "Happy with it"],
          3: ["It's fine", "Average", "Does the job", "Mixed feelings"],
          2: ["Disappointing", "Not great", "Expected more", "Fragile"],
          1: ["Broke quickly", "Do not buy", "Waste of money", "Arrived damaged"]}
PHRASES = ["Shipping was fast.", "The quality is better than the price suggests.", "Packaging could be better.",
           "I use it every day.", "Bought it as a gift.", "The colour differs from the photos.",
           "Instructions were unclear.", "Customer service helped me quickly.", "Feels solid.",
           "Would recommend to friends.", "Smaller than I expected.", "Battery life is great."]


def _stamp(rng: random.Random, start_day: int = 0) -> str:
    day = rng.randrange(start_day, DAYS)
    return (EPOCH + timedelta(days=day, seconds=rng.randrange(86400))).strftime("%Y-%m-%d %H:%M:%S")


def generate(conn: sqlite3.Connection, seed: int = SEED, progress: bool = True) -> dict[str, int]:
    """Fill an empty database (autocommit connection) with the schema and generated rows; returns row counts."""
    from tqdm.auto import tqdm

    rng = random.Random(seed)
    conn.executescript(SCHEMA)
    conn.execute("BEGIN")
    steps = tqdm(total=6, desc="building the shop database", unit="table", delay=1.0, disable=not progress)

    users = []
    for uid in range(1, SIZES["users"] + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        users.append((uid, f"user{uid}@example.com", f"{first} {last}", rng.choice(COUNTRIES), _stamp(rng)))
    conn.executemany("INSERT INTO users VALUES (?,?,?,?,?)", users)
    steps.update()

    cats = list(enumerate(CATEGORIES[: SIZES["categories"]], start=1))
    conn.executemany("INSERT INTO categories VALUES (?,?)", cats)
    products, prices, category_of = [], {}, {}
    for pid in range(1, SIZES["products"] + 1):
        cid, cname = cats[(pid - 1) % len(cats)]
        noun = rng.choice(NOUNS[cname])
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {noun}"
        price = int(round(rng.lognormvariate(3.3, 0.8), 0) * 100 - 1)
        price = max(199, min(price, 199999))
        desc = (f"A {name.lower()} from our {cname.lower()} range. " + " ".join(rng.sample(PHRASES, 2)))
        products.append((pid, f"SKU-{pid:05d}", name, desc, cid, price, rng.randrange(0, 500), _stamp(rng)))
        prices[pid], category_of[pid] = price, cid
    conn.executemany("INSERT INTO products VALUES (?,?,?,?,?,?,?,?)", products)
    steps.update()

    # Popularity: a random permutation of products gets Zipf weights, so bestsellers are spread out.
    ranked = list(prices)
    rng.shuffle(ranked)
    weights = [1.0 / (k ** ZIPF_S) for k in range(1, len(ranked) + 1)]
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    by_category: dict[int, list[int]] = {}
    by_category_cum: dict[int, list[float]] = {}
    for pid, w in zip(ranked, weights, strict=True):
        by_category.setdefault(category_of[pid], []).append(pid)
        prev = by_category_cum.setdefault(category_of[pid], [])
        prev.append((prev[-1] if prev else 0.0) + w)

    orders, items = [], []
    statuses = ["delivered"] * 8 + ["shipped", "cancelled"]
    for oid in range(1, SIZES["orders"] + 1):
        orders.append((oid, rng.randrange(1, SIZES["users"] + 1), rng.choice(statuses), _stamp(rng)))
        basket: set[int] = set()
        first = rng.choices(ranked, cum_weights=cum)[0]
        basket.add(first)
        for _ in range(int(rng.expovariate(1 / 1.6))):
            if rng.random() < 0.6:  # baskets tend to stay in one category: "customers also bought"
                cid = category_of[first]
                basket.add(rng.choices(by_category[cid], cum_weights=by_category_cum[cid])[0])
            else:
                basket.add(rng.choices(ranked, cum_weights=cum)[0])
        for pid in basket:
            items.append((oid, pid, 1 + int(rng.expovariate(1.5)), prices[pid]))
    conn.executemany("INSERT INTO orders VALUES (?,?,?,?)", orders)
    steps.update()
    conn.executemany("INSERT INTO order_items VALUES (?,?,?,?)", items)
    steps.update()

    reviews = []
    for rid in range(1, SIZES["reviews"] + 1):
        pid = rng.choices(ranked, cum_weights=cum)[0]
        quality = 3.0 + ((pid * 7919) % 19) / 10  # each product has its own typical rating
        rating = max(1, min(5, round(rng.gauss(quality, 1.0))))
        body = " ".join(rng.sample(PHRASES, 2))
        reviews.append((rid, pid, rng.randrange(1, SIZES["users"] + 1), rating, rng.choice(TITLES[rating]),
                        body, _stamp(rng)))
    conn.executemany("INSERT INTO reviews VALUES (?,?,?,?,?,?,?)", reviews)
    steps.update()

    conn.execute("COMMIT")
    conn.executescript(INDEXES)
    conn.execute("ANALYZE")
    steps.update()
    steps.close()
    counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("users", "categories", "products", "orders", "order_items", "reviews")}
    conn.executemany("INSERT INTO meta VALUES (?,?)",
                     [("version", str(VERSION)), ("seed", str(seed)),
                      ("built_at", time.strftime("%Y-%m-%dT%H:%M:%S"))] +
                     [(f"rows.{k}", str(v)) for k, v in counts.items()])
    return counts


def data_dir() -> Path:
    path = state.home() / "data"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def pristine_path() -> Path:
    return data_dir() / f"shop-v{VERSION}.sqlite"


def built_version(path: Path) -> tuple[int, int] | None:
    """(version, seed) recorded in a built database, or None if absent or unreadable."""
    if not path.exists():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        return int(meta["version"]), int(meta["seed"])
    except (sqlite3.Error, KeyError, ValueError):
        return None


def build(force: bool = False, progress: bool = True) -> Path:
    """Build the pristine shop database once per state directory; later calls return at once."""
    path = pristine_path()
    if not force and built_version(path) == (VERSION, SEED):
        return path
    with FileLock(str(data_dir() / ".build.lock"), timeout=300):
        if not force and built_version(path) == (VERSION, SEED):  # another kernel built it meanwhile
            return path
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            generate(conn, SEED, progress)
            conn.execute("PRAGMA journal_mode = DELETE")
        finally:
            conn.close()
        os.replace(tmp, path)
    return path


def working_copy(name: str) -> Path:
    """A fresh writable copy of the pristine database for one lab (so every run starts alike)."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError("A working copy's name may hold letters, digits, '-' and '_' only.")
    src = build()
    dst = data_dir() / f"{name}.sqlite"
    # One copy at a time per name: a check that ran out of time may still be copying when the next check
    # copies the same database, and two copies must never share (or rename away) one half-written file.
    with FileLock(str(dst.with_suffix(".lock"))):
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{dst}{suffix}").unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".copying")
        os.close(fd)
        with on_failure(lambda: Path(tmp).unlink(missing_ok=True)):
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        with sqlite3.connect(dst) as conn:  # WAL: readers never wait for a writer (the flusher)
            conn.execute("PRAGMA journal_mode = WAL")
    return dst


def open_shop(name: str = "shop", fresh: bool = True, network_latency_ms: float = 0.0) -> ShopDB:
    """A ShopDB on the working copy `name` (recreated from the pristine build when fresh=True)."""
    path = working_copy(name) if fresh or not (data_dir() / f"{name}.sqlite").exists() \
        else data_dir() / f"{name}.sqlite"
    return ShopDB(path, network_latency_ms=network_latency_ms)


def open_pristine(network_latency_ms: float = 0.0) -> ShopDB:
    """A read-only ShopDB on the pristine build (for checks that must not change anything)."""
    return ShopDB(build(), network_latency_ms=network_latency_ms, readonly=True)
