"""Lab 10 (scaling and sharding): exercises."""

from __future__ import annotations

import zlib
from typing import Any

from helpers.exercises.core import Exercise, Wrong, call_learner, expect_choice, expect_number
from helpers.runtime.i18n import translator
from helpers.topics.sharding import SLOTS, crc16, key_slot

_ = translator(__name__)

LAB = "10"

# Keys that exercise every rule of the slot function: plain keys, {tags}, empty {}, nested braces.
SLOT_KEYS = ["user:1000", "user:1001", "{user:1000}:cart", "lab10:{user:1000}:total", "foo{}{bar}",
             "foo{{bar}}zap", "foo{bar}{zap}", "{}", "a{b", "session:9f8e7d", "", "über",
             "{a}:1", "b}c{", "a}b"]  # a one-character tag; a '}' before any '{' (no tag)


def _check_slot(answer: Any) -> str:
    for key in SLOT_KEYS:
        got = call_learner(answer, key, what=_("your function slot(key)"))
        if isinstance(got, bool) or not isinstance(got, int):
            raise Wrong(_("slot({key!r}) returned {got!r}; a slot is a whole number from 0 to 16383.", key=key, got=got))
        if not 0 <= got < SLOTS:
            raise Wrong(_("slot({key!r}) returned {got}, outside 0..16383: take the CRC16 modulo 16384.", key=key, got=got))
        if got != key_slot(key):
            if got == crc16(key.encode()) % SLOTS:
                raise Wrong(_("slot({key!r}) hashed the whole key, but Redis hashes only the hash tag: the text "
                              "between the first '{{' and the next '}}', when it is not empty.", key=key))
            raise Wrong(_("slot({key!r}) returned {got}, but Redis puts that key in slot {slot}. Use CRC16/XMODEM "
                          "(helpers.topics.sharding.crc16) of the key (or its hash tag), modulo 16384.",
                          key=key, got=got, slot=key_slot(key)))
    return _("Same answer as CLUSTER KEYSLOT on every key, hash tags included.")


def _slot_reference(key: str) -> int:
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return crc16(key.encode()) % 16384


q1 = Exercise(
    lab=LAB, qid="q1", title="Compute a key's hash slot yourself",
    checker=_check_slot,
    hint_text=("slot = crc16(part) % 16384, where part is the text inside the first {...} if it is not empty, "
               "else the whole key. crc16 is in helpers.topics.sharding."),
    solution_text=("def slot(key):\n    start = key.find('{')\n    if start != -1:\n"
                   "        end = key.find('}', start + 1)\n        if end > start + 1:\n"
                   "            key = key[start + 1:end]\n    return crc16(key.encode()) % 16384"),
    reference=_slot_reference,
    wrong=[
        (lambda k: crc16(k.encode()) % 16384, "hash tag"),
        (lambda k: crc16(k.encode()), "outside 0..16383"),
        (lambda k: zlib.crc32(k.encode()) % 16384, "crc16/xmodem"),
        (lambda k: str(crc16(k.encode()) % 16384), "whole number"),
    ],
)


def _check_cart_keys(answer: Any) -> str:
    pairs = {}
    for user in (1, 2, 42, 1000, 7777):
        got = call_learner(answer, user, what=_("your function cart_keys(user_id)"))
        if not isinstance(got, tuple) or len(got) != 2 or not all(isinstance(k, str) for k in got):
            raise Wrong(_("cart_keys({user}) returned {got!r}; return a tuple of two key names (strings).",
                           user=user, got=got))
        cart, total = got
        if cart == total:
            raise Wrong(_("cart_keys({user}) returned the same name twice; the cart and its total are two keys.",
                           user=user))
        if str(user) not in cart or str(user) not in total:
            raise Wrong(_("cart_keys({user}) returned {got!r}: each key should name the user ({user}), or "
                          "users would share a cart.", user=user, got=got))
        if key_slot(cart) != key_slot(total):
            raise Wrong(_("{cart!r} and {total!r} are in slots {cart_slot} and {total_slot}: a MULTI/EXEC or MSET "
                          "over both fails with CROSSSLOT. Put the user in a {{hash tag}} in both.",
                          cart=cart, total=total, cart_slot=key_slot(cart), total_slot=key_slot(total)))
        pairs[user] = key_slot(cart)
    if len(set(pairs.values())) == 1:
        raise Wrong(_("Every user's keys land in the same slot: the whole shop would live on one shard. Put only "
                      "the user id in the hash tag, e.g. {user:42}."))
    return _("One tag per user: a user's keys stay together, different users spread over the shards.")


q2 = Exercise(
    lab=LAB, qid="q2", title="Key names that keep a user's cart and total in one slot",
    checker=_check_cart_keys,
    hint_text="Only the text inside {...} is hashed. Put the user id, and only it, in the braces of both names.",
    solution_text="def cart_keys(user_id):\n    return (f'cart:{{user:{user_id}}}', f'cart-total:{{user:{user_id}}}')",
    reference=lambda u: (f"cart:{{user:{u}}}", f"cart-total:{{user:{u}}}"),
    wrong=[
        (lambda u: (f"cart:{u}", f"cart-total:{u}"), "crossslot"),
        (lambda u: (f"{{cart}}:{u}", f"{{cart}}:total:{u}"), "same slot"),
        (lambda u: f"cart:{{user:{u}}}", "tuple of two"),
        (lambda u: ("cart:{user}", "total:{user}"), "should name the user"),
    ],
)


def _check_fraction(answer: Any) -> str:
    value = expect_number(answer, _("the fraction"))
    if value > 1:
        raise Wrong(_("{value:g} is more than 1: give a fraction (0.5 means half of the keys), not a percentage.",
                       value=value))
    if value >= 0.6:
        raise Wrong(_("{value:g} is what modulo hashing does (most keys move). With consistent hashing the new "
                      "node takes over only its share of the ring.", value=value))
    if abs(value - 0.25) < 0.01:
        raise Wrong(_("1/4 would be the share of each of the 4 old nodes; after the change there are 5 nodes, and "
                      "the new one ends up with its fair share of all keys."))
    if not 0.15 <= value <= 0.23:
        raise Wrong(_("{value:g} is not it: the new node should end up with its fair share of the keys "
                      "(1 out of the new number of nodes), and only those keys move.", value=value))
    return _("About 1/5: only the keys the new node now owns move; the rest stay cached.")


q4 = Exercise(
    lab=LAB, qid="q4", title="A pool of 4 Memcached nodes grows to 5: what fraction of keys move (consistent hashing)?",
    checker=_check_fraction,
    hint_text="With consistent hashing, only the keys the new node takes over move, and it takes a fair share.",
    solution_text="answer = 1 / 5   # 0.2",
    reference=0.2,
    wrong=[(0.8, "modulo"), (0.25, "4 old nodes"), (20, "percentage"), ("0.2", "number")],
)


def _check_redirect(answer: Any) -> str:
    choice = expect_choice(answer, ["MOVED", "ASK"], _("the redirection"))
    if choice == "ASK":
        raise Wrong(_("ASK is for one request only, while a slot is being migrated: the client sends ASKING and "
                      "the command to the other node once, and keeps its slot map as it is."))
    return _("MOVED: the slot now lives elsewhere for good; update the map. ASK: only this once, during a migration.")


q3 = Exercise(
    lab=LAB, qid="q3", title="Which redirection tells a client to update its slot map for good?",
    checker=_check_redirect,
    hint_text="One of them appears only while a slot is half-way between two nodes.",
    solution_text="answer = 'MOVED'",
    reference="MOVED",
    wrong=[("ASK", "one request only"), ("REDIRECT", "not one of the choices"), (302, "one of")],
)
