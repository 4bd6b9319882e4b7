"""FHIR import throughput: resources a second and peak memory of ``phm import fhir`` on a bulk-export NDJSON.

    python benchmarks/import_fhir.py --patients 200000

Writes a bulk-export-shaped folder (``Patient.ndjson``, ``Condition.ndjson``, ``Observation.ndjson``, one
resource a line, references as ``Patient/<id>``) of ten resources a patient: the patient, three SNOMED CT
conditions, a BMI, a blood pressure panel, total and HDL cholesterol in mg/dL, a smoking status and a heart
rate (a LOINC code outside the mapping table, counted as unmapped). Instants carry UTC or +01:00 offsets so
every date goes through the Europe/London conversion. Volume, not realism.

The import runs in a child process so its peak memory is measured apart from the generator's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import tempfile
import time
from pathlib import Path

import orjson

from openphm.importers.fhir import import_fhir

CONDITIONS = ("44054006", "38341003", "195967001", "13645005", "49436004", "73211009")


def _observation(patient: str, n: int, code: str, when: str, **value: object) -> bytes:
    resource_ = {
        "resourceType": "Observation",
        "id": f"{patient}-o{n}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        **value,
    }
    return orjson.dumps(resource_) + b"\n"


def _quantity(value: float, unit: str) -> dict[str, object]:
    return {"valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def generate(folder: Path, patients: int, seed: int = 7) -> int:
    """Write the three NDJSON files; returns the number of resources written."""
    rng = random.Random(seed)
    written = 0
    with (
        (folder / "Patient.ndjson").open("wb") as people,
        (folder / "Condition.ndjson").open("wb") as conditions,
        (folder / "Observation.ndjson").open("wb") as observations,
    ):
        for i in range(patients):
            patient = f"p{i}"
            born = f"{rng.randint(1930, 2010)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            people.write(
                orjson.dumps(
                    {
                        "resourceType": "Patient",
                        "id": patient,
                        "gender": rng.choice(("male", "female")),
                        "birthDate": born,
                    }
                )
                + b"\n"
            )
            for c in range(3):
                onset = f"{rng.randint(2000, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T23:30:00Z"
                conditions.write(
                    orjson.dumps(
                        {
                            "resourceType": "Condition",
                            "id": f"{patient}-c{c}",
                            "code": {"coding": [{"system": "http://snomed.info/sct", "code": rng.choice(CONDITIONS)}]},
                            "subject": {"reference": f"Patient/{patient}"},
                            "onsetDateTime": onset,
                        }
                    )
                    + b"\n"
                )
            when = f"{rng.randint(2015, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T08:15:00+01:00"
            bp = {
                "component": [
                    {
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                        **_quantity(130, "mm[Hg]"),
                    },
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, **_quantity(80, "mm[Hg]")},
                ]
            }
            smoking = {"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "266919005"}]}}
            observations.write(
                _observation(patient, 0, "39156-5", when, **_quantity(round(rng.uniform(18, 40), 1), "kg/m2"))
                + _observation(patient, 1, "85354-9", when, **bp)
                + _observation(patient, 2, "2093-3", when, **_quantity(round(rng.uniform(120, 260), 1), "mg/dL"))
                + _observation(patient, 3, "2085-9", when, **_quantity(round(rng.uniform(30, 80), 1), "mg/dL"))
                + _observation(patient, 4, "72166-2", when, **smoking)
                + _observation(patient, 5, "8867-4", when, **_quantity(72, "/min"))
            )
            written += 10
    return written


Measured = tuple[float, float, dict[str, int], float]
"""Wall seconds, CPU seconds, rows written per table, peak memory in MB."""


def _run(source: Path, out: Path, queue: multiprocessing.Queue[Measured]) -> None:
    started = time.perf_counter()
    result = import_fhir([source], out)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put((seconds, usage.ru_utime + usage.ru_stime, result.written, usage.ru_maxrss / 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "export"
        source.mkdir()
        resources_ = generate(source, args.patients)
        size = sum(p.stat().st_size for p in source.iterdir()) / 1e6
        context = multiprocessing.get_context("spawn")
        queue: multiprocessing.Queue[Measured] = context.Queue()
        child = context.Process(target=_run, args=(source, Path(folder) / "out", queue))
        child.start()
        seconds, cpu, written, peak = queue.get()
        child.join()
        print(f"{resources_:,} resources ({args.patients:,} patients, {size:,.0f} MB of NDJSON) in {seconds:.1f} s")
        print(f"{resources_ / seconds:,.0f} resources a second; peak memory of the import process {peak:,.0f} MB")
        print(f"CPU time {cpu:.1f} s: the process had {cpu / seconds:.0%} of one core (a shared machine gives less)")
        for table, n in written.items():
            print(f"  {table}: {n:,} rows ({n / seconds:,.0f} a second)")


if __name__ == "__main__":
    main()
