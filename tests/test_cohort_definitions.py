"""Malformed cohort definitions are refused when loaded, in one line naming the file, the rule and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from openphm.codes import load_definitions
from openphm.cohorts.definitions import CohortError, check_registers, load_cohorts
from openphm.vocabulary import EMERGENCY_ADMISSION_METHODS

GOOD_RULE = '{name: old, type: demographic, column: age, op: ">=", value: 65}'


def _load(tmp_path: Path, text: str, name: str = "broken.yaml") -> None:
    folder = tmp_path / "defs"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    load_cohorts(folder)


def _cohort(*rules: str, exclude: tuple[str, ...] = ()) -> str:
    text = "name: broken\ntitle: A broken cohort\ninclude:\n" + "".join(f"  - {r}\n" for r in rules)
    if exclude:
        text += "exclude:\n" + "".join(f"  - {r}\n" for r in exclude)
    return text


@pytest.mark.parametrize(
    ("rule", "field", "words"),
    [
        # unknown rule type
        (
            "{name: r1, type: lab_result, column: age, op: '>=', value: 1}",
            "type",
            "'lab_result' is not one of",
        ),
        # unknown column, for each table
        ("{name: r1, type: demographic, column: shoe_size, op: '>=', value: 1}", "column", "unknown column"),
        ("{name: r1, type: score, column: qrisk2, op: '>=', value: 10}", "column", "unknown column 'qrisk2'"),
        ("{name: r1, type: activity, column: ae_visits, op: '>=', value: 5}", "column", "unknown column"),
        ("{name: r1, type: segment, column: tier, op: '==', value: 3}", "column", "unknown column"),
        (
            "{name: r1, type: measure, any: [{column: sbp, op: '>=', value: 140}, {column: pulse, op: '>', value: 1}]}",
            "column",
            "unknown column 'pulse'",
        ),
        # wrong operator
        ("{name: r1, type: demographic, column: age, op: '=>', value: 65}", "op", "'=>' is not one of '=='"),
        ("{name: r1, type: demographic, column: sex, op: '>', value: F}", "op", "needs a numeric column"),
        ("{name: r1, type: demographic, column: age, op: between, value: [65]}", "value", "[lowest, highest]"),
        ("{name: r1, type: demographic, column: age, op: in, value: 65}", "value", "needs a list"),
        ("{name: r1, type: demographic, column: age, op: '>=', value: old}", "value", "is a number"),
        # missing field
        ("{name: r1, type: demographic, op: '>=', value: 65}", "column", "missing"),
        ("{name: r1, type: demographic, column: age, value: 65}", "op", "missing"),
        ("{name: r1, type: demographic, column: age, op: '>='}", "value", "missing"),
        ("{name: r1, column: age, op: '>=', value: 65}", "type", "missing"),
        ("{name: r1, type: register, status: active}", "definition", "missing"),
        # bad window
        (
            "{name: r1, type: activity, column: ae_attendances, window: 36m, op: '>=', value: 5}",
            "window",
            "'36m' is not one of '12m' or '24m'",
        ),
        ("{name: r1, type: activity, column: gp_contacts, window: 24m, op: '>=', value: 5}", "window", "no 24m count"),
        ("{name: r1, type: score, column: efi, window: 12m, op: '>', value: 0.36}", "window", "only activity"),
        (
            "{name: r1, type: register, definition: statins, within_days: 0}",
            "within_days",
            "greater than or equal to 1",
        ),
        ("{name: r1, type: admissions, window_days: -30}", "window_days", "greater than or equal to 1"),
        ("{name: r1, type: admissions, window_days: twelve months}", "window_days", "a valid integer"),
        # other mistakes
        ("{name: r1, type: demographic, column: age, op: '>=', value: 65, colour: red}", "colour", "unknown field"),
        ("{name: r1, type: admissions, method: urgent}", "method", "emergency"),
        ("{name: r1, type: admissions, rule_set: missing.csv}", "rule_set", "no rule set file"),
        ("{name: r1, type: admissions, rule_set: acsc_rules.csv, conditions: [gout]}", "conditions", "'gout'"),
        ("{name: r1, type: admissions, icd10: [J45, '12']}", "icd10", "not an ICD-10 code"),
        (
            "{name: r1, type: register, definition: statins, status: current}",
            "status",
            "'current' is not one of 'active' or 'ever'",
        ),
    ],
)
def test_each_malformed_rule_is_named_by_file_rule_and_field(tmp_path: Path, rule: str, field: str, words: str) -> None:
    with pytest.raises(CohortError) as caught:
        _load(tmp_path, _cohort(GOOD_RULE, exclude=(rule,)))
    message = str(caught.value)
    assert message.startswith("broken.yaml: rule 'r1': field "), message
    assert f"field '{field}'" in message and words in message, message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("title: no name\ninclude: [" + GOOD_RULE + "]\n", "field 'name': missing"),
        ("name: x\ninclude: [" + GOOD_RULE + "]\n", "field 'title': missing"),
        ("name: x\ntitle: no rules\n", "field 'include': missing"),
        ("name: x\ntitle: t\ninclude: [" + GOOD_RULE + ", " + GOOD_RULE + "]\n", "rule 'old': field 'name': two rules"),
        ("name: Not A Name\ntitle: t\ninclude: [" + GOOD_RULE + "]\n", "field 'name': must be a lower_case name"),
        ("name: x\ntitle: t\ninclude: [" + GOOD_RULE + "]\nowner: me\n", "field 'owner': unknown field"),
        ("name: x\ntitle: t\ninclude: [{type: demographic}]\n", "field 'include[0].name': missing"),
        ("name: [unclosed\n", "not valid YAML (line"),
    ],
)
def test_malformed_cohort_files(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(CohortError, match=r"^broken\.yaml: ") as caught:
        _load(tmp_path, text)
    assert words in str(caught.value)


def test_two_files_with_one_cohort_name_are_refused(tmp_path: Path) -> None:
    _load(tmp_path, _cohort(GOOD_RULE), "one.yaml")
    with pytest.raises(CohortError) as caught:
        _load(tmp_path, _cohort(GOOD_RULE), "two.yaml")
    assert str(caught.value) == "two.yaml: field 'name': 'broken' is also the name of another cohort file"


def test_register_rule_names_a_definition_of_the_run(tmp_path: Path) -> None:
    _load(tmp_path, _cohort(GOOD_RULE, exclude=("{name: r1, type: register, definition: [statins, statinz]}",)))
    cohorts = load_cohorts(tmp_path / "defs")
    with pytest.raises(CohortError) as caught:
        check_registers(cohorts, set(load_definitions()))
    assert str(caught.value).startswith("broken.yaml: rule 'r1': field 'definition': no definition 'statinz'")


def test_shipped_cohorts_load_with_their_sources() -> None:
    cohorts = load_cohorts()
    assert set(cohorts) == {
        "acsc_emergency_admissions",
        "frequent_uec_users",
        "older_people_many_waiting_lists",
        "qrisk3_no_statin",
        "raised_bp_no_hypertension",
        "severe_frailty",
    }
    check_registers(cohorts, set(load_definitions()))
    assert all(c.sources and c.title and c.version for c in cohorts.values())
    acsc = cohorts["acsc_emergency_admissions"].rules[0]
    assert acsc.methods == EMERGENCY_ADMISSION_METHODS
    conditions = {r.condition for r in acsc.rule_set}
    assert len(conditions) == 20  # the 19 conditions, with COPD's acute-bronchitis rule kept apart
    assert any("nhp_data" in s for s in cohorts["acsc_emergency_admissions"].sources)
