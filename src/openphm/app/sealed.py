"""Encryption of what the application must hold for a while but never in clear: matched lists and view links.

- A re-identification request's matched (pseudonym -> NHS number) pairs are sealed with AES-256-GCM under a key
  derived for that request alone: HKDF-SHA256 over the server's pseudonymisation key, with a random salt kept
  beside the ciphertext and the request's id in the ``info`` (and as associated data, so a ciphertext moved to
  another request's row does not open). The database alone opens nothing; the key alone finds nothing.
  Destroying the row destroys the list.
- A person-view link carries an opaque token instead of the pseudonym (a URL ends up in proxy and server logs):
  the pseudonym, the user it was issued to and its expiry, sealed under a key derived from the server's secret.
  A token opens for its user only, and only until it expires.
"""

from __future__ import annotations

import base64
import json
import os
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VIEW_SECONDS = 3600
"""How long a person-view link works after it was issued."""


def _derive(material: bytes, salt: bytes, info: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info.encode()).derive(material)


def seal_pairs(key: bytes, request_id: int, pairs: dict[str, str]) -> tuple[bytes, bytes, bytes]:
    """(salt, nonce, ciphertext) of ``pairs`` for request ``request_id``."""
    salt, nonce = os.urandom(32), os.urandom(12)
    aad = f"reidentification:{request_id}".encode()
    body = json.dumps(pairs, separators=(",", ":")).encode()
    return salt, nonce, AESGCM(_derive(key, salt, f"openphm reidentification {request_id}")).encrypt(nonce, body, aad)


def open_pairs(key: bytes, request_id: int, salt: bytes, nonce: bytes, ciphertext: bytes) -> dict[str, str]:
    """The pairs sealed by :func:`seal_pairs` (raises ``InvalidTag`` with another key, request or a changed byte)."""
    aad = f"reidentification:{request_id}".encode()
    plain = AESGCM(_derive(key, salt, f"openphm reidentification {request_id}")).decrypt(nonce, ciphertext, aad)
    pairs: dict[str, str] = json.loads(plain)
    return pairs


def view_token(secret: bytes, user_id: int, pseudonym: str, seconds: int = VIEW_SECONDS) -> str:
    """An opaque, URL-safe token naming ``pseudonym`` for ``user_id`` until ``seconds`` from now."""
    nonce = os.urandom(12)
    body = json.dumps({"p": pseudonym, "u": user_id, "e": int(time.time()) + seconds}).encode()
    sealed = AESGCM(_derive(secret, b"", "openphm person view")).encrypt(nonce, body, None)
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def open_view_token(secret: bytes, user_id: int, token: str) -> str | None:
    """The pseudonym of a token issued to ``user_id`` and not yet expired; None for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        plain = AESGCM(_derive(secret, b"", "openphm person view")).decrypt(raw[:12], raw[12:], None)
    except (ValueError, InvalidTag):
        return None
    body = json.loads(plain)
    if body.get("u") != user_id or int(body.get("e", 0)) < time.time():
        return None
    pseudonym = body.get("p")
    return pseudonym if isinstance(pseudonym, str) else None
