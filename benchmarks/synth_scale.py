"""Scale of ``phm synth``: wall time, CPU time, peak memory and rows for 100,000 and 1,000,000 people.

    python benchmarks/synth_scale.py                      # 100k and 1M
    python benchmarks/synth_scale.py --sizes 100000       # chosen sizes
    python benchmarks/synth_scale.py --ten-million        # adds 10M (about 10 minutes and 40 GB of Parquet)

Each size runs in a child process, so that its peak memory (max RSS) is its own. Files go to a temporary
folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from openphm.synth import generate
began = time.process_time()
result = generate(Path(sys.argv[1]), people=int(sys.argv[2]), seed=1, fmt=sys.argv[3])
print(json.dumps({
    "seconds": result.seconds,
    "cpu_seconds": time.process_time() - began,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rows": sum(result.rows.values()),
    "bytes": sum(p.stat().st_size for p in Path(sys.argv[1]).iterdir()),
}))
"""


def run(people: int, fmt: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="phm-synth-") as folder:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(Path(folder) / "out"), str(people), fmt],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated numbers of people")
    parser.add_argument("--format", default="parquet", choices=("parquet", "csv"))
    parser.add_argument("--ten-million", action="store_true", help="also generate 10,000,000 people")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] + ([10_000_000] if args.ten_million else [])
    print(f"{'people':>12} {'wall s':>8} {'cpu s':>8} {'peak MB':>9} {'rows':>14} {'MB on disk':>11}")
    for people in sizes:
        r = run(people, args.format)
        print(
            f"{people:>12,} {r['seconds']:>8.1f} {r['cpu_seconds']:>8.1f} {r['peak_mb']:>9,.0f} "
            f"{r['rows']:>14,} {r['bytes'] / 1e6:>11,.0f}"
        )


if __name__ == "__main__":
    main()
