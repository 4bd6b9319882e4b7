"""The tamper-evident audit log: append-only rows, each hash chaining the one before.

``hash = SHA-256(canonical JSON of {id, at, actor, action, detail, prev_hash})`` with sorted keys and no spaces,
and ``prev_hash`` the previous row's hash (64 zeros for the first). Changing a row changes its hash; deleting or
inserting one breaks the next row's ``prev_hash`` or the numbering; the ``audit_head`` row records the last id and
hash, so removing rows from the end shows too. What it cannot stop is someone with write access rewriting the
whole chain and the head: keep copies of the head elsewhere (docs/app.md) for that.

Appends lock the head row first (``UPDATE audit_head``): a row lock on PostgreSQL, the database write lock on
SQLite, so concurrent writers take turns and never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from openphm.app.db import AuditHead, AuditRow, now

GENESIS = "0" * 64

ACTIONS = (
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "user_added",
    "user_disabled",
    "grant_added",
    "person_level_view",
    "person_level_download",
    "purpose_override",
    "oidc_subject_bound",
    "grant_removed",
    "reidentification_requested",
    "reidentification_approved",
    "reidentification_refused",
    "reidentification_download",
    "reidentification_closed",
    "reidentification_expired",
    "reidentification_command",
    "person_view",
)
"""Every action the application records."""


def canonical(row_id: int, at: datetime, actor: str, action: str, detail: str, prev_hash: str) -> bytes:
    """The bytes a row's hash covers."""
    body = {"id": row_id, "at": at.isoformat(), "actor": actor, "action": action, "detail": detail, "prev": prev_hash}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(row_id: int, at: datetime, actor: str, action: str, detail: str, prev_hash: str) -> str:
    return hashlib.sha256(canonical(row_id, at, actor, action, detail, prev_hash)).hexdigest()


def record(db: Session, actor: str, action: str, **detail: object) -> None:
    """Append one event in ``db``'s transaction (committed with it). ``detail`` says what was looked at -
    a cohort, an area, a row count - and never holds a pseudonym."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    text = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
    db.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(last_id=AuditHead.last_id))  # take the lock
    head = db.execute(sa.select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == 1)).one()
    row_id, at = head.last_id + 1, now()
    digest = _digest(row_id, at, actor, action, text, head.last_hash)
    db.add(AuditRow(id=row_id, at=at, actor=actor, action=action, detail=text, prev_hash=head.last_hash, hash=digest))
    db.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(last_id=row_id, last_hash=digest))
    db.flush()


@dataclass(frozen=True)
class Verdict:
    rows: int
    broken_at: int | None  # the first row that does not fit the chain (or the head's id when the end was cut)
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify(factory: sessionmaker[Session], batch: int = 10_000) -> Verdict:
    """Walk the chain in id order and report the first row that does not fit."""
    expected_hash, expected_id, rows = GENESIS, 1, 0
    with factory() as db:
        head = db.execute(sa.select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == 1)).one()
        last = 0
        while True:
            page = db.execute(
                sa.select(AuditRow).where(AuditRow.id > last).order_by(AuditRow.id).limit(batch)
            ).scalars()
            chunk = list(page)
            if not chunk:
                break
            for row in chunk:
                if row.id != expected_id:
                    reason = "a row is missing before it" if row.id > expected_id else "its number repeats or goes back"
                    return Verdict(rows, row.id, reason)
                if row.prev_hash != expected_hash:
                    return Verdict(rows, row.id, "its link does not match the row before (deleted or inserted)")
                if _digest(row.id, row.at, row.actor, row.action, row.detail, row.prev_hash) != row.hash:
                    return Verdict(rows, row.id, "its content does not match its hash (altered)")
                expected_hash, expected_id, rows, last = row.hash, row.id + 1, rows + 1, row.id
        if head.last_id != rows or head.last_hash != expected_hash:
            return Verdict(rows, head.last_id, f"the head names row {head.last_id} but the chain ends at row {rows}")
    return Verdict(rows, None)
