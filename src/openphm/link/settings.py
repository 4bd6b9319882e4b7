"""The settings of ``phm link``: one typed model, read from the shipped ``default.yaml`` or a user's file.

Everything a linkage analyst tunes (the threshold, the comparison levels, the blocking and training rules,
the clerical-review sample) is data in one YAML file, checked like every content file of the project:
unknown keys are errors, so a typing error in a key stops the run instead of being silently ignored. A
user's file need only hold the keys it changes; the rest take the shipped values, which the model's
defaults repeat (a test keeps ``default.yaml`` and the defaults equal).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from openphm.content.validation import ContentError, ContentModel, read_yaml, validated

DEFAULT_FILE = files("openphm.link").joinpath("default.yaml")

BlockColumn = Literal[
    "given_name",
    "family_name",
    "given_soundex",
    "family_soundex",
    "date_of_birth",
    "birth_year",
    "sex",
    "postcode",
    "postcode_sector",
    "postcode_district",
]
"""The cleaned columns a blocking or training rule may name (see ``openphm.link.clean``)."""

Rule = tuple[BlockColumn, ...]


def _non_empty(rule: Rule) -> Rule:
    if not rule:
        raise ValueError("a rule names at least one column")
    return rule


class NameSettings(ContentModel):
    """Levels of a name comparison, most to least alike: exact, swapped, then Jaro-Winkler similarities."""

    jaro_winkler: tuple[float, ...] = (0.92, 0.88, 0.7)
    swapped_names: bool = True
    """A level for given and family names swapped between the two records (both names equal crosswise)."""
    term_frequencies: bool = True
    """Adjust an exact match for how common the name is (SMITH agrees by chance more often than ZIELINSKI)."""

    @field_validator("jaro_winkler")
    @classmethod
    def _descending(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < v < 1 for v in value) or list(value) != sorted(value, reverse=True):
            raise ValueError("similarities lie between 0 and 1, highest first")
        return value


class DateDifference(ContentModel):
    within: int = Field(gt=0)
    unit: Literal["day", "month", "year"]


class DateSettings(ContentModel):
    """Levels of the date-of-birth comparison after an exact match."""

    damerau_levenshtein: int | None = Field(default=1, ge=1)
    """At most this many characters apart as ISO text (a typing error); null for no such level."""
    transposed_day_month: bool = True
    """Day and month swapped (a US-style date read as a UK one), same year."""
    differences: tuple[DateDifference, ...] = (
        DateDifference(within=1, unit="month"),
        DateDifference(within=1, unit="year"),
    )


class PostcodeSettings(ContentModel):
    """Levels of the postcode comparison: equal full postcode, then sector (``LS6 2``), then district (``LS6``)."""

    levels: tuple[Literal["full", "sector", "district"], ...] = ("full", "sector", "district")

    @field_validator("levels")
    @classmethod
    def _ordered(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        order = ["full", "sector", "district"]
        if not value or len(set(value)) != len(value) or sorted(value, key=order.index) != list(value):
            raise ValueError("levels are distinct, in the order full, sector, district")
        return value


class Comparisons(ContentModel):
    given_name: NameSettings = NameSettings()
    family_name: NameSettings = NameSettings()
    date_of_birth: DateSettings = DateSettings()
    sex: bool = True
    postcode: PostcodeSettings = PostcodeSettings()


class Training(ContentModel):
    """How the model's parameters are estimated (Fellegi-Sunter: a prior, u by sampling, m by EM)."""

    prior_rule: Rule = ("given_name", "family_name", "date_of_birth")
    """Pairs equal on all these columns are counted as matches to estimate the prior match probability..."""
    prior_recall: float = Field(default=0.7, gt=0, le=1)
    """...of which they are assumed to be this share of all true matches."""
    u_max_pairs: int = Field(default=1_000_000, gt=0)
    """Random pairs sampled to estimate u (how often non-matches agree by chance)."""
    em_rules: tuple[Rule, ...] = (("date_of_birth",), ("given_name", "family_name"), ("postcode",))
    """Blocking rules of the expectation-maximisation runs that estimate m; a column in a rule is not
    estimated by that run, so every comparison must be left out of at least one rule."""
    em_max_iterations: int = Field(default=25, gt=0)
    seed: int = 42

    @field_validator("prior_rule")
    @classmethod
    def _prior(cls, value: Rule) -> Rule:
        return _non_empty(value)

    @field_validator("em_rules")
    @classmethod
    def _em(cls, value: tuple[Rule, ...]) -> tuple[Rule, ...]:
        if len(value) < 2:
            raise ValueError("give at least two rules, so that every comparison is estimated by one of them")
        return tuple(_non_empty(rule) for rule in value)


class Review(ContentModel):
    """The clerical-review sample in the report: pairs whose match weight lies near the threshold's."""

    pairs: int = Field(default=40, ge=0)
    band: float = Field(default=3.0, gt=0)
    """Match weight (bits) either side of the threshold's weight from which the sample is drawn."""


class LinkSettings(ContentModel):
    """The whole of ``link.yaml``."""

    threshold: float = Field(default=0.9, gt=0, lt=1)
    """Match probability at or above which a pair of records is taken to be one person."""
    nhs_number_conflict: Literal["keep_apart", "ignore"] = "keep_apart"
    """Two records whose valid NHS numbers differ are never linked (keep_apart) or may be (ignore)."""
    comparisons: Comparisons = Comparisons()
    blocking_rules: tuple[Rule, ...] = (
        ("date_of_birth",),
        ("postcode",),
        ("given_name", "family_name"),
        ("family_soundex", "birth_year"),
        ("given_soundex", "family_soundex", "postcode_district"),
    )
    """Only pairs equal on all columns of at least one rule are compared: this keeps the comparisons
    bounded (about n^2 / distinct values per rule) instead of every left record against every right one."""
    training: Training = Training()
    review: Review = Review()

    @field_validator("blocking_rules")
    @classmethod
    def _rules(cls, value: tuple[Rule, ...]) -> tuple[Rule, ...]:
        if not value:
            raise ValueError("give at least one blocking rule")
        return tuple(_non_empty(rule) for rule in value)


def load_settings(path: Path | None = None) -> LinkSettings:
    """The shipped settings, or ``path``'s keys over them; a bad file is one line naming it (exit 2)."""
    if path is None:
        return validated(
            LinkSettings, read_yaml(DEFAULT_FILE, "default.yaml", ContentError), "default.yaml", ContentError
        )
    document = read_yaml(path, path.name, ContentError)
    return validated(LinkSettings, {} if document is None else document, path.name, ContentError)
