"""The Spark engine on a cluster of two executors gives the tables DuckDB gives.

``local[2]`` runs Spark's tasks as threads of one JVM: nothing crosses a process boundary, so a broadcast is
a shared object and a shuffle a local file. ``local-cluster[2,1,1024]`` starts a standalone master and two
executor JVMs of one core and 1 GB each, as a real cluster would: a broadcast join ships the small table to
both executors, and a group-by or a window moves rows between them through the shuffle service. Bugs that only
a cluster shows (state kept on the driver, a function that cannot be pickled to an executor, an order that held
only because one process did all the work) fail here.

Spark keeps one session per process, so the ingest and run happen in a child process whose session is the
cluster; the parent compares every table with a DuckDB store of the same input.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.resources import as_file
from pathlib import Path

import pytest

from openphm.content import content_path
from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.stages import STAGES
from tests.support.engines import assert_same_tables, store_tables
from tests.support.sources import EXTRACT, KEY, store_path

CLUSTER = "local-cluster[2,1,1024]"
"""Two executors of one core and 1 GB: the machine's two cores, with the driver beside them."""

CHILD = r"""
import sys
from pathlib import Path

from openphm.engine.spark_engine import spark_session
from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.stages import STAGES

import time
from datetime import date

fixture, store, key, extract = sys.argv[1:5]
spark = spark_session()


def executors() -> int:
    return spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1  # less the driver's own


# The session returns before the executor JVMs have registered with the master (slower on a loaded machine);
# wait for both, so the work is spread over two processes from its first task.
deadline = time.monotonic() + 300
while executors() < 2 and time.monotonic() < deadline:
    time.sleep(0.5)
ingest(Path(fixture), Path(store), key=key.encode(), engine="spark", extract_date=date.fromisoformat(extract))
run(Path(store), stages=STAGES, engine="spark")
print(f"executors={executors()} master={spark.sparkContext.master}")
"""


@pytest.mark.spark
def test_a_two_executor_cluster_gives_duckdb_tables(tmp_path: Path) -> None:
    with as_file(content_path("fixtures", "demo")) as fixture:
        reference = store_path(tmp_path, "duckdb", "reference")
        ingest(Path(fixture), reference, key=KEY, engine="duckdb", extract_date=EXTRACT)
        run(reference, stages=STAGES, engine="duckdb")
        clustered = store_path(tmp_path, "spark", "cluster")
        env = os.environ | {
            "OPENPHM_SPARK_MASTER": CLUSTER,
            "OPENPHM_SPARK_MEMORY": "1g",
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_WORKER_DIR": str(tmp_path / "spark-work"),  # executors' logs, not inside site-packages
        }
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(fixture), str(clustered), KEY.decode(), EXTRACT.isoformat()],
            env=env,
            capture_output=True,
            text=True,
            timeout=2400,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"master={CLUSTER}" in done.stdout
    executors = int(done.stdout.split("executors=")[1].split()[0])
    # Counted after the run: both executors registered (the child waited for them) and were still there.
    assert executors == 2
    assert_same_tables(store_tables(reference, "duckdb"), store_tables(clustered, "spark"))
