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
import stat
from pathlib import Path

import narwhals as nw

from openphm.errors import KeyMissingError

KEY_ENV = "OPENPHM_KEY"
MIN_KEY_BITS = 256
"""The key strength HMAC-SHA256 is built for: its output size (RFC 2104 section 3; NIST SP 800-107r1)."""
_LETTERS = str.maketrans("0123456789", "ghijklmnop")
_HEX = frozenset(b"0123456789abcdefABCDEF")


def key_bits(key: bytes) -> int:
    """The bits a key carries: 4 per character when it is written in hex (as ``phm key new`` writes it), else 8.

    The key's bytes are used as they are (a hex key is not decoded), so pseudonyms made with any earlier key
    stay the same; only the strength is counted by what the characters can hold.
    """
    return 4 * len(key) if set(key) <= _HEX else 8 * len(key)


def shared_key_file(key_file: Path) -> bool:
    """Whether users other than the owner may read, write or run ``key_file`` (POSIX permission bits)."""
    if os.name == "nt":  # Windows permissions are ACLs, not mode bits: the check does not apply there
        return False
    return bool(key_file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def load_key(key_file: Path | None, *, allow_shared: bool = False) -> bytes:
    """The secret key from ``key_file``, else from ``OPENPHM_KEY``.

    Refused, in one line that never contains the key: a missing key, a key of fewer than 256 bits, and a key
    file that other users may read (``chmod 600`` it) unless ``allow_shared``, which the caller logs.
    """
    if key_file is not None:
        try:
            if not key_file.is_file():
                raise KeyMissingError(f"{key_file}: key file not found (make one with 'phm key new FILE')")
            if shared_key_file(key_file) and not allow_shared:
                raise KeyMissingError(
                    f"{key_file}: other users may read the key file; run 'chmod 600 {key_file}' "
                    "(or pass --allow-shared-key-file, which is logged)"
                )
            key = key_file.read_bytes().strip()
        except OSError:
            raise KeyMissingError(f"{key_file}: key file cannot be read") from None
    else:
        key = os.environ.get(KEY_ENV, "").strip().encode()
    if not key:
        raise KeyMissingError(
            f"no pseudonymisation key: pass --key-file FILE or set {KEY_ENV} (make one with 'phm key new FILE')"
        )
    if key_bits(key) < MIN_KEY_BITS:
        raise KeyMissingError(
            f"the pseudonymisation key holds {key_bits(key)} bits, fewer than {MIN_KEY_BITS}: "
            "make a new one with 'phm key new FILE'"
        )
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
