"""The shipped content covers what the engine needs, and every list says where it came from.

The required ids are those of clinical-reference.md: the Bridges to Health subsegments, the Cambridge
Multimorbidity Score conditions, the QRISK3 inputs and the 35 coded eFI deficits.
"""

from __future__ import annotations

import yaml

from openphm.codes import load_definitions
from openphm.content import content_path

DEFINITIONS = load_definitions()

LONG_TERM_CONDITIONS = {
    "alcohol_dependence", "asthma", "atrial_fibrillation", "bronchiectasis", "cancer", "cerebrovascular_disease",
    "chronic_kidney_disease", "chronic_liver_disease", "chronic_pain", "copd", "coronary_heart_disease",
    "cystic_fibrosis", "depression", "diabetes", "epilepsy", "heart_failure", "hypertension",
    "inflammatory_bowel_disease", "multiple_sclerosis", "osteoarthritis", "osteoporosis", "parkinsons_disease",
    "peripheral_vascular_disease", "pulmonary_heart_disease", "rheumatoid_arthritis", "sarcoidosis",
    "serious_mental_illness", "sickle_cell_disease",
}  # fmt: skip
B2H = {
    "long_term_conditions": LONG_TERM_CONDITIONS,
    "disability": {"autism", "learning_disability", "physical_disability"},
    "frailty_and_dementia": {"dementia"},
    "organ_failure": {
        "end_stage_renal_failure", "severe_interstitial_lung_disease", "liver_failure",
        "neurological_organ_failure", "severe_copd", "severe_heart_failure",
    },
    "incurable_cancer": {"incurable_cancer"},
    "maternal_and_infant": {"pregnancy"},
}  # fmt: skip
CMS = {
    "alcohol_dependence", "depression", "anxiety", "atrial_fibrillation", "cancer", "chronic_kidney_disease",
    "connective_tissue_disorder", "copd", "coronary_heart_disease", "dementia", "diabetes", "epilepsy",
    "hearing_loss", "heart_failure", "irritable_bowel_syndrome", "serious_mental_illness",
    "cerebrovascular_disease", "asthma", "hypertension", "laxatives", "analgesics",
}  # fmt: skip
QRISK3 = {
    "atrial_fibrillation", "atypical_antipsychotics", "corticosteroids", "erectile_dysfunction", "migraine",
    "rheumatoid_arthritis", "chronic_kidney_disease", "serious_mental_illness", "systemic_lupus_erythematosus",
    "hypertension", "antihypertensives", "type_1_diabetes", "type_2_diabetes", "family_history_cvd",
    "coronary_heart_disease", "cerebrovascular_disease", "peripheral_vascular_disease", "statins",
    "bmi", "systolic_bp", "cholesterol_hdl_ratio", "smoking_never", "smoking_ex", "smoking_current",
}  # fmt: skip
EFI_DEFICITS = 35


def test_every_bridges_to_health_subsegment_has_a_definition() -> None:
    for segment, subsegments in B2H.items():
        for ident in subsegments:
            assert ident in DEFINITIONS, ident
            assert DEFINITIONS[ident].segment == segment, ident


def test_score_inputs_are_shipped() -> None:
    assert DEFINITIONS.keys() >= CMS, CMS - DEFINITIONS.keys()
    assert DEFINITIONS.keys() >= QRISK3, QRISK3 - DEFINITIONS.keys()
    assert len([d for d in DEFINITIONS if d.startswith("efi_")]) == EFI_DEFICITS


def test_conditions_carry_primary_care_and_hospital_codes() -> None:
    conditions = [d for d in DEFINITIONS.values() if d.segment]
    for d in conditions:
        assert "icd10" in d.codelists, f"{d.id} has no ICD-10 list"
        assert "snomed" in d.codelists, f"{d.id} has no SNOMED CT list"
    assert "opcs4" in DEFINITIONS["end_stage_renal_failure"].codelists


def test_resolvable_conditions_have_resolved_codes() -> None:
    for ident in ("asthma", "copd", "depression", "diabetes", "epilepsy", "heart_failure", "hypertension",
                  "chronic_kidney_disease", "serious_mental_illness"):  # fmt: skip
        assert "snomed" in DEFINITIONS[ident].resolved, ident


def test_every_list_cites_a_source_and_a_version() -> None:
    root = content_path("codelists")
    for ident in DEFINITIONS:
        manifest = yaml.safe_load(root.joinpath(ident, "manifest.yaml").read_text(encoding="utf-8"))
        assert manifest["version"], ident
        for entry in [*manifest.get("files", []), *manifest.get("resolved", [])]:
            assert entry["sources"], f"{ident}/{entry['file']}"
            for source in entry["sources"]:
                assert source["name"] and source["licence"], f"{ident}/{entry['file']}"
                if "repository" in source:
                    assert len(source["commit"]) == 40, f"{ident}/{entry['file']}"


def test_lists_are_large_enough_to_find_real_patients() -> None:
    # A real GP extract codes these conditions with many concepts; a handful would miss most patients.
    for ident, least in {"diabetes": 50, "hypertension": 50, "asthma": 50, "copd": 30, "cancer": 1000,
                         "dementia": 100, "heart_failure": 30, "learning_disability": 100}.items():  # fmt: skip
        assert len(DEFINITIONS[ident].codelists["snomed"]) >= least, ident
