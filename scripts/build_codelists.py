"""Build the package's code lists (``src/openphm/content/codelists``) from public sources.

Maintainer tool, run by hand when a source list is refreshed; the package never reads the sources at run
time. ``scripts/codelists.yaml`` says, for every definition, which published lists (or which classification
codes, for lists the project derives itself) make up each code system, with any term filter. Provenance of
the published lists (repository, commit, OpenCodelists id and version) is read from the collection's
SOURCE.md, so every manifest cites where each code came from.

    python scripts/build_codelists.py ../shared/codelists ../shared/validation/efi/efi_codelists_gm-sde.csv
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from openphm.codes.systems import SYSTEMS  # noqa: E402

SPEC = ROOT / "scripts" / "codelists.yaml"
OUT = ROOT / "src" / "openphm" / "content" / "codelists"
USED: set[str] = set()
PCD = "snomed/nhsd-primary-care-domain-refsets-{}.csv"
LICENCES = {
    "opensafely/": "MIT (repository); list from OpenCodelists",
    "REDUCE-HF/": "MIT (repository); list from OpenCodelists",
    "spiros/chronological-map-phenotypes": "MIT (repository); CALIBER phenotype",
}
CONTENT = {
    "snomed": "SNOMED CT, UK affiliate licence (free for use in the UK)",
    "dmd": "dm+d, UK affiliate licence / OGL",
    "icd10": "ICD-10, WHO classification",
    "opcs4": "OPCS-4, NHS England classification (OGL)",
    "bnf": "BNF classification codes (NHSBSA)",
}


@dataclass
class Provenance:
    repository: str
    commit: str
    path: str
    opencodelists: str


@dataclass
class Built:
    codes: dict[str, str] = field(default_factory=dict)
    sources: list[dict[str, object]] = field(default_factory=list)


def read_provenance(source_md: Path) -> dict[str, Provenance]:
    """The files table of the collection's SOURCE.md, by file name."""
    out = {}
    for line in source_md.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) < 7 or not cells[0].startswith("`"):
            continue
        repo = re.search(r"\[([^\]]+)\]", cells[3])
        out[cells[0].strip("`")] = Provenance(
            repository=repo.group(1) if repo else cells[3],
            commit=cells[4].strip("`"),
            path=cells[5].strip("`"),
            opencodelists="" if cells[6] in ("—", "") else cells[6],
        )
    return out


def rows_of(path: Path) -> Iterator[dict[str, str]]:
    """(code, term) rows of any of the collection's file formats, with the file's other columns."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        code_col = next(c for c in ("snomed_id", "ICD10code", "dmd_id", "code", "id") if c in fields)
        if code_col == "dmd_id" and "code" in fields:
            code_col = "code"
        term_col = next((c for c in ("term", "ICD10codeDescr", "dmd_name", "description", "name") if c in fields), None)
        for row in reader:
            yield {**row, "_code": (row.get(code_col) or "").strip(), "_term": (row.get(term_col) or "").strip()}


def efi_rows(path: Path, deficit: str) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["deficit"] == deficit and row["terminology"].startswith("SNOMED"):
                yield {**row, "_code": row["code"].strip(), "_term": row["description"].strip()}


def _filtered(rows: Iterator[dict[str, str]], entry: dict) -> Iterator[tuple[str, str]]:
    include = re.compile(entry["include"], re.I) if "include" in entry else None
    exclude = re.compile(entry["exclude"], re.I) if "exclude" in entry else None
    where = entry.get("where") or {}
    drop = set(entry.get("drop") or [])
    for row in rows:
        if include and not include.search(row["_term"]):
            continue
        if exclude and exclude.search(row["_term"]):
            continue
        if any(str(row.get(k, "")).strip() not in [str(v) for v in vs] for k, vs in where.items()):
            continue
        if row["_code"] in drop:
            continue
        yield row["_code"], row["_term"]


def _span(span: str) -> list[str]:
    """'O00-O08' -> O00, O01, ... O08: every three-character category of an ICD-10 block."""
    first, last = span.split("-")
    return [f"{first[0]}{n:02d}" for n in range(int(first[1:]), int(last[1:]) + 1)]


def build_system(system: str, entries: list, shared: Path, efi: Path, provenance: dict[str, Provenance]) -> Built:
    cs = SYSTEMS[system]
    built = Built()
    for raw in entries:
        entry = {"file": raw} if isinstance(raw, str) else dict(raw)
        if "pcd" in entry:
            entry["file"] = PCD.format(entry.pop("pcd"))
        if "file" in entry:
            pairs = list(_filtered(rows_of(shared / entry["file"]), entry))
            prov = provenance[entry["file"]]
            USED.add(entry["file"])
            source: dict[str, object] = {
                "name": Path(entry["file"]).stem,
                "repository": prov.repository,
                "commit": prov.commit,
                "path": prov.path,
                "licence": next((v for k, v in LICENCES.items() if prov.repository.startswith(k)), "see LICENCES.md"),
            }
            if prov.opencodelists:
                source["opencodelists"] = prov.opencodelists
        elif "efi" in entry:
            pairs = list(_filtered(efi_rows(efi, entry["efi"]), entry))
            source = {
                "name": f"eFI deficit '{entry['efi']}' (Clegg et al. 2016), SNOMED CT mapping",
                "repository": "UoM-Data-Science-Platforms/gm-sde",
                "commit": "6cf10afc0d745a557b2e8dd7e0b1d4b61ea40e42",
                "path": f"shared/clinical-code-sets/*/efi-{entry['efi']}/1/efi-{entry['efi']}.snomed.txt",
                "licence": "no licence file; published eFI code list reproduced, see LICENCES.md",
            }
        else:
            pairs = [(str(code), str(term)) for code, term in (entry.get("codes") or {}).items()]
            pairs += [(code, term) for span, term in (entry.get("ranges") or {}).items() for code in _span(span)]
            source = {"name": entry["source"], "licence": entry.get("licence", CONTENT[system])}
            if "citation" in entry:
                source["citation"] = entry["citation"]
        for code, term in pairs:
            normal = cs.normalise_code(code)
            if not re.fullmatch(cs.pattern, normal):
                continue  # e.g. the 'NA' rows some mapped lists carry
            built.codes.setdefault(normal, term)
        for key in ("include", "exclude", "where", "drop"):
            if key in entry:
                source[key] = entry[key]
        source["codes"] = len(pairs)
        built.sources.append(source)
    return built


def write_csv(path: Path, codes: dict[str, str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["code", "term"])
        for code in sorted(codes):
            writer.writerow([code, codes[code]])


def build(shared: Path, efi: Path) -> list[str]:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    provenance = read_provenance(shared / "SOURCE.md")
    version = spec["version"]
    if OUT.exists():
        shutil.rmtree(OUT)
    definitions = dict(spec["definitions"])
    for deficit, name in spec["efi"].items():
        definitions["efi_" + deficit.replace("-", "_")] = {
            "name": f"eFI deficit: {name}",
            "kind": "condition",
            "uses": ["efi"],
            "files": {"snomed": [{"efi": deficit}]},
            "notes": "One of the 35 coded deficits of the electronic Frailty Index (Clegg et al. 2016), "
            "as a SNOMED CT list mapped from the published Read code list. The eFI is defined on primary "
            "care records, so there is no ICD-10 list.",
        }
    report = []
    for ident, d in definitions.items():
        folder = OUT / ident
        folder.mkdir(parents=True)
        manifest: dict[str, object] = {"id": ident, "name": d["name"], "version": version, "kind": d["kind"]}
        if "b2h" in d:
            manifest["b2h"] = {"segment": d["b2h"][0], "subsegment": d["b2h"][1]}
        manifest["uses"] = d.get("uses", [])
        for key in ("lookback_days", "unit", "plausible", "completeness"):
            if key in d:
                manifest[key] = d[key]
        for part, suffix in (("files", ""), ("resolved", "_resolved")):
            entries = []
            for system, sources in (d.get(part) or {}).items():
                built = build_system(system, sources, shared, efi, provenance)
                if not built.codes:
                    raise SystemExit(f"{ident}: {part} {system} is empty")
                name = f"{system}{suffix}.csv"
                write_csv(folder / name, built.codes)
                entries.append({"system": system, "file": name, "codes": len(built.codes), "sources": built.sources})
            if entries:
                manifest[part] = entries
        if d.get("notes"):
            manifest["notes"] = " ".join(str(d["notes"]).split())
        (folder / "manifest.yaml").write_text(
            yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8"
        )
        counts = ", ".join(f"{e['system']} {e['codes']}" for e in manifest.get("files", []))  # type: ignore[union-attr]
        report.append(f"{ident}: {counts}")
    write_source_note(provenance, USED)
    return report


SOURCE_NOTE = """# Code lists: sources and licences

Built by `scripts/build_codelists.py` from the recipe in `scripts/codelists.yaml`; do not edit by hand.
Each folder holds one definition: `manifest.yaml` (id, name, kind, Bridges to Health segment and
subsegment, uses, lookback, and for every list its sources with repository, commit, path, OpenCodelists id
and version, and any term filter) and one `code,term` CSV per code system, plus `<system>_resolved.csv`
where the condition can resolve. The per-definition code counts are in `docs/conditions.md`.

## Where the codes come from

- **Published lists** copied from public GitHub repositories (OpenSAFELY projects, REDUCE-HF, the CALIBER
  chronological map): NHS Digital Primary Care Domain reference set clusters as used by QOF, NHS drug
  reference sets, PRIMIS clusters, and other OpenCodelists lists. The repositories are MIT-licensed; the
  content is SNOMED CT and dm+d (UK SNOMED CT affiliate licence, free for use in the UK), NHS Digital
  reference data (Open Government Licence v3.0), ICD-10 (WHO classification) and OPCS-4 (NHS England).
- **eFI deficits**: the 35 coded deficits of the electronic Frailty Index, Clegg A et al., Age and Ageing
  2016;45(3):353-360, whose Read code list is published with the paper. The SNOMED CT lists are the
  GM-SDE team's mapping of that Read list through NHS Digital's Read-to-SNOMED maps
  (UoM-Data-Science-Platforms/gm-sde, commit 6cf10afc). That repository has no licence file: only the
  concept ids and SNOMED CT terms (facts of the published eFI definition) are shipped, no text of the
  repository. Reuse terms have not been confirmed with the authors; replace these lists with a licensed
  eFI SNOMED CT list (e.g. an OpenCodelists eFI list) when one is available.
- **Published lists quoted in the recipe**: where a suitable list is public but not in the collection the
  build reads, its concept ids and terms are written into `scripts/codelists.yaml` as `codes:` entries, each
  with a `citation` naming the OpenCodelists list and version and the repository, commit and path of the
  copy that was read (MIT-licensed OpenSAFELY repositories; see the table at the end). Used for
  bronchiectasis, chronic pain, pulmonary heart disease, physical disability, erectile dysfunction,
  irritable bowel syndrome and anxiety.
- **Lists chosen by openphm**: where no list was available, codes were taken from the classification itself
  (ICD-10 categories, OPCS-4 X40, BNF sections, a few SNOMED CT concepts); each such source says so in its
  manifest ("chosen by openphm"). Every chosen SNOMED CT id was checked, with its term, against public
  sources (OpenCodelists exports, FHIR value sets, SNOMED CT browsers), named in the entry's `citation`;
  ICD-10 titles were checked against the WHO ICD-10 2019 tabular list and OPCS-4 titles against the UK Renal
  Registry dialysis list. (An earlier version listed 160303001 as family history of ischaemic heart disease;
  that concept is family history of diabetes mellitus and was removed.)

## Not shipped

- `annalhead/CPRD_multimorbidity_codelists` lists (CC BY-NC-SA 4.0: non-commercial, share-alike) and the
  GM-SDE condition lists other than the eFI deficits (no licence) are not used; at most they pointed to
  candidate concept ids, which were shipped only when found with the same term in a licensed public list.
  Definitions still marked `completeness: partial` say why in their manifest notes (no verified list, or a
  national rule that is not public).

## Lists used
"""

QUOTED_NOTE = Path(__file__).with_name("codelists_quoted.md")
"""The public lists quoted by id and term in the recipe, with the copy that was read (appended to SOURCE.md)."""


def write_source_note(provenance: dict[str, Provenance], used: set[str]) -> None:
    lines = [SOURCE_NOTE, "| file | repository | commit | path | OpenCodelists id/version |", "|---|---|---|---|---|"]
    for name in sorted(used):
        p = provenance[name]
        lines.append(f"| `{name}` | {p.repository} | `{p.commit[:12]}` | `{p.path}` | {p.opencodelists or '-'} |")
    lines.append("\n" + QUOTED_NOTE.read_text(encoding="utf-8"))
    (OUT / "SOURCE.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", type=Path, help="the code list collection (folder with SOURCE.md)")
    parser.add_argument("efi", type=Path, help="the eFI deficit code list CSV")
    args = parser.parse_args()
    for line in build(args.shared, args.efi):
        print(line)


if __name__ == "__main__":
    main()
