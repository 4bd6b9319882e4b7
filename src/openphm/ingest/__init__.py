"""Ingest: validate, quarantine, pseudonymise, apply the opt-out, reconcile, publish atomically."""

from openphm.ingest.load import PURPOSES, IngestResult, ingest
from openphm.ingest.pseudonymise import load_key

__all__ = ["PURPOSES", "IngestResult", "ingest", "load_key"]
