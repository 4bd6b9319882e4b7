"""openphm: an open population health management engine for England's health and care systems.

The pipeline reads the input contract, pseudonymises at the door, and runs stages that meet only through
documented tables. Start with :func:`openphm.api.ingest` and :func:`openphm.api.run`, or the ``phm`` command.
"""

__version__ = "0.1.0"
