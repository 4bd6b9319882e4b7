"""The engine layer: open a store, hand out narwhals LazyFrames, write results back.

``duckdb`` (default, one ``.duckdb`` file), ``polars`` and ``spark`` (a folder of Parquet files).
"""

from openphm.engine.base import ROW, Engine, count, distinct
from openphm.engine.store import ENGINES, building, open_store

__all__ = ["ENGINES", "ROW", "Engine", "building", "count", "distinct", "open_store"]
