"""Keyed pseudonyms: HMAC-SHA256 of the normalised NHS number with a secret key.

The key comes from ``--key-file`` or the ``OPENPHM_KEY`` environment variable and is never written to the
store, the run log or any output. The same key gives the same pseudonym across tables and runs, so data
pseudonymised by separate runs still links; a different key gives unrelated pseudonyms.

A pseudonym is the 64-character hexadecimal HMAC digest written with the letters a-p (the digits 0-9
become g-p). It therefore contains no digit at all, so no pseudonym can be mistaken for, or flagged by a
scanner as, an NHS number. To reproduce one outside openphm::

    printf %s 9434765919 | openssl dgst -sha256 -hmac "$KEY" | cut -d' ' -f2 | tr 0-9 g-p
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import narwhals as nw

from openphm.errors import KeyMissingError

KEY_ENV = "OPENPHM_KEY"
MIN_KEY_BYTES = 16
_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def load_key(key_file: Path | None) -> bytes:
    """The secret key from ``key_file``, else from ``OPENPHM_KEY``; refuse a missing or short key."""
    if key_file is not None:
        try:
            key = key_file.read_bytes().strip()
        except OSError:
            raise KeyMissingError(f"{key_file}: key file cannot be read") from None
    else:
        key = os.environ.get(KEY_ENV, "").strip().encode()
    if not key:
        raise KeyMissingError(
            f"no pseudonymisation key: pass --key-file FILE or set {KEY_ENV} (make one with 'phm key new FILE')"
        )
    if len(key) < MIN_KEY_BYTES:
        raise KeyMissingError(f"the pseudonymisation key is shorter than {MIN_KEY_BYTES} bytes: use a longer one")
    return key


def normalise_nhs_number(name: str) -> nw.Expr:
    """The NHS number with spaces removed (the contract allows spaces, e.g. '943 476 5919')."""
    return nw.col(name).str.replace_all(" ", "", literal=True)


class KeyedHash:
    """Batch function mapping normalised NHS numbers to pseudonyms.

    A Python loop, one HMAC per distinct person: no engine offers HMAC natively. It runs once per
    ingest over the distinct numbers (not per event row) and is picklable for Spark executors.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, values: list[str | None]) -> list[str | None]:
        base = hmac.new(self._key, digestmod=hashlib.sha256)
        out: list[str | None] = []
        for value in values:
            if value is None:
                out.append(None)
                continue
            digest = base.copy()
            digest.update(value.encode("ascii"))
            out.append(digest.hexdigest().translate(_LETTERS))
        return out

    def __repr__(self) -> str:  # never show the key, even in a debugger or a traceback
        return "KeyedHash(<secret>)"
