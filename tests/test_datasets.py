"""The real data sets of lstm_zero_lib.book.datasets: counts, shapes, dtypes, checksums,
published facts, and the error a missing optional package gives."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import re
import sys
from collections import Counter
from importlib import resources
from typing import Any

import pytest
import torch

import lstm_zero_lib.book
from lstm_zero_lib.book import datasets
from lstm_zero_lib.book.datasets import load_japanese_vowels, load_nyc_weather

DATA = resources.files("lstm_zero_lib.book").joinpath("data")

# ------------------------------------------------------------------- Japanese Vowels

# Published by UCI (size_ae.train / size_ae.test): utterances per speaker 1..9.
TRAIN_PER_SPEAKER = [30] * 9
TEST_PER_SPEAKER = [31, 35, 88, 44, 29, 24, 40, 50, 29]


@pytest.fixture(scope="module")
def vowels() -> dict[str, tuple[list[torch.Tensor], torch.Tensor]]:
    return {split: load_japanese_vowels(split) for split in ("train", "test")}


@pytest.mark.parametrize(
    ("split", "n", "per_speaker"),
    [("train", 270, TRAIN_PER_SPEAKER), ("test", 370, TEST_PER_SPEAKER)],
)
def test_japanese_vowels_counts_shapes_dtypes(
    vowels: dict[str, tuple[list[torch.Tensor], torch.Tensor]],
    split: str,
    n: int,
    per_speaker: list[int],
) -> None:
    sequences, labels = vowels[split]
    assert isinstance(sequences, list) and len(sequences) == n
    assert labels.shape == (n,) and labels.dtype == torch.int64
    for x in sequences:
        assert x.dtype == torch.float32 and x.ndim == 2 and x.shape[1] == 12
        assert 7 <= x.shape[0] <= 29
        assert x.is_contiguous() and torch.isfinite(x).all()
    counts = Counter(labels.tolist())
    assert [counts[k] for k in range(9)] == per_speaker
    # Published order: the utterances of speaker 1 first, then speaker 2, ...
    assert torch.equal(labels, torch.repeat_interleave(torch.arange(9), torch.tensor(per_speaker)))


def test_japanese_vowels_lengths_span_7_to_29(
    vowels: dict[str, tuple[list[torch.Tensor], torch.Tensor]],
) -> None:
    lengths = [x.shape[0] for split in ("train", "test") for x in vowels[split][0]]
    assert (min(lengths), max(lengths)) == (7, 29)
    # Frames in all, measured once on the verified files (9,961 together).
    assert sum(x.shape[0] for x in vowels["train"][0]) == 4274
    assert sum(x.shape[0] for x in vowels["test"][0]) == 5687


def test_japanese_vowels_values_match_the_uci_files(
    vowels: dict[str, tuple[list[torch.Tensor], torch.Tensor]],
) -> None:
    sequences, _ = vowels["train"]
    # First line of UCI's ae.train (frame 1 of utterance 1, 12 coefficients) and the
    # lengths of its first six blocks: the .ts copy keeps UCI's values, layout and order.
    first_frame = [1.860936, -0.207383, 0.261557, -0.214562, -0.171253, -0.118167]
    first_frame += [-0.277557, 0.025668, 0.126701, -0.306756, -0.213076, 0.088728]
    torch.testing.assert_close(sequences[0][0], torch.tensor(first_frame), rtol=0, atol=1e-6)
    assert [x.shape[0] for x in sequences[:6]] == [20, 26, 22, 20, 21, 23]
    # Summary statistics of the whole split, computed once from the verified files.
    totals = {"train": -1057.4523, "test": -2146.5134}
    for split, total in totals.items():
        values = torch.cat(vowels[split][0]).double()
        assert values.sum().item() == pytest.approx(total, abs=1e-3)


def test_japanese_vowels_returns_fresh_tensors() -> None:
    first, _ = load_japanese_vowels("train")
    first[0].zero_()
    again, _ = load_japanese_vowels("train")
    assert again[0].abs().sum() > 0


@pytest.mark.parametrize("split", ["TRAIN", "valid", "", None])
def test_japanese_vowels_rejects_unknown_split(split: Any) -> None:
    with pytest.raises(ValueError, match=r"split must be 'train' or 'test', got"):
        load_japanese_vowels(split)


# --------------------------------------------------------------------------- checksums


def _readme_hashes() -> dict[str, str]:
    text = DATA.joinpath("README.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\| `([\w.]+\.gz)` \|.*?\| `([0-9a-f]{64})` \|", text, re.M))


def test_shipped_files_have_the_published_sha256() -> None:
    readme = _readme_hashes()
    assert readme == datasets._SHA256  # the README documents exactly what the loaders check
    for name, expected in datasets._SHA256.items():
        raw = gzip.decompress(DATA.joinpath(name).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == expected


@pytest.mark.parametrize(
    ("name", "load"),
    [
        ("JapaneseVowels_TRAIN.ts.gz", lambda: load_japanese_vowels("train")),
        ("JapaneseVowels_TEST.ts.gz", lambda: load_japanese_vowels("test")),
        ("nycflights13_weather.csv.gz", load_nyc_weather),
    ],
)
def test_a_file_that_fails_its_checksum_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, load: Any
) -> None:
    monkeypatch.setitem(datasets._SHA256, name, "0" * 64)
    with pytest.raises(OSError, match=re.escape(name) + r".*expected 0{64}"):
        load()


def test_a_malformed_ts_file_is_refused() -> None:
    good = "@problemName x\n@dimensions 12\n@classLabel true 1 2 3 4 5 6 7 8 9\n@data\n"
    row = ":".join(["1.0,2.0"] * 12) + ":3\n"
    sequences, labels = datasets._parse_ts(good + row, "x.ts")
    assert sequences[0].shape == (2, 12) and labels.tolist() == [2]
    ragged = ":".join(["1.0,2.0"] * 11 + ["1.0"]) + ":3\n"
    with pytest.raises(ValueError, match=r"x\.ts: case 1 .* lengths \[1, 2\]"):
        datasets._parse_ts(good + ragged, "x.ts")
    with pytest.raises(ValueError, match=r"unexpected \.ts header"):
        datasets._parse_ts(good.replace("@dimensions 12", "@dimensions 3") + row, "x.ts")


# ------------------------------------------------------------------------- NYC weather

COLUMNS = ["origin", "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir"]
COLUMNS += ["wind_speed", "wind_gust", "precip", "pressure", "visib", "time_hour"]


@pytest.fixture(scope="module")
def weather() -> Any:
    return load_nyc_weather()


def test_nyc_weather_shape_columns_dtypes(weather: Any) -> None:
    pd = pytest.importorskip("pandas")
    assert weather.shape == (26115, 15)
    assert list(weather.columns) == COLUMNS
    assert weather["origin"].tolist()[:1] == ["EWR"]
    assert pd.api.types.is_string_dtype(weather["origin"])
    for column in ["year", "month", "day", "hour"]:
        assert weather[column].dtype == "int64"
    for column in COLUMNS[5:-1]:
        assert weather[column].dtype == "float64", column
    dtype = weather["time_hour"].dtype
    assert isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "America/New_York"
    assert weather.groupby("origin").size().to_dict() == {"EWR": 8703, "JFK": 8706, "LGA": 8706}
    assert (weather["year"] == 2013).all()


def test_nyc_weather_keeps_its_gaps(weather: Any) -> None:
    missing = weather.isna().sum().to_dict()
    assert missing["pressure"] == 2729 and missing["wind_gust"] == 20778
    assert missing["pressure"] / len(weather) == pytest.approx(0.1045, abs=1e-4)
    assert missing["wind_gust"] / len(weather) == pytest.approx(0.7956, abs=1e-4)
    assert missing["wind_dir"] == 460 and missing["wind_speed"] == 4 and missing["temp"] == 1
    assert missing["origin"] == missing["time_hour"] == missing["visib"] == 0
    # Hours absent: each airport has fewer rows than hours between its first and last row.
    for _, rows in weather.groupby("origin"):
        span_hours = (rows["time_hour"].max() - rows["time_hour"].min()).total_seconds() / 3600
        assert rows["time_hour"].is_unique and len(rows) < span_hours + 1


def test_nyc_weather_keeps_its_invalid_readings(weather: Any) -> None:
    pd = pytest.importorskip("pandas")
    extreme = weather[weather["wind_speed"] > 100]
    assert len(extreme) == 1
    row = extreme.iloc[0]
    assert row["origin"] == "EWR" and row["wind_speed"] == pytest.approx(1048.36058)
    assert row["time_hour"] == pd.Timestamp("2013-02-12 03:00", tz="America/New_York")


def test_nyc_weather_time_is_local_and_sorted(weather: Any) -> None:
    local = weather["time_hour"]
    assert (local.dt.year == weather["year"]).all() and (local.dt.month == weather["month"]).all()
    assert (local.dt.day == weather["day"]).all() and (local.dt.hour == weather["hour"]).all()
    ordered = weather.sort_values(["origin", "time_hour"], kind="stable")
    assert ordered.index.equals(weather.index)
    # The first row of the source: EWR, 2013-01-01 06:00 UTC = 01:00 in New York.
    assert str(local.iloc[0].tz_convert("UTC")) == "2013-01-01 06:00:00+00:00"


def test_nyc_weather_summary_statistics(weather: Any) -> None:
    means = weather[["temp", "dewp", "humid", "pressure", "visib"]].mean()
    expected = {"temp": 55.2604, "dewp": 41.4400, "humid": 62.5301, "pressure": 1017.8988}
    for column, value in expected.items():
        assert means[column] == pytest.approx(value, abs=1e-3), column
    assert means["visib"] == pytest.approx(9.2554, abs=1e-3)


# -------------------------------------------------------------- missing optional package


def test_missing_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install 'lstm-zero-lib[book]'")):
        load_nyc_weather()


def test_module_and_vowels_work_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    monkeypatch.delitem(sys.modules, "lstm_zero_lib.book.datasets")
    # The import below rebinds the package attribute; restore it afterwards as well.
    monkeypatch.setattr(lstm_zero_lib.book, "datasets", datasets)
    fresh = importlib.import_module("lstm_zero_lib.book.datasets")
    assert fresh is not datasets
    sequences, labels = fresh.load_japanese_vowels("test")
    assert len(sequences) == labels.numel() == 370
    with pytest.raises(ModuleNotFoundError, match=r"lstm-zero-lib\[book\]") as info:
        fresh.load_nyc_weather()
    assert info.value.name == "pandas"
