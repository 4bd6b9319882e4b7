"""The Spark session for ``phm link --engine spark``: the project's session with Splink's similarity functions.

Splink's Spark backend computes Jaro-Winkler and Damerau-Levenshtein with Scala functions from a jar it
ships; Spark has neither. The session is the one every openphm Spark command uses (the cluster's active
session, or a local one), and the jar is added to it with ``ADD JAR`` so that an already running session
(a notebook's, or a cluster's) gains the functions without a restart.
"""

from __future__ import annotations

from typing import Any

from openphm.engine.spark_engine import spark_session


def session() -> Any:
    """The Spark session, with Splink's jar added (Splink registers its functions from it)."""
    from splink.backends.spark import similarity_jar_location

    spark = spark_session()
    spark.sql(f"ADD JAR '{similarity_jar_location()}'")
    return spark
