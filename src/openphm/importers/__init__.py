"""Importers: turn extracts in other shapes (HES/SUS+, ...) into a source folder of the input contract.

They run upstream of ``phm ingest``: each writes contract files and a reconciliation of what did and did not
come across, and the normal ingest then validates, pseudonymises and quarantines the result.
"""
