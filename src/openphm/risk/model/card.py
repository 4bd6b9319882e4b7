"""The model card: discrimination, calibration and capture on the temporal test year, overall and by group.

Every figure is computed from the test sample's outcomes and predicted probabilities:

- AUROC: the probability that a person admitted scores above one not admitted (ties count half).
- Calibration slope: b in logit P(admitted) = a + b * logit(p); 1 is ideal, < 1 means predictions too extreme.
- Calibration-in-the-large: a in logit P(admitted) = a + logit(p) (slope fixed at 1); 0 is ideal, > 0 means
  the model under-predicts on average. Both are fitted by Newton's method on the sample.
- Top 5% capture: the share of the year's admitted people who were among the 5% highest scores of the whole
  test population (ties broken by person order). By group it is the share of that group's admitted people
  inside the overall top 5%, which is how a case-finding list treats a group.

Counts published in the card pass through :mod:`openphm.analytics.disclosure` (1-7 redacted, others rounded
to 5). A group with fewer than ``MIN_EVENTS`` admitted or not-admitted people gets no figures, only its
(protected) counts and the flag ``small``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.metrics import roc_auc_score

from openphm.analytics.disclosure import protect
from openphm.risk.model.features import design
from openphm.risk.model.train import KIND, Training

TOP_SHARE = 0.05
MIN_EVENTS = 10
GROUPS = {"imd_quintile": "IMD quintile (1 = most deprived)", "ethnic_group": "Ethnic group", "sex": "Sex"}
Floats = npt.NDArray[np.float64]


def auroc(y: npt.NDArray[np.bool_], p: Floats) -> float:
    """Area under the ROC curve; NaN when only one outcome occurs."""
    if np.unique(y).size < 2:
        return math.nan
    return float(roc_auc_score(y.astype(np.int64), p))


def _logit(p: Floats) -> Floats:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(q / (1 - q))


def _newton(columns: Sequence[Floats], y: Floats, offset: Floats) -> Floats:
    """Maximum-likelihood coefficients of a logistic regression of ``y`` on ``columns`` with an offset."""
    x = np.column_stack(columns)
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        mu = 1.0 / (1.0 + np.exp(-(offset + x @ beta)))
        gradient = x.T @ (y - mu)
        hessian = (x * (mu * (1 - mu))[:, None]).T @ x
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12:
            break
    return beta


def calibration(y: npt.NDArray[np.bool_], p: Floats) -> tuple[float, float]:
    """(slope, calibration-in-the-large); NaN when only one outcome occurs."""
    if np.unique(y).size < 2:
        return math.nan, math.nan
    z, outcome = _logit(p), y.astype(np.float64)
    ones = np.ones_like(z)
    slope = float(_newton([ones, z], outcome, np.zeros_like(z))[1])
    in_the_large = float(_newton([ones], outcome, z)[0])
    return slope, in_the_large


def top_flags(p: Floats, share: float = TOP_SHARE) -> npt.NDArray[np.bool_]:
    """True for the ``share`` highest scores (rounded up), ties broken by row order (person order)."""
    n = p.size
    top = np.zeros(n, dtype=bool)
    if n:
        order = np.lexsort((np.arange(n), -p))
        top[order[: math.ceil(share * n)]] = True
    return top


def capture(y: npt.NDArray[np.bool_], top: npt.NDArray[np.bool_]) -> float:
    """Share of the admitted who are flagged."""
    events = int(y.sum())
    return float((y & top).sum() / events) if events else math.nan


def deciles(y: npt.NDArray[np.bool_], p: Floats) -> list[dict[str, float]]:
    """Mean predicted and observed proportion in each tenth of the sample ordered by predicted risk."""
    order = np.lexsort((np.arange(p.size), p))
    return [
        {"decile": i + 1, "predicted": float(p[part].mean()), "observed": float(y[part].mean())}
        for i, part in enumerate(np.array_split(order, 10))
        if part.size
    ]


def _figures(y: npt.NDArray[np.bool_], p: Floats, top: npt.NDArray[np.bool_]) -> dict[str, float | None]:
    slope, in_the_large = calibration(y, p)
    values = {
        "auroc": auroc(y, p),
        "calibration_slope": slope,
        "calibration_in_the_large": in_the_large,
        "top5_capture": capture(y, top),
        "share_in_top5": float(top.mean()) if top.size else math.nan,
        "mean_predicted": float(p.mean()) if p.size else math.nan,
        "observed_rate": float(y.mean()) if y.size else math.nan,
    }
    return {k: (None if math.isnan(v) else round(v, 6)) for k, v in values.items()}


def _protected(admitted: Sequence[int], people: Sequence[int]) -> tuple[list[float | None], list[float | None]]:
    """(people, admitted) per group under the disclosure policy.

    The groups form a two-way table of admitted and not admitted people, so secondary suppression also
    stops a redacted group from being recovered from the others and the total.
    """
    table = protect(np.asarray([np.subtract(people, admitted), admitted], dtype=np.int64))

    def values(cells: npt.NDArray[np.float64]) -> list[float | None]:
        return [None if math.isnan(c) else float(c) for c in cells]

    return values(table.column_totals), values(table.cells[1])


def evaluate(training: Training) -> dict[str, Any]:
    """The card's figures as a JSON-ready dictionary."""
    test = training.test
    assert test is not None
    model = training.model
    p = model.predict(design(model.terms, test))
    y = test["admitted"].to_numpy().astype(bool)
    top = top_flags(p)
    (n_rows,), (n_events,) = _protected([int(y.sum())], [test.height])
    overall = {"n": n_rows, "admitted": n_events, **_figures(y, p, top)}
    groups: dict[str, list[dict[str, Any]]] = {}
    for column in GROUPS:
        levels = test.get_column(column).fill_null("unknown").cast(pl.String).to_numpy()
        names = sorted(set(levels.tolist()))
        masks = [levels == level for level in names]
        people, admitted = _protected([int(y[m].sum()) for m in masks], [int(m.sum()) for m in masks])
        rows = []
        for level, mask, n, events in zip(names, masks, people, admitted, strict=True):
            positives = int(y[mask].sum())
            small = min(positives, int(mask.sum()) - positives) < MIN_EVENTS
            figures = _figures(y[mask], p[mask], top[mask])
            if small:
                figures = dict.fromkeys(figures)
            rows.append({"group": str(level), "n": n, "admitted": events, "small": small, **figures})
        groups[column] = rows
    trained = training.train
    (train_n,), (train_events,) = _protected([int(trained["admitted"].sum())], [trained.height])
    return {
        "model_version": model.version,
        "kind": KIND,
        "trained_at": model.info.get("trained_at"),
        "train_as_of": training.train_as_of.isoformat(),
        "test_as_of": training.test_as_of.isoformat() if training.test_as_of else None,
        "outcome": "any emergency admission (admission method 21-25, 28, 2A, 2B or 2D) in the 365 days after as_of",
        "train": {"n": train_n, "admitted": train_events},
        "test": overall,
        "groups": groups,
        "calibration_deciles": [{k: round(v, 6) for k, v in d.items()} for d in deciles(y, p)],
        "terms": [
            {"term": t.name, "coefficient": round(c, 6)} for t, c in zip(model.terms, model.coefficients, strict=True)
        ],
        "intercept": round(model.intercept, 6),
        "settings": {k: model.info.get(k) for k in ("seed", "sample_cap", "regularisation_c", "sklearn_version")},
        "min_events": MIN_EVENTS,
        "disclosure": "1-7 redacted, others rounded to the nearest 5 (nhs policy)",
    }


STEPS = (0.0025, 0.005, 0.01, 0.02, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25)


def calibration_svg(points: Sequence[dict[str, float]], title: str) -> str:
    """A calibration plot: predicted against observed proportion per decile, with the ideal diagonal."""
    size, left, pad = 380, 72, 48  # the plot area is a square of side size - left - pad
    highest = max([0.0, *(max(d["predicted"], d["observed"]) for d in points)])
    step = next((s for s in STEPS if 4 * s >= highest), 0.25)  # four ticks of a round step cover the data
    top = 4 * step
    width = size - left - pad
    mid_y = pad + width / 2

    def xy(pred: float, obs: float) -> tuple[float, float]:
        return left + width * pred / top, pad + width - width * obs / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{left}" y="{pad}" width="{width}" height="{width}" fill="none" stroke="#999"/>',
        '<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="#bbb" stroke-dasharray="4 3"/>'.format(
            *xy(0, 0), *xy(top, top)
        ),
    ]
    for i in range(5):
        x, y = xy(i * step, i * step)
        label = f"{100 * i * step:g}%"
        parts.append(f'<text x="{x:.1f}" y="{pad + width + 14}" text-anchor="middle">{label}</text>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    line = " ".join("{:.1f},{:.1f}".format(*xy(d["predicted"], d["observed"])) for d in points)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#005eb8" stroke-width="1.5"/>')
    for d in points:
        x, y = xy(d["predicted"], d["observed"])
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#005eb8"><title>decile {d["decile"]:g}: '
            f"predicted {100 * d['predicted']:.2f}%, observed {100 * d['observed']:.2f}%</title></circle>"
        )
    middle = left + width / 2
    parts += [
        f'<text x="{middle}" y="{size - 12}" text-anchor="middle">mean predicted risk (tenths of the test year)</text>',
        f'<text x="16" y="{mid_y}" text-anchor="middle" transform="rotate(-90 16 {mid_y})">'
        "observed proportion admitted</text>",
        f'<text x="{middle}" y="24" text-anchor="middle" font-size="13">{escape(title)}</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and percent:
        return f"{100 * value:.1f}%"
    if isinstance(value, float) and value.is_integer():
        return f"{value:,.0f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(card: dict[str, Any], svg_name: str) -> str:
    """The card as Markdown (figures from :func:`evaluate`)."""
    test = card["test"]
    lines = [
        f"# Model card: emergency admission in the next 12 months ({card['model_version']})",
        "",
        f"- Model: L2-regularised logistic regression (`{card['kind']}`), trained {card['trained_at']}.",
        f"- Outcome: {card['outcome']}.",
        f"- Trained on the population at {card['train_as_of']} (n {_fmt(card['train']['n'])}, admitted "
        f"{_fmt(card['train']['admitted'])}); tested on the population at {card['test_as_of']} (temporal validation).",
        f"- Settings: {', '.join(f'{k} {v}' for k, v in card['settings'].items())}.",
        "- Data: trained and validated on the store it was run on, and nothing else. On a `phm synth` store (every "
        "figure openphm publishes) that is synthetic data: the figures show the method works on a simulated "
        "population and say nothing about performance on real patients. Validate on local data before use.",
        f"- Counts: {card['disclosure']}. Groups with fewer than {card['min_events']} admitted or not admitted "
        "people are marked small and get no figures.",
        "",
        "## Overall (test year)",
        "",
        "| n | admitted | AUROC | calibration slope | calibration-in-the-large | top 5% capture | mean predicted "
        "| observed |",
        "|---|---|---|---|---|---|---|---|",
        f"| {_fmt(test['n'])} | {_fmt(test['admitted'])} | {_fmt(test['auroc'])} | {_fmt(test['calibration_slope'])} "
        f"| {_fmt(test['calibration_in_the_large'])} | {_fmt(test['top5_capture'], True)} "
        f"| {_fmt(test['mean_predicted'], True)} | {_fmt(test['observed_rate'], True)} |",
        "",
        f"![Calibration plot: deciles of predicted risk against observed proportion]({svg_name})",
        "",
    ]
    for column, title in GROUPS.items():
        lines += [
            f"## By {title.lower()}" if column != "imd_quintile" else f"## By {title}",
            "",
            "| group | n | admitted | AUROC | slope | in the large | top 5% capture | share in top 5% | small |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in card["groups"][column]:
            lines.append(
                f"| {row['group']} | {_fmt(row['n'])} | {_fmt(row['admitted'])} | {_fmt(row['auroc'])} "
                f"| {_fmt(row['calibration_slope'])} | {_fmt(row['calibration_in_the_large'])} "
                f"| {_fmt(row['top5_capture'], True)} | {_fmt(row['share_in_top5'], True)} "
                f"| {'yes' if row['small'] else ''} |"
            )
        lines.append("")
    lines += [
        "## Calibration by decile of predicted risk",
        "",
        "| decile | mean predicted | observed |",
        "|---|---|---|",
        *(
            f"| {d['decile']:g} | {_fmt(d['predicted'], True)} | {_fmt(d['observed'], True)} |"
            for d in card["calibration_deciles"]
        ),
        "",
        "## Coefficients (per unit of each term; the intercept is the log-odds when every term is 0)",
        "",
        "| term | coefficient |",
        "|---|---|",
        f"| intercept | {card['intercept']:.4f} |",
        *(f"| {t['term']} | {t['coefficient']:.4f} |" for t in card["terms"]),
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class CardFiles:
    model: Path
    markdown: Path
    json: Path
    svg: Path


def write(training: Training, folder: Path) -> tuple[dict[str, Any], CardFiles]:
    """Write the model file and its card (Markdown, JSON and the calibration plot) into ``folder``."""
    card = evaluate(training)
    stem = f"admission-model-{training.model.version}"
    model_path = training.model.save(folder)
    svg_path = folder / f"{stem}.calibration.svg"
    svg_path.write_text(calibration_svg(card["calibration_deciles"], f"Calibration, test year {card['test_as_of']}"))
    json_path = folder / f"{stem}.card.json"
    json_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    md_path = folder / f"{stem}.card.md"
    md_path.write_text(markdown(card, svg_path.name), encoding="utf-8")
    return card, CardFiles(model_path, md_path, json_path, svg_path)
