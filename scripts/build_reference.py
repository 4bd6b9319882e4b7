"""Rebuild the shipped IMD 2019 reference table from the official IoD2019 File 1.

Maintenance script, not used at run time: ``python scripts/build_reference.py IMD_FILE_1.csv.gz``.
Writes ``src/openphm/content/reference/lsoa_imd2019.csv.gz`` with the columns of the contract's ``lsoa``
table plus ``imd_rank`` (1 = most deprived of 32,844).
"""

from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/openphm/content/reference/lsoa_imd2019.csv.gz"


def main(source: Path) -> None:
    with gzip.open(source, "rt", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with gzip.GzipFile(OUT, "wb", mtime=0) as raw, open_text(raw) as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["lsoa_code", "imd_decile", "imd_rank", "la_code", "la_name"])
        for row in rows:
            writer.writerow(
                [
                    row["LSOA code (2011)"],
                    row["Index of Multiple Deprivation (IMD) Decile"],
                    row["Index of Multiple Deprivation (IMD) Rank"].replace(",", ""),
                    row["Local Authority District code (2019)"],
                    row["Local Authority District name (2019)"],
                ]
            )
    print(f"{len(rows)} LSOAs written to {OUT}")


def open_text(raw: gzip.GzipFile):
    import io

    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
