"""At-rest encryption of snapshot files, with a data key from the local KMS (moto's, same process).

A replication group created with AtRestEncryptionEnabled writes its snapshots' RDB files encrypted
(AES-256-GCM) under a data key that the local KMS generates from the AWS managed key
`alias/aws/elasticache`, as ElastiCache does with KMS. The encrypted data key is stored in the
file's header, so a copy of the file stays readable by the control plane and by nobody without KMS:
`head -c 24 <file>` shows `ELASTICACHE-LAB-KMS-v1` instead of an RDB's `REDIS00..`.
The engines' memory and their own dump.rdb are not encrypted (docs/local-vs-aws.md).
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

MAGIC = b"ELASTICACHE-LAB-KMS-v1\n"
ALIAS = "alias/aws/elasticache"
ACCOUNT, REGION = "123456789012", "us-east-1"


def _kms():  # noqa: ANN202 - moto's backend
    from moto.kms.models import kms_backends

    return kms_backends[ACCOUNT][REGION]


def key_id() -> str:
    """The AWS managed key for ElastiCache in the local KMS (created on first use, as AWS does)."""
    kms = _kms()
    found = kms.get_key_id_from_alias(ALIAS)
    if found:
        return found
    key = kms.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT",
                         "Default key that protects my ElastiCache data when no other key is defined", None)
    kms.create_alias(key.id, ALIAS)
    return key.id


def key_arn() -> str:
    return _kms().describe_key(key_id()).arn


def is_encrypted(path: Path | str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


def encrypt_file(path: Path | str) -> None:
    """Encrypt a file in place under a fresh data key from the local KMS."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    plain_key, blob, _ = _kms().generate_data_key(key_id(), {"service": "elasticache"}, 32, "AES_256")
    nonce = os.urandom(12)
    data = Path(path).read_bytes()
    sealed = AESGCM(plain_key).encrypt(nonce, data, MAGIC)
    tmp = Path(str(path) + ".enc")
    tmp.write_bytes(MAGIC + struct.pack(">I", len(blob)) + blob + nonce + sealed)
    os.replace(tmp, path)


def decrypt_bytes(path: Path | str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = Path(path).read_bytes()
    if not raw.startswith(MAGIC):
        return raw
    at = len(MAGIC)
    (size,) = struct.unpack(">I", raw[at:at + 4])
    blob = raw[at + 4:at + 4 + size]
    nonce = raw[at + 4 + size:at + 16 + size]
    plain_key, _ = _kms().decrypt(blob, {"service": "elasticache"})
    return AESGCM(plain_key).decrypt(nonce, raw[at + 16 + size:], MAGIC)


@contextlib.contextmanager
def plain_files(paths: list[Path]) -> Iterator[list[Path]]:
    """The files as plain RDB: encrypted ones are decrypted into owner-only temporary copies."""
    made: list[Path] = []
    out: list[Path] = []
    try:
        for p in paths:
            if is_encrypted(p):
                fd, name = tempfile.mkstemp(suffix=".rdb", dir=Path(p).parent)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(decrypt_bytes(p))
                made.append(Path(name))
                out.append(Path(name))
            else:
                out.append(Path(p))
        yield out
    finally:
        for m in made:
            m.unlink(missing_ok=True)
