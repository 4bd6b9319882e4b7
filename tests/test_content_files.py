"""Content files a user can replace: one validation mechanism, one-line errors, JSON Schemas, no stale cache."""

from __future__ import annotations

import shutil
from importlib.resources import as_file
from pathlib import Path

import pytest
import yaml

from openphm.analytics.settings import Settings
from openphm.codes import CodeSystemError, load_definitions
from openphm.cohorts.definitions import CohortFile
from openphm.content import content_path
from openphm.content.validation import ContentError, read_yaml, validated
from openphm.ingest import ingest
from openphm.options import RunOptions
from openphm.pipeline import run
from openphm.risk.efi import EfiSettings
from openphm.risk.model.features import FeaturesFile
from openphm.segments.rules import RulesFile
from openphm.stages import by_name
from tests.support.cli import one_line_error, phm
from tests.support.sources import ALICE, EXTRACT, KEY, person, store_path, write_source


def _user_codelists(tmp_path: Path, *ids: str) -> Path:
    """A user's code-list folder holding copies of some shipped definitions."""
    folder = tmp_path / "codelists"
    with as_file(content_path("codelists")) as shipped:
        for ident in ids:
            shutil.copytree(Path(shipped) / ident, folder / ident)
    return folder


def _edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / "manifest.yaml"
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    for field, value in changes.items():
        if value is None:
            del manifest[field]
        else:
            manifest[field] = value
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")


def _store(tmp_path: Path) -> Path:
    store = store_path(tmp_path, "duckdb")
    ingest(write_source(tmp_path / "source", {"person": [person(ALICE)]}), store, key=KEY, extract_date=EXTRACT)
    return store


def test_a_manifest_without_id_is_one_line_and_exit_2_through_the_cli(tmp_path: Path) -> None:
    store = _store(tmp_path)
    codelists = _user_codelists(tmp_path, "asthma")
    _edit_manifest(codelists / "asthma", id=None)
    line = one_line_error(phm("run", "--store", str(store), "--codelists", str(codelists)))
    assert line.endswith("asthma/manifest.yaml: field 'id': missing"), line


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"colour": "red"}, "field 'colour': unknown field"),
        ({"kind": "disease"}, "field 'kind': 'disease' is not one of 'condition', 'medicine'"),
        ({"id": "Asthma Local"}, "field 'id': String should match pattern"),
        ({"lookback_days": 0}, "field 'lookback_days': Input should be greater than or equal to 1"),
        ({"b2h": {"segment": "long_term_conditions"}}, "field 'b2h.subsegment': missing"),
    ],
)
def test_each_malformed_manifest_field_is_named(tmp_path: Path, changes: dict[str, object], expected: str) -> None:
    codelists = _user_codelists(tmp_path, "asthma")
    _edit_manifest(codelists / "asthma", **changes)
    with pytest.raises(CodeSystemError) as caught:
        load_definitions(codelists)
    message = str(caught.value)
    assert message.startswith("asthma/manifest.yaml: ") and expected in message, message
    assert "\n" not in message


def test_an_unknown_code_system_is_named_with_its_list(tmp_path: Path) -> None:
    codelists = _user_codelists(tmp_path, "asthma")
    manifest = yaml.safe_load((codelists / "asthma" / "manifest.yaml").read_text(encoding="utf-8"))
    manifest["files"][0]["system"] = "read2"
    (codelists / "asthma" / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    with pytest.raises(CodeSystemError, match=r"field 'files\[0\]\.system': unknown code system \(known: "):
        load_definitions(codelists)


def test_bad_yaml_is_one_line_with_its_line_number(tmp_path: Path) -> None:
    codelists = _user_codelists(tmp_path, "asthma")
    (codelists / "asthma" / "manifest.yaml").write_text("id: asthma\nname: [unclosed\n", encoding="utf-8")
    with pytest.raises(CodeSystemError, match=r"^asthma/manifest\.yaml: not valid YAML \(line \d+\)$"):
        load_definitions(codelists)


def test_a_list_of_named_rules_names_the_rule_not_its_position() -> None:
    document = {"name": "c", "title": "t", "include": [{"name": "old", "type": "demographic", "colour": "red"}]}
    with pytest.raises(ContentError) as caught:
        validated(CohortFile, document, "mine.yaml", ContentError, {"include": "rule", "exclude": "rule"})
    assert str(caught.value) == "mine.yaml: rule 'old': field 'colour': unknown field (a typing error?)"


@pytest.mark.parametrize(
    ("model", "parts"),
    [
        (Settings, ("analytics", "settings.yaml")),
        (EfiSettings, ("scores", "efi", "settings.yaml")),
        (FeaturesFile, ("model", "features.yaml")),
        (RulesFile, ("segments", "rules.yaml")),
    ],
)
def test_every_shipped_settings_file_meets_its_model(model: type, parts: tuple[str, ...]) -> None:
    validated(model, read_yaml(content_path(*parts), "/".join(parts), ContentError), "/".join(parts), ContentError)


def test_every_shipped_cohort_meets_the_published_cohort_model() -> None:
    files = [f for f in content_path("cohorts").iterdir() if f.name.endswith(".yaml")]
    assert len(files) >= 6
    for file in files:
        validated(CohortFile, read_yaml(file, file.name, ContentError), file.name, ContentError)


def test_settings_outside_their_rules_are_refused() -> None:
    document = read_yaml(content_path("analytics", "settings.yaml"), "settings.yaml", ContentError)
    assert isinstance(document, dict)
    with pytest.raises(ContentError, match="field 'forecast_age_groups': increasing multiples of 5"):
        validated(Settings, {**document, "forecast_age_groups": [0, 18]}, "settings.yaml", ContentError)


def test_an_edited_codelists_folder_is_read_again_in_the_same_process(tmp_path: Path) -> None:
    """The run's definitions are cached by folder; an edit to the folder must not be served stale."""
    store = _store(tmp_path)
    codelists = _user_codelists(tmp_path, "asthma")
    stages = [by_name()["population"], by_name()["register"]]
    run(store, stages=stages, options=RunOptions(codelists=codelists))
    _edit_manifest(codelists / "asthma", id=None)
    with pytest.raises(CodeSystemError, match="field 'id': missing"):
        run(store, stages=stages, options=RunOptions(codelists=codelists))
    _edit_manifest(codelists / "asthma", id="asthma")
    run(store, stages=stages, options=RunOptions(codelists=codelists))
