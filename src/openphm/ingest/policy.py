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
from pathlib import Path

import yaml

from openphm.content import content_path
from openphm.errors import InputError

SOURCES = ("opt_out_list", "type1", "cleared_list")
"""The three ways a person is removed at ingest, in the order they are attributed."""
REMOVED = {"opt_out_list": "opted_out_list", "type1": "opted_out_type1", "cleared_list": "not_cleared"}
"""Each source's run-log metric: the rows (per table) and people it removed."""
LABELS = {"opted_out_list": "opted out (list)", "opted_out_type1": "opted out (type 1)", "not_cleared": "not cleared"}


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
        data = yaml.safe_load(text)
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
