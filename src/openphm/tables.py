"""The tables the pipeline's stages write: every column, its type and its meaning, declared once.

A stage names its tables here in its ``outputs``; the runner checks each table it writes against the
declaration (:mod:`openphm.pipeline.schema`), ``docs/tables.md`` is generated from it, and the modules that
read another stage's table (cohort and segment rules) take its columns from it. A new column is declared here
beside the code that computes it; nothing else needs an edit.
"""

from __future__ import annotations

import narwhals as nw
import pyarrow as pa

from openphm.pipeline.schema import Column, Table, columns
from openphm.quality import schema as quality

STR, INT, FLOAT, BOOL, DATE = nw.String, nw.Int64, nw.Float64, nw.Boolean, nw.Date

PERSON_KEY = columns(
    ("person_id", STR, "the person's keyed pseudonym (never an NHS number)"),
    ("as_of", DATE, "the snapshot date the row describes the person at"),
)
AREA = columns(
    ("level", STR, "geography level: national, region, icb, sub_icb, pcn or practice"),
    ("area_code", STR, "the area's code at that level (E92000001, England, nationally)"),
    ("area_name", STR, "the area's name where the reference data has one"),
)

# -- population and registers -------------------------------------------------------------------------------
POPULATION = Table(
    "population",
    "person x as_of (born by as_of)",
    (
        *PERSON_KEY,
        *columns(
            ("age", INT, "whole years completed at as_of"),
            ("age_band", STR, "five-year band of the European Standard Population 2013: 00-04 ... 90-94, 95+"),
            ("sex", STR, "F, M or U (unknown), from person"),
            ("ethnicity", STR, "NHS ethnic category (one letter), from person"),
            ("ethnic_group", STR, "the five 2021 Census groups (White, Mixed, Asian, Black, Other) or Not stated"),
            ("imd_decile", INT, "national IMD 2019 decile of the LSOA of residence, 1 = most deprived"),
            ("imd_quintile", INT, "national IMD 2019 quintile, 1 = most deprived"),
            ("lsoa_code", STR, "LSOA 2011 of residence"),
            ("practice_code", STR, "registered GP practice (ODS code)"),
            ("pcn_code", STR, "primary care network of the practice"),
            ("sub_icb_code", STR, "sub-ICB location of the practice"),
            ("icb_code", STR, "integrated care board of the practice"),
            ("region_code", STR, "NHS England region of the practice"),
            ("alive", BOOL, "not dead by as_of"),
            ("registered", BOOL, "registration with the practice covers as_of"),
            ("in_population", BOOL, "alive and registered: counted in every per-as_of figure"),
        ),
    ),
    "Who is in the population at each as_of date, with the demographics every later stage counts by "
    "([architecture](architecture.md#registers-and-measures)).",
)

REGISTER = Table(
    "register",
    "person x definition x as_of (coded by then)",
    (
        *PERSON_KEY,
        *columns(
            ("definition", STR, "condition, medicine or procedure definition id (a folder of content/codelists)"),
            ("first_date", DATE, "earliest matching code on or before as_of"),
            ("last_date", DATE, "latest matching code on or before as_of"),
            ("last_resolved_date", DATE, "latest resolved code on or before as_of, where the definition has one"),
            ("active", BOOL, "on the register at as_of: coded within the lookback and not resolved since"),
            ("from_gp", BOOL, "a primary care event matched"),
            ("from_medication", BOOL, "a primary care medication issue matched"),
            ("from_hospital", BOOL, "an admitted patient diagnosis or procedure matched"),
            ("from_ae", BOOL, "an A&E diagnosis matched"),
        ),
    ),
    "Condition, medicine and procedure registers from the code lists ([conditions](conditions.md)).",
)


def _reading(name: str, meaning: str) -> tuple[Column, ...]:
    return columns(
        (name, FLOAT, f"latest {meaning} on or before as_of"), (f"{name}_date", DATE, f"date of that {meaning}")
    )


MEASURE = Table(
    "measure",
    "person x as_of",
    (
        *PERSON_KEY,
        *_reading("bmi", "body mass index (kg/m2)"),
        *_reading("cholesterol_ratio", "total/HDL cholesterol ratio (recorded, or total over HDL)"),
        *_reading("dbp", "diastolic blood pressure (mmHg)"),
        *_reading("dbp_previous", "but one diastolic blood pressure (mmHg)"),
        *_reading("egfr", "eGFR (mL/min/1.73m2)"),
        *_reading("egfr_previous", "but one eGFR (mL/min/1.73m2)"),
        *_reading("hba1c", "HbA1c (mmol/mol)"),
        *_reading("hdl_cholesterol", "HDL cholesterol (mmol/L)"),
        *_reading("sbp", "systolic blood pressure (mmHg)"),
        *_reading("sbp_previous", "but one systolic blood pressure (mmHg)"),
        *columns(("sbp_sd5", FLOAT, "standard deviation of the systolic readings of the last five days with one")),
        *_reading("total_cholesterol", "total cholesterol (mmol/L)"),
        *columns(
            (
                "ckd_stage",
                INT,
                "CKD stage 1-5 implied by eGFR persistently in its range for 90 days (null without one)",
            ),
            ("smoking_category", INT, "latest smoking status as QRISK3's smoke_cat: 0 never, 1 ex, 2-4 light-heavy"),
            ("smoking_date", DATE, "date of that smoking status"),
        ),
    ),
    "The latest plausible readings: implausible values are dropped and counted in the run log; a column is null "
    "when nothing was recorded or `gp_event` was not supplied.",
)

# -- activity -----------------------------------------------------------------------------------------------
ACTIVITY_COUNTS = columns(
    ("gp_contacts", INT, "days with a primary care coded event (a proxy: the contract has no appointments)"),
    ("ae_attendances", INT, "A&E attendances"),
    ("emergency_admissions", INT, "hospital spells (stays) whose first episode has an emergency admission method"),
    ("elective_admissions", INT, "hospital spells whose first episode has an elective admission method (11-13)"),
    ("other_admissions", INT, "hospital spells with any other admission method (maternity, other)"),
    ("outpatient_attendances", INT, "attended outpatient appointments"),
    ("community_contacts", INT, "community care contacts"),
    ("mh_contacts", INT, "mental health care contacts"),
    ("emergency_bed_days", INT, "nights from admission to discharge of the emergency spells admitted"),
    ("elective_bed_days", INT, "nights from admission to discharge of the elective spells admitted"),
    ("social_care_weeks", FLOAT, "weeks of long-term social care support overlapping the window (days / 7)"),
)
ACTIVITY_COSTS = columns(
    ("cost_gp", FLOAT, "GBP of primary care contacts"),
    ("cost_ae", FLOAT, "GBP of A&E attendances"),
    ("cost_emergency", FLOAT, "GBP of emergency admissions"),
    ("cost_elective", FLOAT, "GBP of elective admissions (day case or inpatient)"),
    ("cost_other_admissions", FLOAT, "GBP of other admissions"),
    ("cost_outpatient", FLOAT, "GBP of outpatient attendances"),
    ("cost_community", FLOAT, "GBP of community contacts"),
    ("cost_mh", FLOAT, "GBP of mental health contacts"),
    ("cost_social_care", FLOAT, "GBP of social care support (by service type, times weeks)"),
    ("cost_total", FLOAT, "sum of the costs above that are available"),
)
ACTIVITY = Table(
    "activity",
    "person x as_of (one per population row)",
    (
        *PERSON_KEY,
        *(Column(c.name, c.dtype, f"{c.meaning}, 12 months to as_of") for c in ACTIVITY_COUNTS + ACTIVITY_COSTS),
        *columns(
            ("ae_attendances_24m", INT, "A&E attendances, 24 months to as_of"),
            ("emergency_admissions_24m", INT, "emergency admissions, 24 months to as_of"),
            ("mh_contacts_24m", INT, "mental health contacts, 24 months to as_of"),
            ("any_contact_24m", BOOL, "any recorded contact in 24 months in any setting (need tiers 1-3)"),
            ("open_waiting_lists", INT, "waiting list entries open at as_of"),
            ("days_since_emergency_admission", INT, "days from the latest emergency admission in 24 months to as_of"),
            ("days_since_ae_attendance", INT, "days from the latest A&E attendance in 24 months to as_of"),
        ),
    ),
    "Contacts, admissions, bed days and cost per setting. The 12-month window is the dates after the same "
    "calendar day a year before as_of, up to and including as_of (for 31 March snapshots, the NHS data year). A "
    "count or cost is 0 when nothing happened and null when its source table was not supplied (not available, "
    "never a silent zero). An admission is a hospital provider spell, however many consultant episodes it holds "
    "([analytics](analytics.md#admissions-are-spells)). A cost is the recorded cost, else the setting's default "
    "unit cost (national averages in `content/costs/unit_costs.csv`, per episode for admissions; replace them with "
    "`phm run --unit-costs FILE`).",
)

# -- risk scores --------------------------------------------------------------------------------------------
QRISK3_BINARY = columns(
    ("b_AF", INT, "QRISK3 input: atrial fibrillation register active (0/1)"),
    ("b_atypicalantipsy", INT, "QRISK3 input: 2+ atypical antipsychotic issues in the 183 days to as_of (0/1)"),
    ("b_corticosteroids", INT, "QRISK3 input: 2+ oral corticosteroid issues in the 183 days to as_of (0/1)"),
    ("b_impotence2", INT, "QRISK3 input: men, erectile dysfunction register active (0/1)"),
    ("b_migraine", INT, "QRISK3 input: migraine register active (0/1)"),
    ("b_ra", INT, "QRISK3 input: rheumatoid arthritis register active (0/1)"),
    ("b_renal", INT, "QRISK3 input: CKD stage 3-5 coded or implied by eGFR (0/1)"),
    ("b_semi", INT, "QRISK3 input: serious mental illness register active (0/1)"),
    ("b_sle", INT, "QRISK3 input: systemic lupus erythematosus register active (0/1)"),
    ("b_treatedhyp", INT, "QRISK3 input: hypertension register active and an antihypertensive issue in 183 days"),
    ("b_type1", INT, "QRISK3 input: type 1 diabetes (0/1)"),
    ("b_type2", INT, "QRISK3 input: type 2 diabetes (0/1)"),
    ("fh_cvd", INT, "QRISK3 input: family history of premature CVD coded (0/1)"),
)
QRISK3_IMPUTED = ("bmi", "rati", "sbp", "sbps5", "town", "smoke_cat", "ethrisk")
RISK = Table(
    "risk",
    "person x as_of",
    (
        *PERSON_KEY,
        *columns(
            ("hfrs", FLOAT, "Hospital Frailty Risk Score (points), diagnoses of the 730 days to as_of"),
            ("hfrs_band", STR, "HFRS band: low (< 5), intermediate (5-15), high (> 15)"),
            ("efi", FLOAT, "electronic Frailty Index: deficits / 36 (null under 18)"),
            ("efi_deficits", INT, "eFI deficits present, 0-36"),
            ("efi_category", STR, "eFI category: fit, mild, moderate, severe"),
            ("polypharmacy", BOOL, "5+ distinct medicines issued in the 365 days to as_of (an eFI deficit)"),
            ("efi_eligible", BOOL, "age 65 or over, the population the eFI was built for"),
            ("charlson", INT, "Charlson index (Quan 2011 weights) of admission diagnoses in the 5 years to as_of"),
            (
                "elixhauser",
                INT,
                "Elixhauser index (van Walraven weights), the same diagnoses",
            ),
            ("cms", FLOAT, "Cambridge Multimorbidity Score (general outcome)"),
            ("cms_conditions", INT, "how many of the CMS's 20 conditions are present"),
        ),
        *QRISK3_BINARY,
        *columns(
            ("bmi", FLOAT, "QRISK3 input: latest BMI (null when never recorded)"),
            ("ethrisk", INT, "QRISK3 input: ethnicity category 1-9 (null when not stated)"),
            ("rati", FLOAT, "QRISK3 input: latest total/HDL cholesterol ratio"),
            ("sbp", FLOAT, "QRISK3 input: latest systolic blood pressure"),
            ("sbps5", FLOAT, "QRISK3 input: SD of systolic blood pressure"),
            ("smoke_cat", INT, "QRISK3 input: smoking category 0-4"),
            ("town", FLOAT, "QRISK3 input: Townsend score of the LSOA, when supplied"),
            (
                "qrisk3_on_statin",
                BOOL,
                "a statin issued in the 365 days to as_of (QRISK3 is then untreated risk)",
            ),
            ("qrisk3_eligible", BOOL, "in the population, age 25-84, sex F or M and no CVD coded"),
        ),
        *(Column(f"qrisk3_{name}_imputed", BOOL, f"QRISK3 used a substitute for {name}") for name in QRISK3_IMPUTED),
        *columns(
            ("qrisk3", FLOAT, "QRISK3 10-year cardiovascular risk (%), null when not eligible"),
            ("qrisk3_imputed", BOOL, "any QRISK3 input was substituted"),
        ),
    ),
    "Frailty, multimorbidity and cardiovascular risk scores ([risk scores](risk.md), [QRISK3](qrisk3.md)). A "
    "score whose source table was not supplied is null.",
)

# -- segments -----------------------------------------------------------------------------------------------
SEGMENT = Table(
    "segment",
    "person x as_of (people in the population)",
    (
        *PERSON_KEY,
        *columns(
            ("segment", STR, "Bridges to Health segment (by the rules' precedence)"),
            ("condition_count", INT, "long-term conditions counted for the segment"),
            ("cms", FLOAT, "Cambridge Multimorbidity Score, carried from risk"),
            ("need_tier", INT, "need tier 1-11"),
            ("need_band", STR, "need band of the tier: low, moderate or high"),
            ("acg_png", INT, "the licensed ACG Patient Need Group from person, when supplied"),
        ),
    ),
    "Bridges to Health segments, subsegment flags and need tiers ([segments](segments.md)).",
    more=Column("<subsegment>", BOOL, "one column per subsegment of the rules and code lists: the person has it"),
)
SEGMENT_TRANSITION = Table(
    "segment_transition",
    "from_as_of x to_as_of x from_segment x to_segment",
    columns(
        ("from_as_of", DATE, "an as_of date of the run"),
        ("to_as_of", DATE, "the next as_of date"),
        ("from_segment", STR, "segment at from_as_of, or joined (not in the population then)"),
        ("to_segment", STR, "segment at to_as_of, or died or left"),
        ("people", INT, "people who moved so (exact; disclosure control applies on the way out)"),
    ),
    "Flows between the segments of consecutive snapshots ([segments](segments.md)).",
)

# -- admission risk -----------------------------------------------------------------------------------------
ADMISSION_RISK_MODEL = Table(
    "admission_risk_model",
    "term of the model applied (one no-model row when there is none)",
    columns(
        ("model_version", STR, "hash of the terms and coefficients"),
        ("term", STR, "term name (intercept, or a feature of the model)"),
        ("source", STR, "table the term reads"),
        ("column", STR, "column the term reads"),
        ("kind", STR, "how the column becomes the term: identity, log1p, hinge, category, missing or flag"),
        ("param", FLOAT, "the term's knot or threshold, where it has one"),
        ("value", STR, "the term's level, where it has one"),
        ("coefficient", FLOAT, "log-odds coefficient"),
        ("model_source", STR, "where the model came from: a file, the store table, or fitted in this run"),
    ),
    "The emergency admission model that scores the run ([admission model](admission-model.md)).",
)
ADMISSION_RISK_SCORE = Table(
    "admission_risk_score",
    "person x as_of",
    (
        *PERSON_KEY,
        *columns(
            ("admission_risk", FLOAT, "probability (0-1) of an emergency admission in the 12 months after as_of"),
            ("model_version", STR, "the model that scored it"),
        ),
    ),
    "Each person's score before ranking.",
)
ADMISSION_RISK = Table(
    "admission_risk",
    "person x as_of",
    (
        *PERSON_KEY,
        *columns(
            ("admission_risk", FLOAT, "probability (0-1) of an emergency admission in the 12 months after as_of"),
            ("risk_centile", INT, "1-100 within the as_of, 100 = the highest 1%"),
            ("top5", BOOL, "risk_centile above 95"),
            ("model_version", STR, "the model that scored it"),
        ),
    ),
    "Scores ranked over the whole population at each as_of.",
)

# -- cohorts ------------------------------------------------------------------------------------------------
COHORT_MEMBER = Table(
    "cohort_member",
    "member x cohort x as_of",
    columns(
        ("cohort", STR, "cohort id"),
        ("person_id", STR, "the member's keyed pseudonym"),
        ("as_of", DATE, "the snapshot date"),
        ("reasons", STR, "the inclusion rules the person met, in order, separated by '; '"),
        ("segment", STR, "the member's segment at as_of (null without a segment table)"),
        ("maternal", BOOL, "the member has the maternal health subsegment flag, whatever the segment"),
    ),
    "Members of every cohort definition ([cohorts](cohorts.md)).",
)
COHORT_ATTRITION = Table(
    "cohort_attrition",
    "cohort x as_of x rule step",
    columns(
        ("cohort", STR, "cohort id"),
        ("as_of", DATE, "the snapshot date"),
        ("step", INT, "0 for the population, then each rule in order"),
        ("rule", STR, "the rule's name"),
        ("kind", STR, "population, include or exclude"),
        ("people", INT, "people left after the step"),
        ("status", STR, "ok, or 'not available: ...' when the rule's table or column is absent"),
    ),
    "How each rule narrows each cohort ([cohorts](cohorts.md)).",
)

# -- aggregates ---------------------------------------------------------------------------------------------
AGG_POPULATION = Table(
    "agg_population",
    "level x area x as_of x breakdown x dimension values",
    (
        *AREA,
        *columns(
            ("as_of", DATE, "the snapshot date"),
            ("breakdown", STR, "the row's dimensions joined by '+', or total"),
            ("segment", STR, "Bridges to Health segment (null when not in the breakdown)"),
            ("need_tier", INT, "need tier 1-11 (null when not in the breakdown)"),
            ("age_band", STR, "age band (null when not in the breakdown)"),
            ("sex", STR, "F, M or U (null when not in the breakdown)"),
            ("imd_quintile", INT, "IMD quintile, 1 = most deprived (null when not in the breakdown)"),
            ("ethnic_group", STR, "ethnic group (null when not in the breakdown)"),
            ("people", INT, "people in the population"),
            ("maternal", INT, "people with the maternal health subsegment flag, whatever their segment"),
        ),
        *(Column(c.name, c.dtype, f"sum of activity.{c.name}") for c in ACTIVITY_COUNTS + ACTIVITY_COSTS),
        *(
            Column(f"{name}_per_1000", FLOAT, f"{name} per 1,000 people")
            for name in (
                "gp_contacts",
                "ae_attendances",
                "emergency_admissions",
                "elective_admissions",
                "outpatient_attendances",
            )
        ),
        Column("cost_per_head", FLOAT, "cost_total / people (GBP)"),
    ),
    "People, activity and cost by the breakdowns the report needs, exact counts ([analytics](analytics.md)).",
)
AGG_REGISTER = Table(
    "agg_register",
    "level x area x as_of x definition",
    (
        *AREA,
        *columns(
            ("as_of", DATE, "the snapshot date"),
            ("definition", STR, "register id"),
            ("kind", STR, "condition, medicine or procedure"),
            ("people", INT, "people in the population on the register and active"),
            ("population", INT, "people in the population of the area (the denominator)"),
            ("prevalence_pct", FLOAT, "100 * people / population (crude, all ages)"),
        ),
    ),
    "Prevalence of every register.",
)
AGG_COHORT = Table(
    "agg_cohort",
    "level x area x as_of x cohort",
    (
        *AREA,
        *columns(
            ("as_of", DATE, "the snapshot date"),
            ("cohort", STR, "cohort id"),
            ("people", INT, "distinct people of the cohort in the population at as_of"),
        ),
    ),
    "Cohort sizes.",
)
AGG_TRANSITION = Table(
    "agg_transition",
    "level x area x from_as_of x to_as_of x from_segment x to_segment",
    (
        *AREA,
        *columns(
            ("from_as_of", DATE, "an as_of date of the run"),
            ("to_as_of", DATE, "the next as_of date"),
            ("from_segment", STR, "a segment, or joined"),
            ("to_segment", STR, "a segment, or died or left"),
            ("people", INT, "people who moved so"),
        ),
    ),
    "Segment transitions between consecutive snapshots, by area.",
)
INEQUALITY_MEASURE = columns(
    ("as_of", DATE, "the snapshot date"),
    ("measure", STR, "segment:<id>, register:<definition>, emergency_admissions or cost_total"),
    ("measure_kind", STR, "people, events or cost"),
    ("per", INT, "the rate is per this many people"),
)
AGG_INEQUALITY = Table(
    "agg_inequality",
    "level x area x as_of x measure x group",
    (
        *AREA,
        *INEQUALITY_MEASURE,
        *columns(
            ("group_type", STR, "all, imd_quintile, imd_decile, ethnic_group or core20"),
            ("group", STR, "the group within the type"),
            ("people", INT, "people in the group (the denominator)"),
            ("events", FLOAT, "the numerator: people, events or GBP"),
            ("crude_rate", FLOAT, "per * events / people"),
            ("dsr", FLOAT, "directly age-sex standardised rate per 'per' (ESP 2013)"),
            ("dsr_lower", FLOAT, "lower 95% confidence limit of dsr"),
            ("dsr_upper", FLOAT, "upper 95% confidence limit of dsr"),
            ("reliable", BOOL, "the numerator is large enough to publish the rate"),
            ("ci_method", STR, "dobson (people, events) or normal (cost)"),
        ),
    ),
    "Age-sex standardised rates by deprivation and ethnic group.",
)
AGG_INEQUALITY_INDEX = Table(
    "agg_inequality_index",
    "level x area x as_of x measure",
    (
        *AREA,
        *INEQUALITY_MEASURE,
        *columns(
            ("deciles", INT, "IMD deciles with a rate that entered the regression"),
            ("sii", FLOAT, "slope index of inequality"),
            ("sii_lower", FLOAT, "lower 95% limit of sii"),
            ("sii_upper", FLOAT, "upper 95% limit of sii"),
            ("rii", FLOAT, "relative index of inequality"),
            ("rii_lower", FLOAT, "lower 95% limit of rii"),
            ("rii_upper", FLOAT, "upper 95% limit of rii"),
        ),
    ),
    "Slope and relative index of inequality across IMD deciles.",
)
AGG_FORECAST = Table(
    "agg_forecast",
    "level x area x year x segment x measure",
    (
        *AREA,
        *columns(
            ("base_as_of", DATE, "the latest as_of (the observed start)"),
            ("year", INT, "0 (observed) to 5"),
            ("as_of", DATE, "base_as_of plus year years"),
            ("segment", STR, "a segment, or all"),
            ("measure", STR, "people, or an activity count, or cost_total"),
            ("value", FLOAT, "the projection (year 0: observed)"),
            ("lower", FLOAT, "lower 95% limit"),
            ("upper", FLOAT, "upper 95% limit"),
            ("method", STR, "the projection method"),
        ),
    ),
    "Five-year projection of segments, activity and cost.",
)

AGG_MONTHLY = Table(
    "agg_monthly",
    "level x area x as_of x month x segment x measure",
    (
        *AREA,
        *columns(
            ("as_of", DATE, "the snapshot whose 12-month window holds the month's events (areas and segments then)"),
            ("month", DATE, "the first day of the calendar month of the events"),
            ("segment", STR, "all, or a segment of the people at as_of"),
            (
                "measure",
                STR,
                "emergency_admissions, acsc_emergency_admissions, emergency_bed_days, elective_admissions, "
                "ae_attendances or outpatient_attendances",
            ),
            ("value", INT, "events in the month (bed days: nights of the emergency admissions admitted in it)"),
        ),
    ),
    "Monthly activity by area and segment, the series of the SPC charts ([analytics](analytics.md)).",
)

# -- data quality -------------------------------------------------------------------------------------------
QUALITY_MEANINGS = {
    "extract_date": "the extract the checks describe (the ingest's extract date)",
    "check_id": "the check's id in the quality settings",
    "category": "conformance, completeness, plausibility or coverage",
    "check": "the check type that computed the row (not_null, volume_history, periods_present, ...)",
    "table": "the source table checked",
    "column": "the column checked (empty for a whole-table check)",
    "level": "all, practice, month or year",
    "level_key": "the practice's ODS code, YYYY-MM or YYYY (empty at level all)",
    "numerator": "records that break the check",
    "denominator": "records checked",
    "rate": "numerator / denominator",
    "warn_threshold": "the rate above which the check warns",
    "threshold": "the rate above which the check fails",
    "status": "fail, warn or pass",
    "description": "the check's explanation for a reader",
}
"""One-line meanings of the columns :mod:`openphm.quality.schema` declares (names and types are taken from it)."""
QUALITY_TYPES = {pa.date32(): DATE, pa.string(): STR, pa.int64(): INT, pa.float64(): FLOAT}
DATA_QUALITY = Table(
    quality.TABLE,
    "check x table x column x level x level key (never a person)",
    tuple(Column(f.name, QUALITY_TYPES[f.type], QUALITY_MEANINGS[f.name]) for f in quality.SCHEMA),
    "Conformance, completeness, plausibility and coverage checks of the source tables "
    "([data quality](data-quality.md)).",
)

AGGREGATES = (
    AGG_POPULATION,
    AGG_REGISTER,
    AGG_COHORT,
    AGG_TRANSITION,
    AGG_INEQUALITY,
    AGG_INEQUALITY_INDEX,
    AGG_FORECAST,
    AGG_MONTHLY,
)
"""The aggregate tables the analytics stage writes, and all that exports and the report may publish."""

DECLARED = {
    t.name: t
    for t in (
        DATA_QUALITY,
        POPULATION,
        REGISTER,
        MEASURE,
        ACTIVITY,
        RISK,
        SEGMENT,
        SEGMENT_TRANSITION,
        ADMISSION_RISK_MODEL,
        ADMISSION_RISK_SCORE,
        ADMISSION_RISK,
        COHORT_MEMBER,
        COHORT_ATTRITION,
        *AGGREGATES,
    )
}
"""Every declared table by name, in the order ``docs/tables.md`` lists them."""

CARRIED = tuple(name for name, t in DECLARED.items() if t.names[:2] == ("person_id", "as_of"))
"""The person x as_of tables an ingest carries from the store it replaces, so that ``phm run --refresh latest``
can keep their earlier snapshots (:mod:`openphm.pipeline.refresh`): the outputs of the per-snapshot stages."""
