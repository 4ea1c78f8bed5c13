"""RESP2/RESP3: read one command or one reply from a buffer, and encode the replies the endpoint makes itself."""

from __future__ import annotations

import re
from typing import Any

# The slot count and a key's hash slot (CRC16/XMODEM of the key or its {hash tag}, modulo 16384) are redis-py's,
# the same its cluster client routes with; helpers/topics/sharding.py keeps a copy to read in lab 10.
from redis.crc import REDIS_CLUSTER_HASH_SLOTS as SLOTS  # noqa: F401 (re-exported for the endpoints)
from redis.crc import key_slot  # noqa: F401 (re-exported for the endpoints)

CRLF = b"\r\n"


class Incomplete(Exception):
    """The buffer does not hold a whole message yet."""


def reply_end(buf: bytes | bytearray, pos: int = 0) -> int:
    """The index just after the one complete reply starting at `pos` (any RESP2/RESP3 type)."""
    nl = buf.find(CRLF, pos)
    if nl < 0:
        raise Incomplete
    t = buf[pos:pos + 1]
    head = buf[pos + 1:nl]
    after = nl + 2
    if t in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return after
    if t in (b"$", b"!", b"="):
        n = int(head)
        if n < 0:
            return after
        end = after + n + 2
        if len(buf) < end:
            raise Incomplete
        return end
    if t in (b"*", b">", b"~", b"%", b"|"):
        n = int(head)
        if n < 0:
            return after
        count = n * 2 if t in (b"%", b"|") else n
        p = after
        for _ in range(count):
            p = reply_end(buf, p)
        if t == b"|":  # attributes precede the reply they describe
            p = reply_end(buf, p)
        return p
    raise ValueError(f"not a RESP reply: {bytes(buf[pos:pos + 20])!r}")


# The engines' bounds on what a client sends (Valkey/Redis OSS networking.c, the same in both):
INLINE_MAX = 64 * 1024  # PROTO_INLINE_MAX_SIZE: an inline command, or a *N / $N line, longer than this
MULTIBULK_MAX = (1 << 31) - 1  # INT_MAX: the most arguments a *N line may announce
BULK_MAX = 512 * 1024 * 1024  # proto-max-bulk-len's default: the longest argument
UNAUTH_MULTIBULK_MAX = 10  # before AUTH, when a password is required
UNAUTH_BULK_MAX = 16384
_INT = re.compile(rb"0|-?[1-9][0-9]*")  # what the engines' string2ll accepts


class ProtocolError(ValueError):
    """What the engine answers as `-ERR Protocol error: ...` before it closes the connection."""

    def __init__(self, what: str):
        super().__init__(f"Protocol error: {what}")


def _length(text: bytes | bytearray) -> int | None:
    return int(text) if _INT.fullmatch(text) else None


def _line_end(buf: bytes | bytearray, pos: int, sep: bytes, too_long: str) -> int:
    """Where the line at `pos` ends; Incomplete while it may still end, ProtocolError once it is too long."""
    nl = buf.find(sep, pos, pos + INLINE_MAX + len(sep))
    if nl < 0:
        if len(buf) - pos > INLINE_MAX:
            raise ProtocolError(too_long)
        raise Incomplete
    return nl


def parse_command(buf: bytes | bytearray, pos: int = 0, max_bulk: int = BULK_MAX,
                  authed: bool = True) -> tuple[list[bytes], int]:
    """(arguments, end) of the command at `pos`: a RESP array of bulk strings, or an inline command.

    Bounded as the engines bound it: a length out of bounds raises ProtocolError (the engine's words) as
    soon as its line is read, before any of what it announces, so nothing larger than a bound is buffered."""
    if pos >= len(buf):
        raise Incomplete
    if buf[pos:pos + 1] != b"*":
        nl = _line_end(buf, pos, b"\n", "too big inline request")
        return bytes(buf[pos:nl]).strip().split(), nl + 1
    nl = _line_end(buf, pos, CRLF, "too big mbulk count string")
    n = _length(buf[pos + 1:nl])
    if n is None or n > MULTIBULK_MAX:
        raise ProtocolError("invalid multibulk length")
    if not authed and n > UNAUTH_MULTIBULK_MAX:
        raise ProtocolError("unauthenticated multibulk length")
    p = nl + 2
    args: list[bytes] = []
    for _ in range(max(n, 0)):
        nl = _line_end(buf, p, CRLF, "too big bulk count string")
        if buf[p:p + 1] != b"$":
            raise ProtocolError(f"expected '$', got '{chr(buf[p])}'")
        size = _length(buf[p + 1:nl])
        if size is None or size < 0 or size > max_bulk:
            raise ProtocolError("invalid bulk length")
        if not authed and size > UNAUTH_BULK_MAX:
            raise ProtocolError("unauthenticated bulk length")
        start = nl + 2
        end = start + size
        if len(buf) < end + 2:
            raise Incomplete
        args.append(bytes(buf[start:end]))
        p = end + 2
    return args, p


def parse_value(buf: bytes | bytearray, pos: int = 0) -> tuple[Any, int]:
    """A reply as Python values (errors as ReplyError instances), and its end."""
    nl = buf.find(CRLF, pos)
    if nl < 0:
        raise Incomplete
    t = buf[pos:pos + 1]
    head = bytes(buf[pos + 1:nl])
    after = nl + 2
    if t == b"+":
        return head, after
    if t in (b"-", b"!"):
        if t == b"!":
            end = reply_end(buf, pos)
            return ReplyError(bytes(buf[after:end - 2]).decode(errors="replace")), end
        return ReplyError(head.decode(errors="replace")), after
    if t in (b":", b"("):
        return int(head), after
    if t == b",":
        return float(head), after
    if t == b"#":
        return head == b"t", after
    if t == b"_":
        return None, after
    if t in (b"$", b"="):
        n = int(head)
        if n < 0:
            return None, after
        if len(buf) < after + n + 2:
            raise Incomplete
        return bytes(buf[after:after + n]), after + n + 2
    if t in (b"*", b">", b"~", b"%"):
        n = int(head)
        if n < 0:
            return None, after
        count = n * 2 if t == b"%" else n
        out = []
        p = after
        for _ in range(count):
            v, p = parse_value(buf, p)
            out.append(v)
        if t == b"%":
            return dict(zip(out[::2], out[1::2], strict=False)), p
        return out, p
    raise ValueError(f"not a RESP reply: {bytes(buf[pos:pos + 20])!r}")


class ReplyError(Exception):
    pass


class Push(list):
    """An out-of-band message (pub/sub): a RESP3 push, or a plain array in RESP2."""


def encode(value: Any, proto: int = 2) -> bytes:
    """Python values as a reply: str -> simple string, bytes -> bulk, dict -> map (RESP3) or flat array."""
    if value is None:
        return b"_\r\n" if proto == 3 else b"$-1\r\n"
    if isinstance(value, ReplyError):
        return b"-" + str(value).encode() + CRLF
    if isinstance(value, bool):
        return (b"#t\r\n" if value else b"#f\r\n") if proto == 3 else (b":1\r\n" if value else b":0\r\n")
    if isinstance(value, int):
        return b":" + str(value).encode() + CRLF
    if isinstance(value, str):
        return b"+" + value.encode() + CRLF
    if isinstance(value, (bytes, bytearray)):
        return b"$" + str(len(value)).encode() + CRLF + bytes(value) + CRLF
    if isinstance(value, dict):
        if proto == 3:
            parts = [b"%" + str(len(value)).encode() + CRLF]
            for k, v in value.items():
                parts += [encode(k.encode() if isinstance(k, str) else k, proto), encode(v, proto)]
            return b"".join(parts)
        flat: list[Any] = []
        for k, v in value.items():
            flat += [k.encode() if isinstance(k, str) else k, v]
        return encode(flat, proto)
    if isinstance(value, Push) and proto == 3:
        return b">" + str(len(value)).encode() + CRLF + b"".join(encode(v, proto) for v in value)
    if isinstance(value, (list, tuple)):
        return b"*" + str(len(value)).encode() + CRLF + b"".join(encode(v, proto) for v in value)
    return encode(str(value).encode(), proto)


def command(*args: Any) -> bytes:
    parts = [b"*" + str(len(args)).encode() + CRLF]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$" + str(len(b)).encode() + CRLF + b + CRLF)
    return b"".join(parts)
