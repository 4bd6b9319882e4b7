"""How one ``phm serve`` is configured: the store, the app database, the signing secret, the pseudonymisation key
(re-identification for direct care, off without it) and the limits."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from openphm.app.db import connect, default_url
from openphm.app.security import Limits
from openphm.errors import OpenPHMError

if TYPE_CHECKING:
    from openphm.app.oidc import OidcSettings


class AppError(OpenPHMError):
    """A bad option of ``phm serve`` or its companions (store, database, key file)."""


@dataclass(frozen=True)
class AppSettings:
    store: Path
    app_db: str
    key: bytes
    engine: str = "duckdb"
    behind_tls_proxy: bool = False
    allow_purpose_mismatch: bool = False
    """Serve planning aggregates from a store ingested for a purpose that removed fewer opt-outs (audited)."""
    pseudonymisation_key: bytes | None = None
    """The store's pseudonymisation key (``phm serve --key-file``): without it every re-identification route is
    refused as disabled, so a server that only publishes aggregates never holds the means to re-identify."""
    fhir_writeback: bool = False
    """Offer the FHIR Observation bundle of an approved re-identification (``phm serve --fhir-writeback``)."""
    reidentification_days: int = 7
    """How long a re-identification request (and its encrypted list) lives before it is destroyed."""
    limits: Limits = field(default_factory=Limits)
    oidc: OidcSettings | None = None
    """Sign-in with OpenID Connect (``phm serve --oidc-config``); None: local accounts only."""


def app_db_url(store: Path, app_db: str | None) -> str:
    """``--app-db`` as given, else SQLite beside the store."""
    if app_db:
        if not app_db.startswith(("sqlite:", "postgresql")):
            raise AppError(f"--app-db: '{app_db.split(':')[0]}' is not sqlite:/// or postgresql+psycopg://")
        return app_db
    return default_url(store)


def load_secret(path: Path | None, store: Path) -> bytes:
    """The secret that signs CSRF tokens and person-view links: ``--secret-file``, else ``<store>.app-key``
    (created, mode 600, if absent).

    It is not the pseudonymisation key (that is ``--key-file``), and losing it only signs everyone out of their
    forms."""
    path = path or store.with_name(store.name + ".app-key")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    try:
        key = path.read_text().strip().encode()
    except OSError as exc:
        raise AppError(f"--secret-file: cannot read {path} ({exc.strerror})") from None
    if len(key) < 32:
        raise AppError(f"--secret-file: {path} holds fewer than 32 characters")
    return key


def open_db(url: str) -> sessionmaker[Session]:
    """The app database, migrated; an unreachable or malformed URL is one line, not a traceback."""
    try:
        return connect(url)
    except (sa.exc.OperationalError, sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        raise AppError(f"--app-db: cannot open the app database ({reason})") from None
