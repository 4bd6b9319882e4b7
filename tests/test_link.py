"""phm link: cleaning, the NHS-number step, Splink on a generated benchmark with known truth, the outputs."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from openphm.cli import app
from openphm.errors import InputError, OpenPHMError
from openphm.link.benchmark import Benchmark, generate, nhs_number, pairwise_quality
from openphm.link.clean import read_source, soundex
from openphm.link.linker import LinkError, link
from openphm.link.settings import DEFAULT_FILE, LinkSettings, Training, load_settings

HEADER = "record_id,nhs_number,given_name,family_name,date_of_birth,sex,postcode"


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Benchmark, Path]]:
    """The CI-size benchmark (about 2,000 records a side) linked once through the command line."""
    folder = tmp_path_factory.mktemp("link")
    data = _with_repeats(generate(2000, seed=11))
    data.left.write_csv(folder / "left.csv")
    data.right.write_csv(folder / "right.csv")
    result = CliRunner().invoke(
        app, ["link", str(folder / "left.csv"), str(folder / "right.csv"), "--out", str(folder / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "records linked in" in result.output
    yield data, folder / "out"


def _with_repeats(data: Benchmark) -> Benchmark:
    """The benchmark plus a second left record, under another given name, for 20 people whose valid NHS
    number is in the left extract only: one source holding a person twice, known only by the number."""
    right_numbers = data.right["nhs_number"].implode()
    alone = data.left.filter(
        pl.col("nhs_number").map_elements(lambda n: bool(n) and _valid(n), return_dtype=pl.Boolean)
        & ~pl.col("nhs_number").is_in(right_numbers)
    ).head(20)
    repeats = alone.with_columns(pl.lit("Jolyon").alias("given_name"), ("X" + pl.col("record_id")).alias("record_id"))
    truth = data.truth.join(alone.select("record_id"), on="record_id").with_columns(
        ("X" + pl.col("record_id")).alias("record_id")
    )
    return Benchmark(pl.concat([data.left, repeats]), data.right, pl.concat([data.truth, truth]))


def _map(out: Path) -> pl.DataFrame:
    return pl.read_csv(out / "link_map.csv", schema_overrides={"record_id": pl.String, "person_key": pl.String})


def test_default_settings_link_the_benchmark_with_precision_and_recall_above_95_percent(
    benchmark: tuple[Benchmark, Path],
) -> None:
    data, out = benchmark
    quality = pairwise_quality(_map(out), data.truth)
    assert quality.true_pairs > 1000
    assert quality.precision > 0.95, quality
    assert quality.recall > 0.95, quality


def test_every_record_appears_once_with_a_method_that_fits_its_probability(benchmark: tuple[Benchmark, Path]) -> None:
    data, out = benchmark
    link_map = _map(out)
    assert link_map.columns == ["source", "record_id", "person_key", "method", "match_probability"]
    assert (
        link_map.select("source", "record_id")
        .sort(pl.all())
        .equals(data.truth.select("source", "record_id").sort(pl.all()))
    )
    methods = {m: link_map.filter(pl.col("method") == m) for m in ("nhs_number", "probabilistic", "unlinked")}
    assert sum(f.height for f in methods.values()) == link_map.height
    assert all(f.height > 100 for f in methods.values())
    assert methods["nhs_number"]["match_probability"].eq(1.0).all()
    assert methods["probabilistic"]["match_probability"].min() >= 0.9  # the default threshold
    assert methods["unlinked"]["match_probability"].is_null().all()
    # an unlinked record's key is its own; a linked record's key is shared with the other source
    keys = link_map.group_by("person_key").agg(pl.col("source").n_unique().alias("sources"), pl.len().alias("n"))
    unlinked_keys = keys.join(methods["unlinked"].select("person_key"), on="person_key", how="semi")
    assert unlinked_keys["sources"].eq(1).all()
    linked_keys = keys.join(methods["probabilistic"].select("person_key"), on="person_key", how="semi")
    assert linked_keys["sources"].eq(2).all()


def test_equal_valid_nhs_numbers_always_share_a_key_and_keys_do_not_reveal_them(
    benchmark: tuple[Benchmark, Path],
) -> None:
    data, out = benchmark
    link_map = _map(out)
    numbers = pl.concat(
        [
            data.left.select("record_id", "nhs_number", pl.lit("left").alias("source")),
            data.right.select("record_id", "nhs_number", pl.lit("right").alias("source")),
        ]
    )
    valid = pl.Series([n for n in numbers["nhs_number"].to_list() if n and _valid(n)])
    shared = numbers.filter(pl.col("nhs_number").is_in(valid.implode())).join(link_map, on=["source", "record_id"])
    assert shared.filter(pl.col("record_id").str.starts_with("X")).height == 20  # the repeats are checked too
    per_number = shared.group_by("nhs_number").agg(
        pl.col("person_key").n_unique(), pl.col("source").n_unique().alias("s")
    )
    assert per_number["person_key"].eq(1).all()
    both = shared.join(per_number.filter(pl.col("s") == 2), on="nhs_number", how="semi")
    assert both.height > 200 and both["method"].eq("nhs_number").all()
    assert link_map["person_key"].str.contains(r"^P[0-9]{8}$").all()
    assert not link_map["person_key"].str.slice(1).is_in(valid.str.slice(2).implode()).any()


def _valid(number: str) -> bool:
    digits = [int(d) for d in number]
    check = (11 - sum(d * (10 - i) for i, d in enumerate(digits[:9])) % 11) % 11
    return len(digits) == 10 and check != 10 and check == digits[9]


def test_the_report_is_offline_marked_identifiable_and_shows_threshold_and_subgroup_rates(
    benchmark: tuple[Benchmark, Path],
) -> None:
    _, out = benchmark
    html = (out / "link_report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href|action|poster|data)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<script" not in html and "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html  # the page may load nothing, whatever a value holds
    assert "holds identifiable data" in html
    assert re.search(r'<strong id="threshold">0\.9</strong>', html)
    assert "IMD quintile" in html and "1 (most deprived)" in html and "age band" in html
    assert html.count('<rect class="bar"') > 10  # the match-weight histogram
    review = re.search(r"Clerical-review sample</h2>(.*?)<h2>", html, re.DOTALL)
    assert review is not None
    weights = [
        float(w) for w in re.findall(r'<tr class="[a-z]*"><td class="n" rowspan="2">(-?[0-9.]+)</td>', review.group(1))
    ]
    assert 10 <= len(weights) <= 40 and review.group(1).count("<td>left</td>") == len(weights)
    assert all(abs(w - 3.17) <= 3.01 for w in weights)  # within 3 bits of log2(0.9 / 0.1) = 3.17
    assert weights == sorted(weights, reverse=True)


def test_the_nhs_number_step_alone_links_with_probability_one(tmp_path: Path) -> None:
    rng = __import__("numpy").random.default_rng(5)
    numbers = [nhs_number(rng) for _ in range(6)]
    left = [f"a{i},{n},ANN,SMITH,1950-01-0{i + 1},F,LS6 2AB" for i, n in enumerate(numbers)]
    right = [f"b{i},{n[:3]} {n[3:6]} {n[6:]},,,,," for i, n in enumerate(reversed(numbers))]
    (tmp_path / "l.csv").write_text("\n".join([HEADER, *left]) + "\n")
    (tmp_path / "r.csv").write_text("\n".join([HEADER, *right]) + "\n")
    result = link(tmp_path / "l.csv", tmp_path / "r.csv", load_settings())
    link_map = result.link_map
    assert link_map.height == 12
    assert link_map["method"].eq("nhs_number").all() and link_map["match_probability"].eq(1.0).all()
    pairs = link_map.filter(pl.col("source") == "left").join(
        link_map.filter(pl.col("source") == "right"), on="person_key"
    )
    assert sorted(zip(pairs["record_id"], pairs["record_id_right"], strict=True)) == [
        (f"a{i}", f"b{5 - i}") for i in range(6)
    ]
    assert result.levels == ()  # nothing was left for the model


def test_cleaning_makes_differently_written_values_equal(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(
        "Record_ID,NHS_Number,Given_Name,Family_Name,Date_Of_Birth,Sex,Postcode\n"
        "1,943 476 5919,Zoë,O'Brien,04/03/2001,female,ls62ab\n"
        "2,9434765910,JOSÉ-MARÍA,smith-jones,2001-02-30,1, LS6  2AB \n"
        "3,,,,31/12/1999,x,NOT A POSTCODE\n",
        encoding="utf-8",
    )
    source = read_source(tmp_path / "x.csv", "left")
    rows = source.frame.to_dicts()
    # 943 476 5919 is NHS Digital's documented example number; 943 476 5910 breaks its check digit
    assert [r["nhs_number"] for r in rows] == ["9434765919", None, None]
    assert [(r["given_name"], r["family_name"]) for r in rows] == [
        ("ZOE", "OBRIEN"),
        ("JOSE MARIA", "SMITH JONES"),
        (None, None),
    ]
    assert [r["date_of_birth"] for r in rows] == ["2001-03-04", None, "1999-12-31"]
    assert [r["sex"] for r in rows] == ["F", "M", None]
    assert [(r["postcode"], r["postcode_sector"], r["postcode_district"]) for r in rows] == [
        ("LS6 2AB", "LS6 2", "LS6"),
        ("LS6 2AB", "LS6 2", "LS6"),
        (None, None, None),
    ]
    assert source.present["nhs_number"] == 2 and source.usable["nhs_number"] == 1
    assert source.absent_columns == ()


def test_soundex_matches_the_published_examples() -> None:
    # The US National Archives' worked examples of the Soundex rules (H and W do not separate equal codes)
    examples = {
        "ROBERT": "R163",
        "RUPERT": "R163",
        "RUBIN": "R150",
        "ASHCRAFT": "A261",
        "TYMCZAK": "T522",
        "PFISTER": "P236",
        "HONEYMAN": "H555",
        "LEE": "L000",
    }
    assert {name: soundex(name) for name in examples} == examples


def test_an_lsoa_column_gives_the_imd_quintile(tmp_path: Path) -> None:
    # E01000001 (City of London 001A) is in IMD 2019 decile 9, so quintile 5
    (tmp_path / "x.csv").write_text(f"{HEADER},lsoa_code\n1,,,,,,,E01000001\n2,,,,,,,E99999999\n")
    assert read_source(tmp_path / "x.csv", "left").frame["imd_quintile"].to_list() == [5, None]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nhs_number,given_name\n9434765919,ZELDA\n", "left file l.csv: no record_id column"),
        (f"{HEADER}\nSECRET1,9434765919,ZELDA,QUIXOTE,,,\n,,ZELDA,,,,\n", "left file l.csv: row 2 has no record_id"),
        (
            f"{HEADER}\nSECRET1,,ZELDA,,,,\nOTHER2,,,,,,\nSECRET1,,QUIXOTE,,,,\n",
            "left file l.csv: record_id is not unique: rows 1 and 3 share one",
        ),
        (b"record_id,given_name\n\xff\xfeZELDA,\x00\n", "left file l.csv: cannot be read as a UTF-8 CSV file"),
        (f"{HEADER}\n", "left file l.csv: no records"),
    ],
    ids=["no-record-id-column", "empty-record-id", "duplicate-record-id", "not-utf8", "empty"],
)
def test_bad_input_is_one_line_without_any_value(tmp_path: Path, content: str | bytes, message: str) -> None:
    left = tmp_path / "l.csv"
    left.write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "r.csv").write_text(f"{HEADER}\nx,,,,,,\n")
    with pytest.raises(InputError) as raised:
        link(left, tmp_path / "r.csv", load_settings())
    line = str(raised.value)
    assert message in line and "\n" not in line and raised.value.exit_code == 2
    assert not any(value in line for value in ("SECRET1", "ZELDA", "QUIXOTE", "9434765919", "OTHER2"))


def test_the_command_turns_bad_input_into_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text(f"{HEADER}\nSECRET1,,ZELDA,,,,\nSECRET1,,,,,,\n")
    (tmp_path / "r.csv").write_text(f"{HEADER}\nx,,,,,,\n")
    result = CliRunner().invoke(
        app, ["link", str(tmp_path / "l.csv"), str(tmp_path / "r.csv"), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: left file l.csv: record_id is not unique: rows 1 and 2 share one (1 repeated values in all)"
    ]
    assert not (tmp_path / "o").exists()


def test_a_missing_file_and_an_unknown_engine_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text(f"{HEADER}\nx,,,,,,\n")
    with pytest.raises(InputError, match=r"left file nope\.csv: cannot be read"):
        link(tmp_path / "nope.csv", tmp_path / "r.csv", load_settings())
    with pytest.raises(OpenPHMError, match="phm link runs on duckdb or spark, not on 'polars'"):
        link(tmp_path / "r.csv", tmp_path / "r.csv", load_settings(), engine="polars")


def test_the_shipped_file_and_the_model_defaults_agree() -> None:
    shipped = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))
    assert LinkSettings.model_validate(shipped) == LinkSettings()
    assert LinkSettings().model_dump(mode="json") == LinkSettings.model_validate(shipped).model_dump(mode="json")


def test_a_settings_file_changes_only_its_keys_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "link.yaml"
    config.write_text("threshold: 0.95\ntraining:\n  seed: 7\n")
    settings = load_settings(config)
    assert (settings.threshold, settings.training.seed) == (0.95, 7)
    assert settings.blocking_rules == LinkSettings().blocking_rules
    config.write_text("threshold: 0.95\ncomparisons:\n  given_name:\n    jaro_winkle: [0.9]\n")
    with pytest.raises(OpenPHMError, match=r"link.yaml: field 'comparisons.given_name.jaro_winkle': unknown field"):
        load_settings(config)
    config.write_text("training:\n  em_rules: [[date_of_birth]]\n")
    with pytest.raises(OpenPHMError, match="at least two rules"):
        load_settings(config)


def test_without_splink_the_command_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "r.csv").write_text(f"{HEADER}\nx,,,,,,\n")
    monkeypatch.setitem(sys.modules, "splink", None)  # import splink now raises ImportError
    with pytest.raises(LinkError, match=r"pip install 'openphm\[link\]'") as raised:
        link(tmp_path / "r.csv", tmp_path / "r.csv", load_settings())
    assert raised.value.exit_code == 2


@pytest.mark.spark
@pytest.mark.link_spark
def test_spark_engine_links_a_small_benchmark(tmp_path: Path) -> None:
    data = generate(150, seed=3)
    data.left.write_csv(tmp_path / "left.csv")
    data.right.write_csv(tmp_path / "right.csv")
    settings = LinkSettings(training=Training(u_max_pairs=20_000, em_max_iterations=5))
    result = link(tmp_path / "left.csv", tmp_path / "right.csv", settings, engine="spark")
    quality = pairwise_quality(result.link_map, data.truth)
    assert quality.precision > 0.95 and quality.recall > 0.95, quality
    assert result.link_map.height == data.truth.height


def test_extracts_of_different_people_stop_instead_of_linking_strangers(tmp_path: Path) -> None:
    # EM on pairs with no true match learns nothing about agreement; linking on Splink's defaults would
    # join strangers who share a common name
    generate(400, seed=1).left.write_csv(tmp_path / "l.csv")
    generate(400, seed=2).right.write_csv(tmp_path / "r.csv")
    quick = LinkSettings(training=Training(u_max_pairs=50_000, em_max_iterations=3))
    with pytest.raises(LinkError, match=r"the model could not be estimated: .* do the two extracts share people"):
        link(tmp_path / "l.csv", tmp_path / "r.csv", quick)
