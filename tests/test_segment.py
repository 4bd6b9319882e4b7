"""The segment stage on crafted people: each rule, each precedence pair, need tiers, rules files, nulls."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import narwhals as nw
import polars as pl
import pyarrow as pa
import pytest
import yaml

from openphm.api import table_counts
from openphm.codes import load_definitions
from openphm.content import content_path
from openphm.options import RunOptions
from openphm.segments.assign import catalogue, wide_frame
from openphm.segments.rules import SegmentRulesError, load_rules, parse
from tests.support.segments import AS_OF, CKD4, LAST, PEOPLE, Crafted, build
from tests.support.sources import read_table, store_path

SEGMENTS = {
    "healthy",
    "maternal_and_infant",
    "acutely_ill",
    "long_term_conditions",
    "disability",
    "incurable_cancer",
    "organ_failure",
    "frailty_and_dementia",
}

# name -> (segment, need tier, flags that must be set) at the last as_of
EXPECTED: dict[str, tuple[str, int, set[str]]] = {
    "dementia_diabetes": ("frailty_and_dementia", 11, {"dementia", "diabetes"}),
    "metastatic_heart_failure": ("incurable_cancer", 9, {"incurable_cancer", "cancer", "heart_failure"}),
    "ld_asthma": ("disability", 4, {"learning_disability", "asthma"}),
    "nothing": ("healthy", 1, set()),
    "ckd4_four_admissions": (
        "organ_failure",
        9,
        {"end_stage_renal_failure", "chronic_kidney_disease"},
    ),
    "infant": ("maternal_and_infant", 2, {"infant"}),
    "ae_only": ("healthy", 3, set()),  # an A&E attendance alone is not a current serious episode
    "emergency_90_days_ago": ("acutely_ill", 1, {"acute_episode"}),
    "emergency_91_days_ago": ("healthy", 1, set()),
    "ckd4_three_admissions": ("long_term_conditions", 9, {"chronic_kidney_disease"}),
    "ckd5_egfr": ("organ_failure", 9, {"end_stage_renal_failure"}),
    "ckd5_single_egfr": ("healthy", 1, set()),
    "pregnant": ("maternal_and_infant", 6, {"maternal"}),
    "pregnant_asthma": ("long_term_conditions", 7, {"maternal", "asthma"}),
    "pregnant_at_41": ("maternal_and_infant", 7, {"maternal"}),
    "pregnant_long_ago": ("healthy", 1, set()),
    "pregnant_at_13": ("maternal_and_infant", 7, {"maternal"}),
    "pregnant_at_12": ("healthy", 1, set()),
    "pregnant_at_50": ("maternal_and_infant", 7, {"maternal"}),
    "pregnant_at_51": ("healthy", 1, set()),
    "pregnancy_code_in_a_man": ("healthy", 1, set()),
    "pregnant_then_miscarried": ("healthy", 1, set()),
    "miscarried_then_pregnant": ("maternal_and_infant", 6, {"maternal"}),
    "contraception_failure": ("healthy", 1, set()),
    "high_frailty": ("frailty_and_dementia", 11, {"high_frailty"}),
    "intermediate_frailty": ("frailty_and_dementia", 11, {"intermediate_frailty"}),
    "low_hfrs": ("healthy", 1, set()),
    "frail_hfrs_under_65": ("healthy", 1, set()),
    "palliative_cancer": ("incurable_cancer", 9, {"incurable_cancer", "cancer"}),
    "palliative_only": ("healthy", 1, set()),
    "palliative_heart_failure_old_cancer": ("long_term_conditions", 9, {"cancer", "heart_failure"}),
    "four_ltc": ("long_term_conditions", 10, {"hypertension", "asthma", "epilepsy", "diabetes"}),
    "cms_high": ("long_term_conditions", 10, {"copd", "atrial_fibrillation"}),
    "copd_only": ("long_term_conditions", 9, {"copd"}),
    "copd_mrc5": ("organ_failure", 9, {"copd", "severe_copd"}),
    "copd_oxygen": ("organ_failure", 9, {"copd", "severe_copd"}),
    "copd_oxygen_long_ago": ("long_term_conditions", 9, {"copd"}),  # oxygen counts for 12 months
    "mrc5_without_copd": ("healthy", 1, set()),  # a finding, not a condition
    "smi": ("long_term_conditions", 8, {"serious_mental_illness"}),
    "depression_three_mh": ("long_term_conditions", 8, {"depression"}),
    "depression_two_mh": ("long_term_conditions", 4, {"depression"}),
    "two_ltc": ("long_term_conditions", 5, {"hypertension", "asthma"}),
    "adult_contact": ("healthy", 3, set()),
    "child_contact": ("healthy", 2, set()),
    "efi_high": ("frailty_and_dementia", 11, {"intermediate_frailty"}),  # 9/36: moderate
    "efi_12_of_36": ("frailty_and_dementia", 11, {"intermediate_frailty"}),
    "efi_13_of_36": ("frailty_and_dementia", 11, {"high_frailty"}),  # severe
    "efi_moderate_at_64": ("healthy", 11, set()),
    "coded_moderate_frailty": ("frailty_and_dementia", 11, {"intermediate_frailty"}),
    "coded_severe_frailty": ("frailty_and_dementia", 11, {"high_frailty"}),
    "coded_frailty_long_ago": ("healthy", 1, set()),
    "efi_below": ("healthy", 1, set()),
    "acg": ("healthy", 1, set()),
}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, dict[str, str], Path]:
    tmp = tmp_path_factory.mktemp("crafted")
    store = store_path(tmp, "duckdb")
    ids = build(tmp / "source", store, "duckdb")
    names = {v: k for k, v in ids.items()}
    frame = read_table(store, "segment").with_columns(pl.col("person_id").replace_strict(names).alias("name"))
    return frame, ids, store


def _row(frame: pl.DataFrame, name: str, as_of: date = LAST) -> dict[str, object]:
    rows = frame.filter(name=name, as_of=as_of).to_dicts()
    assert len(rows) == 1, name
    return rows[0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_rule_and_precedence_pair(crafted: tuple[pl.DataFrame, dict[str, str], Path], name: str) -> None:
    frame, _, _ = crafted
    segment, tier, flags = EXPECTED[name]
    row = _row(frame, name)
    assert row["segment"] == segment
    assert row["need_tier"] == tier
    flag_columns = [c for c in frame.columns if frame.schema[c] == pl.Boolean]
    assert {c for c in flag_columns if row[c]} == flags
    assert all(row[c] is not None for c in flag_columns)  # every input was present: no unknowns
    band = "low" if tier <= 4 else "moderate" if tier <= 9 else "high"
    assert row["need_band"] == band


def test_condition_count_cms_and_acg_are_carried(crafted: tuple[pl.DataFrame, dict[str, str], Path]) -> None:
    frame, _, _ = crafted
    assert _row(frame, "four_ltc")["condition_count"] == 4
    assert _row(frame, "metastatic_heart_failure")["condition_count"] == 2  # cancer and heart failure
    assert _row(frame, "cms_high")["cms"] == pytest.approx(2.8)
    assert _row(frame, "acg")["acg_png"] == 7
    assert _row(frame, "nothing")["acg_png"] is None


def test_lookbacks_move_people_between_dates(crafted: tuple[pl.DataFrame, dict[str, str], Path]) -> None:
    frame, _, _ = crafted
    # Pregnancy coded 2023-06-01 counts for 12 months: maternal on 2024-03-31, healthy a year later.
    assert _row(frame, "pregnant_long_ago", AS_OF[1])["segment"] == "maternal_and_infant"
    assert _row(frame, "pregnant_long_ago", AS_OF[2])["segment"] == "healthy"
    # Born 2024-09-01: not in the population on 2024-03-31.
    assert frame.filter(name="infant", as_of=AS_OF[1]).height == 0
    # Home oxygen coded 2023-06-01 makes COPD severe for 12 months: organ failure on 2024-03-31, not after.
    assert _row(frame, "copd_oxygen_long_ago", AS_OF[1])["segment"] == "organ_failure"
    assert _row(frame, "copd_oxygen_long_ago", AS_OF[2])["segment"] == "long_term_conditions"


def test_every_person_has_exactly_one_segment_per_as_of(crafted: tuple[pl.DataFrame, dict[str, str], Path]) -> None:
    frame, _, store = crafted
    population = read_table(store, "population").filter("in_population")
    assert frame.height == population.height
    assert frame.select("person_id", "as_of").is_unique().all()
    assert set(frame["segment"]) <= SEGMENTS
    assert frame["need_tier"].is_between(1, 11).all()
    assert frame.join(population, on=["person_id", "as_of"], how="anti").height == 0


def test_need_tiers_cover_every_tier(crafted: tuple[pl.DataFrame, dict[str, str], Path]) -> None:
    frame, _, _ = crafted
    assert set(frame.filter(as_of=LAST)["need_tier"]) == set(range(1, 12))


def test_subsegment_columns_come_from_manifests_and_rules(crafted: tuple[pl.DataFrame, dict[str, str], Path]) -> None:
    frame, _, _ = crafted
    named = {d.subsegment for d in load_definitions().values() if d.subsegment}
    flags = {c for c in frame.columns if frame.schema[c] == pl.Boolean}
    assert named <= flags
    assert flags - named == {"intermediate_frailty", "high_frailty", "infant", "acute_episode"}
    assert len(named | flags) >= 41  # section 1: 28 + 3 + 3 + 6 + 1, and maternal, infant, acute episode


def test_absent_inputs_make_their_rules_unknown_not_false() -> None:
    """Without the risk and activity tables, the flags and scores that need them are null."""
    rules = load_rules()
    subsegments = catalogue(rules, list(load_definitions().values()))

    def frame(data: pa.Table) -> nw.LazyFrame:
        return nw.from_native(pl.from_arrow(data).lazy())  # type: ignore[arg-type]

    population = frame(
        pa.table(
            {
                "person_id": ["old", "young"],
                "as_of": pa.array([LAST, LAST], pa.date32()),
                "age": [80, 30],
                "in_population": [True, True],
            }
        )
    )
    register = frame(
        pa.table(
            {
                "person_id": pa.array([], pa.string()),
                "as_of": pa.array([], pa.date32()),
                "definition": pa.array([], pa.string()),
                "first_date": pa.array([], pa.date32()),
                "last_date": pa.array([], pa.date32()),
                "active": pa.array([], pa.bool_()),
            }
        )
    )
    measure = frame(
        pa.table(
            {
                "person_id": ["old", "young"],
                "as_of": pa.array([LAST, LAST], pa.date32()),
                "ckd_stage": pa.array([None, None], pa.int64()),
            }
        )
    )
    tables = {"population": population, "register": register, "measure": measure, "risk": None, "activity": None}
    wide, env = wide_frame(tables, rules, subsegments, set(load_definitions()), (LAST,), frame)
    rows = {r["person_id"]: r for r in wide.collect().rows(named=True)}
    assert rows["old"]["intermediate_frailty"] is None and rows["old"]["high_frailty"] is None
    assert rows["young"]["high_frailty"] is False  # under 65: known not frail whatever the HFRS
    assert rows["old"]["acute_episode"] is None
    assert rows["old"]["end_stage_renal_failure"] is False  # no code, no eGFR: the admissions arm cannot set it
    assert rows["old"]["segment"] == "healthy" and rows["old"]["need_tier"] == 1
    assert {"risk.hfrs", "risk.efi", "risk.cms", "activity.emergency_admissions"} <= env.missing


def _rules_document() -> dict:
    return yaml.safe_load(content_path("segments", "rules.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["precedence"].append("unknown_segment"), "fallback"),
        (lambda d: d.pop("need_bands"), "need_bands"),
        (lambda d: d["need_tiers"][0]["when"]["any"][1].update(column="riks.efi"), "need_tiers[0].when.any[1].column"),
        (lambda d: d["need_tiers"][3].update(tier="eight"), "need_tiers[3].tier"),
        (lambda d: d["subsegments"]["infant"]["also"][0].update(below="one"), "subsegments.infant.also[0].below"),
        (lambda d: d["subsegments"]["infant"].update(segment="nowhere"), "subsegments.infant.segment"),
        (lambda d: d["subsegments"]["high_frailty"]["also"][0].update(flag="x"), "subsegments.high_frailty.also[0]"),
        (lambda d: d["need_tiers"][1].update(colour="red"), "need_tiers[1].colour"),
        (lambda d: d["need_bands"].update(high=[9, 11]), "need_bands"),
    ],
)
def test_a_malformed_rules_file_is_one_line_naming_the_field(change, field: str) -> None:
    document = _rules_document()
    change(document)
    with pytest.raises(SegmentRulesError) as raised:
        parse(document, "mine.yaml")
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"segment rules mine.yaml: field '{field}")


def test_unreadable_rules_files(tmp_path: Path) -> None:
    with pytest.raises(SegmentRulesError, match="cannot read"):
        load_rules(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("precedence: [a, b\n", encoding="utf-8")
    with pytest.raises(SegmentRulesError, match="not valid YAML"):
        load_rules(bad)


def test_a_users_rules_file_changes_precedence_and_thresholds(tmp_path: Path) -> None:
    document = _rules_document()
    # A local variant: long-term conditions above disability, and infants up to age 2.
    order = document["precedence"]
    order.remove("long_term_conditions")
    order.insert(order.index("disability"), "long_term_conditions")
    document["subsegments"]["infant"]["also"][0]["below"] = 2
    rules = tmp_path / "local.yaml"
    rules.write_text(yaml.safe_dump(document), encoding="utf-8")
    people = {
        "ld_asthma": PEOPLE["ld_asthma"],
        "toddler": Crafted(born="2023-09-01"),
    }
    store = store_path(tmp_path, "polars")
    ids = build(tmp_path / "source", store, "polars", people, options=RunOptions(segment_rules=rules))
    frame = read_table(store, "segment", "polars").filter(as_of=LAST)
    segment_of = dict(zip(frame["person_id"], frame["segment"], strict=True))
    assert segment_of[ids["ld_asthma"]] == "long_term_conditions"
    assert segment_of[ids["toddler"]] == "maternal_and_infant"


def test_a_bad_rules_file_stops_the_run_before_writing(tmp_path: Path) -> None:
    rules = tmp_path / "broken.yaml"
    document = _rules_document()
    document["need_tiers"][0]["tier"] = 0
    rules.write_text(yaml.safe_dump(document), encoding="utf-8")
    store = store_path(tmp_path, "duckdb")
    with pytest.raises(SegmentRulesError, match=r"need_tiers\[0\]\.tier"):
        build(tmp_path / "source", store, "duckdb", {"x": Crafted()}, options=RunOptions(segment_rules=rules))
    assert "population" not in table_counts(store)  # the failed run published nothing


FRAIL_HIGH = ("R29", "W19", "S00", "N39", "F05")  # HFRS 3.6 + 3.2 * 4 = 16.4
UPSTREAM: dict[str, tuple[Crafted, str, int, set[str]]] = {
    "ckd4_four_admissions": (
        Crafted(
            coded={"ckd": "2024-05-01"}, egfrs=CKD4, admissions=tuple((f"2024-0{m}-10", "21", ()) for m in (5, 6, 7, 8))
        ),
        "organ_failure",
        9,
        {"end_stage_renal_failure", "chronic_kidney_disease"},
    ),
    "ckd4_three_admissions": (
        Crafted(
            coded={"ckd": "2024-05-01"}, egfrs=CKD4, admissions=tuple((f"2024-0{m}-10", "21", ()) for m in (5, 6, 7))
        ),
        "long_term_conditions",
        9,
        {"chronic_kidney_disease"},  # admissions more than 90 days ago: no current episode
    ),
    "ae_only": (Crafted(born="1980-01-01", ae=("2024-08-01",)), "healthy", 3, set()),
    # acutely ill: an emergency admission (any emergency method, 2A included; not 2C or elective) in 90 days
    "method_2a_90_days_ago": (
        Crafted(born="1980-01-01", admissions=(("2024-12-31", "2A", ()),)),
        "acutely_ill",
        3,
        {"acute_episode"},
    ),
    "method_2a_91_days_ago": (Crafted(born="1980-01-01", admissions=(("2024-12-30", "2A", ()),)), "healthy", 3, set()),
    "method_2c_recent": (Crafted(born="1980-01-01", admissions=(("2025-02-01", "2C", ()),)), "healthy", 3, set()),
    "method_13_recent": (Crafted(born="1980-01-01", admissions=(("2025-02-01", "13", ()),)), "healthy", 3, set()),
    "elective_only": (Crafted(born="1980-01-01", admissions=(("2024-08-01", "11", ()),)), "healthy", 3, set()),
    "high_frailty": (
        Crafted(born="1950-01-15", admissions=(("2024-08-01", "11", FRAIL_HIGH),)),
        "frailty_and_dementia",
        11,
        {"high_frailty"},
    ),
    "intermediate_frailty": (
        Crafted(born="1950-01-15", admissions=(("2024-08-01", "11", ("R29", "W19")),)),
        "frailty_and_dementia",
        11,
        {"intermediate_frailty"},
    ),
    "frail_hfrs_under_65": (
        Crafted(born="1970-01-15", admissions=(("2024-08-01", "11", FRAIL_HIGH),)),
        "healthy",
        3,
        set(),
    ),
    "depression_three_mh": (
        Crafted(coded={"depression": "2024-05-01"}, mh=("2024-06-01", "2024-07-01", "2024-08-01")),
        "long_term_conditions",
        8,
        {"depression"},
    ),
    "nothing": (Crafted(), "healthy", 1, set()),
}


def test_rules_with_the_real_risk_and_activity_stages(tmp_path: Path) -> None:
    """Through ingest and run with the registered risk and activity stages: codes in, segments out."""
    store = store_path(tmp_path, "duckdb")
    ids = build(tmp_path / "source", store, "duckdb", {n: c[0] for n, c in UPSTREAM.items()}, upstream=True)
    frame = read_table(store, "segment").filter(as_of=LAST)
    flag_columns = [c for c in frame.columns if frame.schema[c] == pl.Boolean]
    for name, (_, segment, tier, flags) in UPSTREAM.items():
        row = frame.filter(person_id=ids[name]).to_dicts()[0]
        assert (row["segment"], row["need_tier"]) == (segment, tier), name
        assert {c for c in flag_columns if row[c]} == flags, name
        assert all(row[c] is not None for c in flag_columns), name
