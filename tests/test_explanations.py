"""The plain-English explanations: one for every segment, need tier and cohort the content defines, readable, and
the FHIR CodeSystem published from them kept in step."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from openphm.cohorts.definitions import load_cohorts
from openphm.content import content_path
from openphm.content.validation import ContentError
from openphm.explanations import CODESYSTEM_FILE, codesystem, codesystem_json, load_explanations
from openphm.segments.rules import load_rules


def test_every_segment_need_tier_and_cohort_has_an_explanation() -> None:
    words = load_explanations()
    rules = load_rules()
    assert set(words.segments) == set(rules.precedence)
    assert set(words.need_tiers) == {tier.tier for tier in rules.need_tiers}
    assert set(words.cohorts) == set(load_cohorts())
    for entry in [*words.segments.values(), *words.need_tiers.values(), *words.cohorts.values()]:
        assert "not" in entry.not_meant.lower()  # each says what it does not mean


def _syllables(word: str) -> int:
    """A vowel-group estimate of a word's syllables (a silent final 'e' not counted)."""
    groups = len(re.findall(r"[aeiouy]+", word.lower()))
    if word.lower().endswith("e") and not word.lower().endswith("le") and groups > 1:
        groups -= 1
    return max(groups, 1)


def flesch(text: str) -> float:
    """Flesch reading ease (Flesch 1948): 206.835 - 1.015 words/sentence - 84.6 syllables/word."""
    sentences = [s for s in re.split(r"[.!?:]+", text) if s.strip()]
    words = re.findall(r"[A-Za-z&']+", text)
    return 206.835 - 1.015 * len(words) / len(sentences) - 84.6 * sum(map(_syllables, words)) / len(words)


def test_the_words_read_like_a_patient_leaflet() -> None:
    """Flesch reading ease of 60-70 is plain English; each text scores at least 55 and they average at least 65."""
    assert (
        flesch("The cat sat on the mat.")
        > 100
        > flesch(
            "Multimorbidity necessitates comprehensive pharmacological reconciliation and individualised care planning."
        )
    )
    words = load_explanations()
    scores = [flesch(e.text()) for e in [*words.segments.values(), *words.need_tiers.values(), *words.cohorts.values()]]
    assert min(scores) >= 55 and sum(scores) / len(scores) >= 65


def test_the_packaged_codesystem_is_generated_from_the_explanations() -> None:
    packaged = content_path("explanations", CODESYSTEM_FILE).read_text(encoding="utf-8")
    published = (Path(__file__).parents[1] / "docs" / "fhir" / CODESYSTEM_FILE).read_text(encoding="utf-8")
    assert packaged == published == codesystem_json(), "run: python scripts/generate_docs.py"
    system = json.loads(packaged)
    assert system["resourceType"] == "CodeSystem" and system["count"] == len(system["concept"]) == 1 + 8 + 11
    assert len({c["code"] for c in codesystem()["concept"]}) == system["count"]


def test_a_malformed_explanations_file_is_one_line(tmp_path: Path) -> None:
    source = content_path("explanations", "explanations.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "explanations.yaml"
    broken.write_text(source.replace("    may_offer: Health checks", "    may_ofer: Health checks", 1))
    with pytest.raises(ContentError) as raised:
        load_explanations(broken)
    assert str(raised.value).startswith("explanations.yaml: field 'segments.healthy.") and "\n" not in str(raised.value)
