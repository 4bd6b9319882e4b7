"""PySpark over a folder of Parquet files, for populations beyond one machine (local mode in tests)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import narwhals as nw
import pyarrow as pa

from openphm.engine.base import ROW, Engine, HashBatch
from openphm.engine.polars_engine import parquet_tables
from openphm.errors import StoreError

# PySpark logs each analysis error it raises, with a traceback, before openphm turns the error into one line
# for the user; those duplicates (and a 'Logging error' when the stream has closed) are kept off the terminal.
for _name in ("DataFrameQueryContextLogger", "SQLQueryContextLogger"):
    logging.getLogger(_name).disabled = True

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def spark_session() -> SparkSession:
    """The active session, or a local one sized for this machine.

    On a cluster (Databricks, or any Spark >= 3.5) the platform's session is already active and is used
    as it is. Locally, ``OPENPHM_SPARK_MASTER``, ``OPENPHM_SPARK_PARTITIONS`` and ``OPENPHM_SPARK_MEMORY`` (the
    driver's memory, default 4g: with Spark's 1g a 100,000-person run failed to broadcast a join) tune it.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise StoreError("the spark engine needs pyspark: pip install 'openphm[spark]'") from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Local workers run this interpreter, so they import the same openphm (the keyed hash lives there).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master(os.environ.get("OPENPHM_SPARK_MASTER", "local[2]"))
        .appName("openphm")
        .config("spark.sql.shuffle.partitions", os.environ.get("OPENPHM_SPARK_PARTITIONS", "4"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", os.environ.get("OPENPHM_SPARK_MEMORY", "4g"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.default.parallelism", os.environ.get("OPENPHM_SPARK_PARTITIONS", "4"))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkEngine(Engine):
    name: ClassVar[str] = "spark"
    store_format: ClassVar[str] = "parquet"

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self.spark = spark_session()
        self._persisted: list[DataFrame] = []

    def _with_row_numbers(self, df: DataFrame) -> nw.LazyFrame:
        """Number rows 1..n in file order, in the JVM.

        A row's number is the rows of the partitions before its own (partitions of one file follow the file)
        plus its position in its partition, which ``monotonically_increasing_id`` holds in its low 33 bits. An
        RDD ``zipWithIndex`` did the same but sent every row through Python: the slowest step of a Spark ingest.
        """
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        tagged = df.withColumn("__part", F.spark_partition_id()).withColumn(
            "__pos", F.monotonically_increasing_id().bitwiseAND(F.lit((1 << 33) - 1))
        )
        sizes = tagged.groupBy("__part").count()
        offsets = sizes.select(
            "__part",
            (F.sum("count").over(Window.orderBy("__part")) - F.col("count")).alias("__offset"),
        )
        numbered = tagged.join(F.broadcast(offsets), on="__part").select(
            (F.col("__offset") + F.col("__pos") + 1).cast("long").alias(ROW), *[F.col(c) for c in df.columns]
        )
        return nw.from_native(numbered)

    def read_csv(self, path: Path) -> nw.LazyFrame:
        # RFC 4180 as the other engines read it: quoted newlines (multiLine), quotes escaped by doubling, and a
        # malformed row an error (FAILFAST) rather than a row of nulls or a silently split one (PERMISSIVE).
        df = self.spark.read.csv(
            str(path),
            header=True,
            inferSchema=False,
            encoding="UTF-8",
            mode="FAILFAST",
            multiLine=True,
            quote='"',
            escape='"',
        )
        df = df.toDF(*[c.lstrip("\ufeff") for c in df.columns])
        return self._with_row_numbers(df)

    def read_parquet(self, path: Path) -> nw.LazyFrame:
        return self._with_row_numbers(self.spark.read.parquet(str(path)))

    def tables(self) -> list[str]:
        return parquet_tables(self.location)

    def table(self, name: str) -> nw.LazyFrame:
        return self.table_of(self.location, name)

    def table_of(self, store: Path, name: str) -> nw.LazyFrame:
        return nw.from_native(self.spark.read.parquet(str(store / name)))

    def write(self, name: str, frame: nw.LazyFrame) -> None:
        staging = self.location / f".writing-{name}"
        frame.to_native().write.mode("overwrite").parquet(str(staging))
        target = self.location / name
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)

    def append(self, name: str, frame: nw.LazyFrame) -> None:
        frame.to_native().write.mode("append").parquet(str(self.location / name))

    def frame(self, data: pa.Table) -> nw.LazyFrame:
        return nw.from_native(self.spark.createDataFrame(data))

    def persist(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        df = frame.to_native().localCheckpoint(eager=True)
        self._persisted.append(df)
        return nw.from_native(df)

    def map_strings(self, frame: nw.LazyFrame, column: str, out: str, fn: HashBatch) -> nw.LazyFrame:
        from pyspark.sql import functions as F
        from pyspark.sql.types import StringType

        udf = F.udf(lambda value: fn([value])[0], StringType(), useArrow=False)
        df = frame.to_native()
        return nw.from_native(df.withColumn(out, udf(F.col(column))))

    def checkpoint(self) -> int:
        return len(self._persisted)

    def release(self, since: int = 0) -> None:
        for df in self._persisted[since:]:
            df.unpersist()
        del self._persisted[since:]

    def close(self) -> None:
        self.release()
        super().close()
