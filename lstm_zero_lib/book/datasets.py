"""Real data sets for the book, loaded offline from files shipped inside the package.

Nothing is downloaded: the files live in ``lstm_zero_lib/book/data`` (gzip-compressed
copies of the published files, with their licences and sources in ``data/README.md``)
and every load checks the SHA-256 of the decompressed bytes against the published file's,
so a corrupted or replaced file fails loudly instead of giving different numbers.

* :func:`load_japanese_vowels`: the UCI Japanese Vowels speaker-recognition data set
  (Kudo, Toyama and Shimbo 1999), CC BY 4.0; needs torch only.
* :func:`load_nyc_weather`: hourly weather at the three New York City airports in 2013
  from nycflights13 (Wickham), CC0; needs pandas (the ``book`` extra).
"""

from __future__ import annotations

import gzip
import hashlib
import io
from importlib import resources
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

if TYPE_CHECKING:
    import pandas  # type: ignore[import-untyped]

__all__ = ["load_japanese_vowels", "load_nyc_weather"]

# SHA-256 of the files as published (before our gzip compression): the same bytes as
# sktime 1.2.0's sktime/datasets/data/JapaneseVowels/*.ts and nycflights13 0.0.3's
# nycflights13/data/weather.csv, so anyone can check the copies against the originals.
_SHA256 = {
    "JapaneseVowels_TRAIN.ts.gz": (
        "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd"
    ),
    "JapaneseVowels_TEST.ts.gz": (
        "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462"
    ),
    "nycflights13_weather.csv.gz": (
        "5d1ea2548a3941eac0b4a9ca70805daa9fa49bbb711a0c7557b2bba0bd7c3f64"
    ),
}

_BOOK_EXTRA = "pip install 'lstm-zero-lib[book]'"

# Number of LPC cepstrum coefficients per frame in Japanese Vowels.
_N_COEFFICIENTS = 12
# Number of speakers (classes) in Japanese Vowels.
_N_SPEAKERS = 9


def _read_verified(name: str) -> bytes:
    """Decompressed bytes of a shipped data file, after checking its SHA-256."""
    path = resources.files(__package__ or "lstm_zero_lib.book") / "data" / name
    raw = gzip.decompress(path.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    expected = _SHA256[name]
    if digest != expected:
        raise OSError(
            f"data file {name!r} is not the published file: SHA-256 of its contents is "
            f"{digest}, expected {expected}; reinstall lstm-zero-lib (or restore "
            f"lstm_zero_lib/book/data/{name} from git)"
        )
    return raw


def _parse_ts(text: str, name: str) -> tuple[list[Tensor], Tensor]:
    """Parse a multivariate, unequal-length ``.ts`` file (sktime/aeon format)."""
    lines = iter(text.splitlines())
    header: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower() == "@data":
            break
        key, _, value = line[1:].partition(" ")
        header[key.lower()] = value.strip()
    expected_labels = "true " + " ".join(str(k) for k in range(1, _N_SPEAKERS + 1))
    if header.get("dimensions") != str(_N_COEFFICIENTS) or header.get("classlabel") != (
        expected_labels
    ):
        raise ValueError(f"{name}: unexpected .ts header {header}")
    sequences: list[Tensor] = []
    labels: list[int] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        *dims, label = line.strip().split(":")
        # Each dimension is one comma-separated series over time: (12, T) -> (T, 12).
        series = [[float(v) for v in dim.split(",")] for dim in dims]
        if len(series) != _N_COEFFICIENTS or len({len(s) for s in series}) != 1:
            raise ValueError(
                f"{name}: case {number} has {len(series)} dimensions of lengths "
                f"{sorted({len(s) for s in series})}, expected {_N_COEFFICIENTS} of one length"
            )
        sequences.append(torch.tensor(series, dtype=torch.float32).T.contiguous())
        labels.append(int(label) - 1)
    return sequences, torch.tensor(labels, dtype=torch.int64)


def load_japanese_vowels(split: Literal["train", "test"]) -> tuple[list[Tensor], Tensor]:
    """The UCI Japanese Vowels data set: which of 9 speakers uttered a vowel.

    Nine male Japanese speakers uttered the vowels /ae/ in succession; each utterance was
    reduced by 12-degree linear prediction analysis to a sequence of 12 LPC cepstrum
    coefficients per frame, 7 to 29 frames long. 270 training utterances (30 per speaker)
    and 370 test utterances (31, 35, 88, 44, 29, 24, 40, 50 and 29 for speakers 1 to 9).

    Parameters
    ----------
    split
        ``"train"`` or ``"test"``, the published split.

    Returns
    -------
    sequences
        One float32 tensor ``(T_i, 12)`` per utterance, in the published order (grouped
        by speaker, speaker 1 first).
    labels
        ``(N,)`` int64 speaker index in ``0..8`` (speaker ``k`` of the source is ``k - 1``).

    Raises
    ------
    ValueError
        If ``split`` is neither ``"train"`` nor ``"test"``.
    OSError
        If the shipped file does not have the published file's SHA-256.

    Notes
    -----
    Source: UCI Machine Learning Repository, "Japanese Vowels" (Kudo, Toyama and Shimbo,
    https://doi.org/10.24432/C5NS47), in the ``.ts`` format of the UEA & UCR time series
    classification archive (a conversion of UCI's ``ae.train``/``ae.test`` that keeps
    their values and speaker blocks in order) as shipped by sktime 1.2.0; shipped here
    gzip-compressed. Licence: CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).

    Citation: M. Kudo, J. Toyama and M. Shimbo (1999), "Multidimensional curve
    classification using passing-through regions", *Pattern Recognition Letters* 20
    (11--13), 1103--1111.

    Examples
    --------
    >>> sequences, labels = load_japanese_vowels("train")
    >>> len(sequences), sequences[0].shape, sequences[0].dtype
    (270, torch.Size([20, 12]), torch.float32)
    >>> labels.dtype, labels.min().item(), labels.max().item()
    (torch.int64, 0, 8)
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    name = f"JapaneseVowels_{split.upper()}.ts.gz"
    return _parse_ts(_read_verified(name).decode("utf-8"), name)


def load_nyc_weather() -> pandas.DataFrame:
    """Hourly weather at the New York City airports EWR, JFK and LGA in 2013, raw.

    The ``weather`` table of nycflights13: 26,115 rows (8,703 EWR, 8,706 JFK, 8,706
    LGA), sorted by airport then time, with its gaps and invalid readings kept, as
    published: ``pressure`` is missing in about 10 % of rows, ``wind_gust`` in about
    80 % (no gust was reported), some hours have no row at all, and EWR reports a wind
    speed of 1048 mph on 2013-02-12. Deciding what is invalid, and nulling it, is the
    caller's job.

    Returns
    -------
    pandas.DataFrame
        The published columns in the published order: ``origin`` (str), ``year``,
        ``month``, ``day``, ``hour`` (int64, local time, kept as published), ``temp``,
        ``dewp`` (°F), ``humid`` (%), ``wind_dir`` (degrees), ``wind_speed``,
        ``wind_gust`` (mph), ``precip`` (inches), ``pressure`` (millibars), ``visib``
        (miles), all float64 with NaN where the source has ``NA``; and ``time_hour``,
        a timezone-aware datetime in America/New_York (the source gives the same
        instants in UTC; local time agrees with ``year``/``month``/``day``/``hour``).

    Raises
    ------
    ModuleNotFoundError
        If pandas is not installed; the message names the extra that installs it.
    OSError
        If the shipped file does not have the published file's SHA-256.

    Notes
    -----
    Source: ``weather.csv`` of the nycflights13 Python package 0.0.3 (Michael Chow), a
    copy of the R data package nycflights13 by Hadley Wickham
    (https://github.com/hadley/nycflights13), whose weather comes from ASOS stations via
    the Iowa Environmental Mesonet; shipped here gzip-compressed. Licence: CC0
    (https://creativecommons.org/publicdomain/zero/1.0/).

    Examples
    --------
    >>> weather = load_nyc_weather()
    >>> weather.shape
    (26115, 15)
    >>> round(weather["wind_speed"].max())
    1048
    >>> str(weather["time_hour"].dt.tz)
    'America/New_York'
    """
    try:
        import pandas as pd
    except ImportError as err:
        raise ModuleNotFoundError(
            f"load_nyc_weather needs pandas, which the book extra installs: {_BOOK_EXTRA}",
            name="pandas",
        ) from err
    name = "nycflights13_weather.csv.gz"
    floats = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust"]
    floats += ["precip", "pressure", "visib"]
    dtypes = {"origin": "str", "year": "int64", "month": "int64", "day": "int64"}
    dtypes |= {"hour": "int64", "time_hour": "str"} | dict.fromkeys(floats, "float64")
    # Only the source's own "NA" marks a gap; any other token fails the float parse.
    weather = pd.read_csv(
        io.BytesIO(_read_verified(name)), dtype=dtypes, keep_default_na=False, na_values=["NA"]
    )
    weather["time_hour"] = pd.to_datetime(
        weather["time_hour"], format="%Y-%m-%dT%H:%M:%SZ", utc=True
    ).dt.tz_convert("America/New_York")
    return weather
