"""QRISK3-2017: the 10-year risk of a heart attack or stroke (Hippisley-Cox et al., BMJ 2017;357:j2099).

The score is a Cox model per sex: fractional polynomials of age and BMI, centred continuous inputs,
ethnicity and smoking categories, conditions and treatments, and their interactions with age, summed into a
linear predictor ``a``; risk = 100 * (1 - S10 ** exp(a)). Everything numeric - coefficients, transforms,
centres, baseline survival, ClinRisk's substitutes for missing values and its limits - is package data
(``content/scores/qrisk3``), so this module holds the arithmetic only and is written once for every engine.

A score must always be shown with ClinRisk's disclaimer (:func:`disclaimer`): a condition of the licence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import narwhals as nw

from openphm.content import content_path, csv_rows
from openphm.content.validation import parse_yaml
from openphm.errors import InputError
from openphm.outputs.safe import neutralise_table

if TYPE_CHECKING:
    from openphm.pipeline import RunContext

FEMALE, MALE = "female", "male"
BINARY = (
    "b_AF",
    "b_atypicalantipsy",
    "b_corticosteroids",
    "b_impotence2",
    "b_migraine",
    "b_ra",
    "b_renal",
    "b_semi",
    "b_sle",
    "b_treatedhyp",
    "b_type1",
    "b_type2",
    "fh_cvd",
)
CONTINUOUS = ("bmi", "rati", "sbp", "sbps5", "town")
INPUTS = ("sex", "age", *BINARY, "bmi", "ethrisk", "rati", "sbp", "sbps5", "smoke_cat", "town")
"""The official input columns (``surv`` is optional and defaults to 10 years)."""
NUMERIC = tuple(c for c in (*INPUTS, "surv") if c != "sex")
SUBSTITUTED = ("bmi", "rati", "sbp", "sbps5", "town", "smoke_cat", "ethrisk")
"""Inputs that are substituted when missing (and, for four of them, moved into limits): one flag each."""
FLAGS = tuple(f"qrisk3_{name}_imputed" for name in SUBSTITUTED)
ANY_FLAG = "qrisk3_imputed"
DEFAULT_SURV = 10


@dataclass(frozen=True)
class Equation:
    """One sex's equation: baseline survival by year, transforms of age and BMI, centres and coefficients."""

    survivor: dict[int, float]
    transforms: dict[str, dict[str, object]]
    centres: dict[str, float]
    coefficients: dict[str, float]


@dataclass(frozen=True)
class Model:
    version: str
    scale: float
    age_range: tuple[int, int]
    equations: dict[str, Equation]
    substitutes: dict[str, float]
    limits: dict[str, tuple[float, float]]


@cache
def model() -> Model:
    """The published QRISK3-2017 model, read from the package data."""
    spec = parse_yaml(content_path("scores", "qrisk3", "model.yaml").read_text(encoding="utf-8"))
    rows = csv_rows(content_path("scores", "qrisk3", "coefficients.csv"))
    equations = {
        sex: Equation(
            survivor={int(year): float(value) for year, value in part["survivor"].items()},
            transforms=part["transforms"],
            centres={name: float(value) for name, value in part["centres"].items()},
            coefficients={r["term"]: float(r["coefficient"]) for r in rows if r["sex"] == sex},
        )
        for sex, part in spec["sexes"].items()
    }
    return Model(
        version=str(spec["version"]),
        scale=float(spec["scale"]),
        age_range=(int(spec["age_range"][0]), int(spec["age_range"][1])),
        equations=equations,
        substitutes={k: float(v) for k, v in spec["substitutes"].items()},
        limits={k: (float(v[0]), float(v[1])) for k, v in spec["limits"].items()},
    )


@cache
def disclaimer() -> str:
    """ClinRisk's disclaimer, which the licence requires alongside any QRISK3 score."""
    return content_path("scores", "qrisk3", "DISCLAIMER.txt").read_text(encoding="utf-8").strip()


# -- inputs as the equations use them ------------------------------------------------------------------------


def _sex() -> nw.Expr:
    """'female'/'male' from female, male, F or M in any case; anything else null."""
    text = nw.col("sex").cast(nw.String).str.strip_chars().str.to_lowercase()
    return (
        nw.when(text.is_in(["female", "f"]))
        .then(nw.lit(FEMALE))
        .when(text.is_in(["male", "m"]))
        .then(nw.lit(MALE))
        .otherwise(nw.lit(None, nw.String))
    )


def _used(name: str, m: Model) -> nw.Expr:
    """The value the equation uses: ClinRisk's substitute when missing, then clipped into its limits."""
    column = nw.col(name).cast(nw.Float64)
    if name == "ethrisk":  # 0 is ClinRisk's 'not recorded'
        column = nw.when(column == 0).then(nw.lit(None, nw.Float64)).otherwise(column)
    value = column.fill_null(m.substitutes[name])
    if name in m.limits:
        low, high = m.limits[name]
        value = nw.when(value < low).then(nw.lit(low)).when(value > high).then(nw.lit(high)).otherwise(value)
    return value


def _imputed(name: str, m: Model) -> nw.Expr:
    """True when the value used is not the value given: missing (or ethrisk 0), or outside the limits."""
    column = nw.col(name).cast(nw.Float64)
    flag = column.is_null()
    if name == "ethrisk":
        flag = flag | (column == 0)
    if name in m.limits:
        low, high = m.limits[name]
        flag = flag | (column < low) | (column > high)
    return flag.fill_null(value=True)


def _problems(names: Sequence[str], m: Model) -> list[tuple[nw.Expr, str]]:
    """(condition, message) for every reason a row cannot be scored, in the order of the input columns."""
    low, high = m.age_range
    age = nw.col("age").cast(nw.Float64)
    found: list[tuple[nw.Expr, str]] = [
        (nw.col("_q3_sex").is_null(), "sex must be female or male"),
        (age.is_null(), "age is missing"),
        (~age.is_null() & (age.floor() != age), "age must be a whole number"),
        (~age.is_null() & ((age < low) | (age > high)), f"age must be {low}-{high}"),
    ]
    for name in BINARY:
        value = nw.col(name).cast(nw.Float64)
        found.append((value.is_null() | ~value.is_in([0.0, 1.0]), f"{name} must be 0 or 1"))
    both = (nw.col("b_type1").cast(nw.Float64) == 1) & (nw.col("b_type2").cast(nw.Float64) == 1)
    found.append((both.fill_null(value=False), "b_type1 and b_type2 cannot both be 1"))
    ethrisk, smoke = nw.col("ethrisk").cast(nw.Float64), nw.col("smoke_cat").cast(nw.Float64)
    found.append((~ethrisk.is_null() & ~ethrisk.is_in([float(k) for k in range(10)]), "ethrisk must be 1-9"))
    found.append((~smoke.is_null() & ~smoke.is_in([float(k) for k in range(5)]), "smoke_cat must be 0-4"))
    for name in ("bmi", "rati", "sbp"):
        found.append(((nw.col(name).cast(nw.Float64) <= 0).fill_null(value=False), f"{name} must be positive"))
    found.append(((nw.col("sbps5").cast(nw.Float64) < 0).fill_null(value=False), "sbps5 must not be negative"))
    years = sorted(set.intersection(*(set(e.survivor) for e in m.equations.values())))
    if "surv" in names:
        surv = nw.col("surv").cast(nw.Float64)
        allowed = ", ".join(str(y) for y in years)
        found.append((surv.is_null() | ~surv.is_in([float(y) for y in years]), f"surv must be {allowed}"))
    return found


def _with_sex(frame: nw.LazyFrame) -> nw.LazyFrame:
    names = frame.collect_schema().names()
    missing = [c for c in INPUTS if c not in names]
    if missing:
        raise InputError(f"QRISK3 inputs: missing column {', '.join(missing)}")
    return frame.with_columns(_sex().alias("_q3_sex"))


def qrisk3_errors(frame: nw.LazyFrame) -> nw.LazyFrame:
    """Add ``error``: why a row cannot be scored ('age must be 25-84; smoke_cat must be 0-4'), null if it can."""
    frame = _with_sex(frame)
    m = model()
    problems = _problems(frame.collect_schema().names(), m)
    messages = [nw.when(condition.fill_null(value=True)).then(nw.lit(text)) for condition, text in problems]
    joined = nw.concat_str(messages, separator="; ", ignore_nulls=True)
    return frame.with_columns(nw.when(joined != "").then(joined).alias("error")).drop("_q3_sex")


# -- the linear predictor ---------------------------------------------------------------------------------------


def _terms(sex: str, equation: Equation, m: Model) -> list[nw.Expr]:
    """Each coefficient times its factors; a factor is a centred term, an input, or a category indicator."""

    def factor(name: str) -> nw.Expr:
        if "=" in name:
            variable, level = name.split("=")
            return (nw.col(f"_q3_{variable}") == float(level)).cast(nw.Float64)
        if name in equation.centres:
            return nw.col(f"_q3_{sex}_{name}")
        return nw.col(name).cast(nw.Float64)

    terms = []
    for term, coefficient in equation.coefficients.items():
        product = nw.lit(coefficient)
        for name in term.split("*"):
            product = product * factor(name)
        terms.append(product)
    return terms


def _centred(sex: str, equation: Equation, m: Model) -> list[nw.Expr]:
    """The transformed and centred age and BMI terms and the centred continuous inputs of one sex."""
    out = []
    for name, centre in equation.centres.items():
        if name in equation.transforms:
            spec = equation.transforms[name]
            x = nw.col(f"_q3_{spec['of']}") / m.scale
            value = x ** float(spec["power"])  # type: ignore[arg-type]
            if spec.get("log"):
                value = value * x.log()
        else:
            value = nw.col(f"_q3_{name}")
        out.append((value - centre).alias(f"_q3_{sex}_{name}"))
    return out


def qrisk3_score(frame: nw.LazyFrame) -> nw.LazyFrame:
    """Add ``qrisk3`` (10-year risk, %, full precision) and the substitution flags to rows of official inputs.

    Columns: sex (female/male or F/M), age, b_AF ... b_type2, bmi, ethrisk (1-9; 0 or empty = not recorded),
    fh_cvd, rati, sbp, sbps5, smoke_cat (0-4; empty = not known), town, and optionally surv (default 10, the
    only year the release has) and ``qrisk3_eligible`` (a false value nulls the score). Missing bmi, rati,
    sbp, sbps5, town, smoke_cat and ethrisk are substituted as ClinRisk's engine does, out-of-limit values are
    moved to the limit, and each is flagged in ``qrisk3_<input>_imputed`` (``qrisk3_imputed``: any of them).
    A row that cannot be scored (see :func:`qrisk3_errors`) gets null score and flags.
    """
    frame = _with_sex(frame)
    m = model()
    names = frame.collect_schema().names()
    valid = ~nw.any_horizontal(*[c.fill_null(value=True) for c, _ in _problems(names, m)], ignore_nulls=False)
    if "qrisk3_eligible" in names:
        valid = valid & nw.col("qrisk3_eligible").fill_null(value=False)
    surv = nw.col("surv").cast(nw.Float64) if "surv" in names else nw.lit(float(DEFAULT_SURV))
    prepared = frame.with_columns(
        nw.col("age").cast(nw.Float64).alias("_q3_age"),
        *[_used(name, m).alias(f"_q3_{name}") for name in SUBSTITUTED],
        *[_imputed(name, m).alias(flag) for name, flag in zip(SUBSTITUTED, FLAGS, strict=True)],
        valid.alias("_q3_valid"),
    )
    prepared = prepared.with_columns(*[e for sex, eq in m.equations.items() for e in _centred(sex, eq, m)])
    prepared = prepared.with_columns(
        *[nw.sum_horizontal(*_terms(sex, eq, m)).alias(f"_q3_{sex}_a") for sex, eq in m.equations.items()]
    )
    score = None
    for sex, equation in m.equations.items():
        for year, survival in equation.survivor.items():
            risk = 100.0 * (1.0 - (nw.col(f"_q3_{sex}_a").exp() * math.log(survival)).exp())
            chosen = (nw.col("_q3_sex") == sex) & (surv == float(year))
            score = nw.when(chosen).then(risk) if score is None else score.when(chosen).then(risk)
    assert score is not None
    valid_col = nw.col("_q3_valid")
    result = prepared.with_columns(
        nw.when(valid_col).then(score).otherwise(nw.lit(None, nw.Float64)).alias("qrisk3"),
        *[nw.when(valid_col).then(nw.col(flag)).alias(flag) for flag in FLAGS],
        nw.when(valid_col).then(nw.any_horizontal(*[nw.col(f) for f in FLAGS], ignore_nulls=True)).alias(ANY_FLAG),
    )
    return result.drop([c for c in result.collect_schema().names() if c.startswith("_q3_")])


def qrisk3_inputs(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> nw.LazyFrame:
    """The official inputs and ``qrisk3_eligible`` per population row: see :mod:`openphm.risk.qrisk3_inputs`."""
    from openphm.risk.qrisk3_inputs import qrisk3_inputs as derive

    return derive(tables, context)


# -- the batch calculator ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    rows: int
    scored: int
    errors: int
    disclaimer_path: Path


def disclaimer_path(out: Path) -> Path:
    """The sidecar file that carries the disclaimer with a batch output: ``OUT.disclaimer.txt``."""
    return out.with_name(out.stem + ".disclaimer.txt")


def score_csv(source: Path, out: Path) -> BatchResult:
    """Score every row of a CSV of official inputs; write the rows, ``qrisk3``, ``qrisk3_imputed``, ``error``.

    Every input row is kept, with all its columns as given. ``qrisk3_imputed`` names the inputs substituted
    (';'-separated); ``error`` says why a row could not be scored. Lines starting with '#' are comments (as
    in ClinRisk's batch format). The disclaimer goes to ``OUT.disclaimer.txt`` beside the output.
    """
    import polars as pl

    if not source.is_file():
        raise InputError(f"{source}: no such file")
    try:
        raw = pl.read_csv(source, infer_schema=False, comment_prefix="#")
    except (OSError, pl.exceptions.PolarsError):
        raise InputError(f"{source}: cannot be read as CSV") from None
    missing = [c for c in INPUTS if c not in raw.columns]
    if missing:
        raise InputError(f"{source}: missing column {', '.join(missing)}")
    reserved = [c for c in ("qrisk3", "qrisk3_imputed", "error") if c in raw.columns]
    if reserved:
        raise InputError(f"{source}: has a column named {reserved[0]}, which the output adds")
    numeric = [c for c in NUMERIC if c in raw.columns]
    text = {c: pl.col(c).str.strip_chars() for c in numeric}
    parsed = raw.select(
        pl.col("sex"),
        *[
            pl.when(text[c] == "").then(None).otherwise(text[c]).cast(pl.Float64, strict=False).alias(c)
            for c in numeric
        ],
        pl.concat_str(
            [
                pl.when((text[c] != "") & text[c].cast(pl.Float64, strict=False).is_null()).then(
                    pl.lit(f"{c} not a number")
                )
                for c in numeric
            ],
            separator="; ",
            ignore_nulls=True,
        ).alias("_parse_error"),
    )
    checked = qrisk3_errors(nw.from_native(parsed.lazy()))
    scored = qrisk3_score(checked).collect().to_native()
    imputed = pl.concat_str(
        [pl.when(pl.col(f"qrisk3_{n}_imputed")).then(pl.lit(n)) for n in SUBSTITUTED], separator=";", ignore_nulls=True
    )
    parsed_ok = pl.col("_parse_error") == ""
    extra = scored.select(
        pl.when(parsed_ok).then(pl.col("qrisk3")).alias("qrisk3"),
        pl.when(parsed_ok & (imputed != "")).then(imputed).alias("qrisk3_imputed"),
        pl.concat_str([pl.col("_parse_error"), pl.col("error")], separator="; ", ignore_nulls=True)
        .str.strip_prefix("; ")
        .alias("error"),
    ).with_columns(pl.when(pl.col("error") != "").then(pl.col("error")).alias("error"))
    result = pl.concat([raw, extra], how="horizontal")
    try:
        # The user's own values echoed as text: numbers stay numbers, formula-like text is neutralised.
        pl.DataFrame(neutralise_table(result.to_arrow(), keep_numbers=True)).write_csv(out)
        sidecar = disclaimer_path(out)
        sidecar.write_text(disclaimer() + "\n", encoding="utf-8")
    except OSError:
        raise InputError(f"{out}: cannot be written") from None
    n_errors = int(result["error"].is_not_null().sum())
    return BatchResult(result.height, int(result["qrisk3"].is_not_null().sum()), n_errors, sidecar)
