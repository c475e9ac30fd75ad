"""Timeseries classification data: the UCR/UEA archive files that PyPI ``aeon`` 1.6.0 ships, and
readers for the archive's ``.ts`` and ``.csv``/``.tsv`` layouts (users' own data sets).

``ucr_dataset("GunPoint")`` -> ``(train, test)``, two :class:`SeriesSet`. The files are
``aeon/datasets/data/<Name>/<Name>_{TRAIN,TEST}.ts`` inside aeon's 1.6.0 wheel (fetched with
``pip download --no-deps`` by :func:`rnnkit.datasets._cache.fetch_pypi_file`, never installed or
imported; each file SHA-256-checked against :data:`UCR_FILES` and cached): the standard
train/test splits as shipped.

The ``.ts`` format (sktime/aeon): ``#`` comment lines, ``@key value`` header lines (``@problemName``,
``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``, ``@classLabel true A B ...``),
then ``@data`` and one case per line: its dimensions separated by ``:``, each a comma-separated
list of values, the class label last. ``?`` (or ``NaN``) is a missing value; trailing missing
values of a dimension are padding and are dropped (variable-length series), missing values
inside a series are an error. The UCR ``.csv``/``.tsv`` layout: one series per line, the label
first, then the values (trailing empty or NaN cells: a shorter series).

    train, test = ucr_dataset("JapaneseVowels")
    train.series[0].shape      # (20, 12): (steps, channels), steps vary per case
    read_series_file("my_TRAIN.tsv")
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._naming import suggest
from ._cache import fetch_pypi_file
from .cleaning import DataError

__all__ = ["UCR_DATASETS", "UCR_FILES", "SeriesSet", "ucr_dataset", "read_series_file", "read_ts", "read_ucr_table"]

AEON = ("aeon", "1.6.0")

# name -> (TRAIN sha256, TEST sha256) of aeon/datasets/data/<name>/<name>_{TRAIN,TEST}.ts in aeon 1.6.0
UCR_FILES = {
    "GunPoint": ("f842401779fd9800d247d8b33121a1a4643710a19b24917dbdd9a060ca8630d5",
                 "79332750788a6227b325b96bd0d70130c8eb707b9731f8d7dec62b7a7d36017e"),
    "ItalyPowerDemand": ("341269cb7e6cef96846b30e774580beec79addb93848ba360145219115a74b7c",
                         "26122451f87dd0387ef90b18bc8a86c041371b8a1c068004922b939971247144"),
    "ArrowHead": ("a83c470aaf611a5f5284377cce27a5fc9f6292bc3d110257b0fd4905ced5ee72",
                  "5417dab42626d41df5e435bb22458c2df40dfad4bcd3b59559bbe72e20e84904"),
    "OSULeaf": ("86b9d6e860414ffd26cebc62fff84ffb37fa588ef3e5bf79e4094a437c36ddfc",
                "6c549dd354f9e42d5985fa5fab75321ca9acefc7873457e71467fc8a31f107ce"),
    "ACSF1": ("0646b90dc4843e02baed6b2ba345c5601a4991b6796565489cef1b2d92a7537b",
              "93e8aaeb44a10af181d24a156e60da7021193cd990ca28f263fccf3b905bfebf"),
    "PickupGestureWiimoteZ": ("4d303d9990df621c066fc454d62626e3721aed008462103500b86b1ac1ca92c8",
                              "a9109bce918e48ee0e924e9cf2fdfdc4de364a3d88ec5e8aa44399ff08b11361"),
    "BasicMotions": ("8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6",
                     "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc"),
    "JapaneseVowels": ("68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
                       "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462"),
}
UCR_DATASETS = tuple(UCR_FILES)


@dataclass
class SeriesSet:
    """Labelled series: ``series[i]`` is a float64 array (steps, channels); ``labels[i]`` a string
    (None when the file has no labels); ``classes``: the labels the file declares (or has), in order."""

    series: list
    labels: list | None
    classes: list
    source: str
    meta: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.series)

    @property
    def channels(self):
        return int(self.series[0].shape[1])

    @property
    def lengths(self):
        return np.array([len(s) for s in self.series])


def ucr_dataset(name):
    """(train, test) :class:`SeriesSet` of one of :data:`UCR_DATASETS` (the archive's split)."""
    known = {n.lower(): n for n in UCR_DATASETS}
    key = str(name).strip().lower()
    if key not in known:
        raise DataError(f"unknown data set '{name}'.{suggest(name, UCR_DATASETS)} "
                        f"Choose from {', '.join(UCR_DATASETS)} (or give your own files with --data/--test).")
    name = known[key]
    parts = []
    for split, digest in zip(("TRAIN", "TEST"), UCR_FILES[name]):
        member = f"aeon/datasets/data/{name}/{name}_{split}.ts"
        path = fetch_pypi_file(*AEON, member, digest)
        data = read_ts(path)
        data.source = f"aeon {AEON[1]} {member}"
        parts.append(data)
    return tuple(parts)


def read_series_file(path, labelled=True):
    """A ``.ts`` file, or a UCR ``.csv``/``.tsv`` table (label first unless ``labelled=False``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no series file at {path}")
    suffix = path.suffix.lower()
    if suffix == ".ts":
        return read_ts(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return read_ucr_table(path, labelled=labelled)
    raise DataError(f"{path}: unknown file type '{suffix}'; give a .ts file or a UCR .csv/.tsv table "
                    f"(label first, then the values).")


def _text_lines(path):
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8.") from None


def _number(text, where):
    text = text.strip()
    if text in ("?", "") or text.lower() == "nan":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{where}: {text[:20]!r} is not a number.") from None


def _strip_padding(values, where):
    """Drop trailing NaN (padding of a shorter series); NaN left inside is an error."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    end = len(values) if finite.all() else (int(np.flatnonzero(finite)[-1]) + 1 if finite.any() else 0)
    values = values[:end]
    if end == 0:
        raise DataError(f"{where}: the series has no values.")
    if not np.isfinite(values).all():
        at = int(np.flatnonzero(~np.isfinite(values))[0])
        raise DataError(f"{where}: missing or NaN value at step {at + 1} inside the series; "
                        f"fill it (e.g. interpolate) first.")
    return values


def read_ts(path):
    """A ``.ts`` file (see the module docstring) -> :class:`SeriesSet`."""
    header, cases, started = {}, [], False
    for number, raw in enumerate(_text_lines(path), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not started:
            if not line.startswith("@"):
                raise DataError(f"{path} line {number}: expected a @header line or @data before the values.")
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                started = True
            else:
                header[key] = value.strip()
            continue
        cases.append((number, line))
    if not started:
        raise DataError(f"{path}: no @data line; a .ts file needs its header, then @data, then one case a line.")
    if not cases:
        raise DataError(f"{path}: no cases after @data.")
    if header.get("timestamps", "false").lower() == "true":
        raise DataError(f"{path}: series with timestamps (@timeStamps true) are not supported; "
                        f"give the values only.")
    class_words = header.get("classlabel", "false").split()
    labelled = bool(class_words) and class_words[0].lower() == "true"
    declared = class_words[1:] if labelled else []
    dims = int(header["dimensions"]) if header.get("dimensions", "").isdigit() else None
    series, labels = [], []
    for number, line in cases:
        where = f"{path} line {number}"
        parts = line.split(":")
        if labelled:
            if len(parts) < 2:
                raise DataError(f"{where}: no class label (expected values:label).")
            label = parts.pop().strip()
            if declared and label not in declared:
                raise DataError(f"{where}: label '{label}' is not among the declared @classLabel "
                                f"{' '.join(declared)}.")
            labels.append(label)
        if dims is None:
            dims = len(parts)
        if len(parts) != dims:
            raise DataError(f"{where}: {len(parts)} dimensions, expected {dims} (ragged dimensions).")
        channels = [_strip_padding([_number(v, where) for v in p.split(",")], f"{where} dimension {d + 1}")
                    for d, p in enumerate(parts)]
        lengths = {len(c) for c in channels}
        if len(lengths) > 1:
            raise DataError(f"{where}: the dimensions have different lengths ({sorted(lengths)}); "
                            f"each dimension of a case must have one value per step.")
        series.append(np.stack(channels, axis=1))
    classes = declared or sorted(set(labels))
    return SeriesSet(series, labels if labelled else None, list(classes), str(path),
                     {"problem": header.get("problemname")})


def read_ucr_table(path, labelled=True):
    """A UCR ``.csv``/``.tsv`` table: one series a line, its label first (``labelled=True``), then
    the values; the delimiter is a tab for ``.tsv``, else a comma. -> univariate :class:`SeriesSet`."""
    lines = _text_lines(path)
    delimiter = "\t" if str(path).lower().endswith(".tsv") else ","
    series, labels = [], []
    for number, row in enumerate(csv.reader(lines, delimiter=delimiter), start=1):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path} line {number}"
        if labelled:
            labels.append(_label_text(row[0]))
            row = row[1:]
        series.append(_strip_padding([_number(v, where) for v in row], where)[:, None])
    if not series:
        raise DataError(f"{path}: no series (an empty file).")
    return SeriesSet(series, labels if labelled else None, sorted(set(labels), key=_label_key), str(path))


def _label_text(cell):
    """'1', '1.0' and '1.0000000e+00' are one class: integral numbers are written as integers."""
    label = cell.strip()
    try:
        value = float(label)
    except ValueError:
        return label
    return str(int(value)) if math.isfinite(value) and value.is_integer() else label


def _label_key(label):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
