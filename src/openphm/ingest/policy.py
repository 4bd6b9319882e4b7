"""Purposes of processing as a versioned policy: which opt-outs apply to each, with the sources cited.

The law, not the code, decides whether the national data opt-out, a Type 1 objection in the GP record or
the national check's cleared list applies; so the rule for each purpose is content
(``content/governance/purposes.yaml``) that a deployment's information governance lead can read, cite
and replace, and whose version every output states.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import narwhals as nw
import yaml

from openphm.content import content_path
from openphm.content.validation import parse_yaml
from openphm.engine import Engine
from openphm.errors import InputError, OpenPHMError
from openphm.pipeline.runlog import TABLE as RUN_LOG

SOURCES = ("opt_out_list", "type1", "cleared_list")
"""The three ways a person is removed at ingest, in the order they are attributed."""
REMOVED = {"opt_out_list": "opted_out_list", "type1": "opted_out_type1", "cleared_list": "not_cleared"}
"""Each source's run-log metric: the rows (per table) and people it removed."""
LABELS = {"opted_out_list": "opted out (list)", "opted_out_type1": "opted out (type 1)", "not_cleared": "not cleared"}


class PurposeError(OpenPHMError):
    """An output was asked for a purpose the store's opt-outs do not cover."""


@dataclass(frozen=True)
class Purpose:
    """One purpose: which sources apply, and why (the basis cites the policy's sources)."""

    name: str
    description: str
    opt_out_list: bool
    type1: bool
    cleared_list: bool
    basis: str
    cites: tuple[str, ...]

    def applies(self, source: str) -> bool:
        return bool(getattr(self, source))

    @property
    def applied(self) -> tuple[str, ...]:
        return tuple(s for s in SOURCES if self.applies(s))


@dataclass(frozen=True)
class Policy:
    version: str
    purposes: dict[str, Purpose]
    sources: dict[str, str]

    def purpose(self, name: str) -> Purpose:
        if name not in self.purposes:
            raise InputError(f"--purpose must be one of {', '.join(self.purposes)}")
        return self.purposes[name]

    def covers(self, store_purpose: str, output_purpose: str) -> bool:
        """Whether a store ingested for ``store_purpose`` removed everyone ``output_purpose`` requires."""
        if store_purpose not in self.purposes or output_purpose not in self.purposes:
            return store_purpose == output_purpose
        have = set(self.purposes[store_purpose].applied)
        return set(self.purposes[output_purpose].applied) <= have


def load_policy(path: Path | None = None) -> Policy:
    """The shipped policy, or a deployment's own file (same layout); a bad file is one clear line."""
    where = str(path) if path else "the shipped purposes.yaml"
    try:
        text = path.read_text(encoding="utf-8") if path else content_path("governance", "purposes.yaml").read_text()
        data = parse_yaml(text)
        sources = {str(k): " ".join(str(v).split()) for k, v in data.get("sources", {}).items()}
        purposes = {
            str(name): Purpose(
                str(name),
                str(rule.get("description", "")),
                bool(rule["opt_out_list"]),
                bool(rule["type1"]),
                bool(rule["cleared_list"]),
                " ".join(str(rule.get("basis", "")).split()),
                tuple(str(c) for c in rule.get("cites", ())),
            )
            for name, rule in data["purposes"].items()
        }
        version = str(data["version"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{where}: not a purposes policy ({type(exc).__name__}: needs version and purposes)") from None
    unknown = sorted({c for p in purposes.values() for c in p.cites} - set(sources))
    if unknown:
        raise InputError(f"{where}: cites a source it does not list: {unknown[0]}")
    return Policy(version, purposes, sources)


def type1_codes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The SNOMED CT concepts of a Type 1 dissent and of its withdrawal (shipped lists, SOURCE.md)."""

    def codes(name: str) -> tuple[str, ...]:
        text = content_path("governance", f"{name}.csv").read_text(encoding="utf-8")
        return tuple(row["code"].strip() for row in csv.DictReader(io.StringIO(text)))

    return codes("type1_dissent"), codes("type1_dissent_withdrawn")


@dataclass(frozen=True)
class StoreGovernance:
    """What a store was made under, read back from its last ingest's run log, for every output to state."""

    purpose: str | None
    policy_version: str | None
    applied: frozenset[str]
    checked_on: date | None
    max_age_days: int | None

    def statement(self) -> str:
        """One sentence for a report's methods or an export's log."""
        if self.purpose is None:
            return "The store's purpose was not recorded (ingested before purposes were recorded)."
        applied = [_SOURCE_NAMES[s] for s in SOURCES if s in self.applied]
        removed = "removed before any processing: " + ", ".join(applied) if applied else "no opt-out applied"
        return f"Ingested for {self.purpose} under opt-out policy {self.policy_version or 'not recorded'} ({removed})."

    def warnings(self, today: date) -> list[str]:
        """A national check older than the age set at ingest: stated in every output."""
        if self.checked_on is None or self.max_age_days is None or "cleared_list" not in self.applied:
            return []
        age = (today - self.checked_on).days
        if age <= self.max_age_days:
            return []
        return [
            f"The national data opt-out check is {age} days old (checked on {self.checked_on.isoformat()}; "
            f"older than {self.max_age_days} days): opt-outs set since then are not reflected. Re-check and re-ingest."
        ]


_SOURCE_NAMES = {
    "opt_out_list": "the opt-out list",
    "type1": "Type 1 objections",
    "cleared_list": "people not on the national check's cleared list",
}


def store_governance(engine: Engine) -> StoreGovernance:
    """The purpose, policy version, applied sources and national check of the store's last ingest."""
    if not engine.has_table(RUN_LOG):
        return StoreGovernance(None, None, frozenset(), None, None)
    log = (
        engine.table(RUN_LOG)
        .filter(nw.col("command") == "ingest")
        .select("run_id", "recorded_at", "item", "metric", "value", "detail")
        .collect(backend="polars")
        .to_native()
        .sort("recorded_at")
    )
    if log.is_empty():
        return StoreGovernance(None, None, frozenset(), None, None)
    last = log.filter(log["run_id"] == log["run_id"][-1])

    def detail(metric: str) -> str | None:
        rows = last.filter(last["metric"] == metric)["detail"].to_list()
        return rows[-1] if rows else None

    applies = last.filter(last["metric"] == "applies")
    applied = frozenset(i for i, v in zip(applies["item"], applies["value"], strict=True) if v)
    ages = last.filter(last["metric"] == "max_age_days")["value"].to_list()
    checked = detail("checked_on")
    return StoreGovernance(
        detail("purpose"),
        detail("policy_version"),
        applied,
        date.fromisoformat(checked) if checked else None,
        int(ages[-1]) if ages else None,
    )


def check_output_purpose(governance: StoreGovernance, output_purpose: str, allow_mismatch: bool) -> bool:
    """Refuse an output whose purpose needs opt-outs the store's ingest did not apply; True if overridden.

    A store made for direct care (nothing removed) or risk stratification (Type 1 only) cannot feed a
    planning output: the people the planning policy removes are in it. The reverse is allowed, since a
    store that removed more people than needed breaks no one's objection.
    """
    needed = set(load_policy().purpose(output_purpose).applied)
    if governance.purpose is None or needed <= governance.applied:
        return False
    if allow_mismatch:
        return True
    raise PurposeError(
        f"purpose {output_purpose}: the store was ingested for {governance.purpose}, so the opt-outs "
        f"{output_purpose} requires were not applied; re-ingest with --purpose {output_purpose}, or pass "
        "--allow-purpose-mismatch (logged)"
    )
