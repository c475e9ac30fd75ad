"""Jena climate 2009-2016: 14 weather quantities every 10 minutes
(Max Planck Institute for Biogeochemistry), as used by the Keras
timeseries-forecasting example.
"""

from __future__ import annotations

import os
import posixpath
import urllib.parse
import warnings
import zipfile
from pathlib import Path

import pandas as pd

from ._cache import download
from .cleaning import DataError

__all__ = ["jena_climate", "JENA_URL", "JENA_SHA256", "JENA_CSV"]

JENA_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/jena_climate_2009_2016.csv.zip"
# Unknown: the archive could not be fetched when this loader was written, so
# its checksum is not pinned. Until it is, downloading from JENA_URL needs an
# explicit ``sha256=`` (or a local ``path=``).
JENA_SHA256 = None
JENA_CSV = "jena_climate_2009_2016.csv"
JENA_URL_ENV = "RNNKIT_JENA_URL"
TIME_COLUMN = "Date Time"
TIME_FORMAT = "%d.%m.%Y %H:%M:%S"


def _read(path):
    """Read the Jena CSV from ``path``, a .csv file or a zip archive holding it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No Jena climate file at {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist()
                       if n.lower().endswith(".csv") and not n.startswith("__MACOSX/")]
            if not members:
                raise DataError(f"{path} holds no CSV file.")
            member = next((n for n in members if posixpath.basename(n) == JENA_CSV), members[0])
            with archive.open(member) as f:
                frame = pd.read_csv(f)
    else:
        frame = pd.read_csv(path)
    if TIME_COLUMN not in frame.columns:
        raise DataError(f"{path} is not in the Jena climate format: it has no '{TIME_COLUMN}' column "
                        f"(found {', '.join(map(str, frame.columns[:5]))}, ...).")
    try:
        frame[TIME_COLUMN] = pd.to_datetime(frame[TIME_COLUMN], format=TIME_FORMAT)
    except ValueError as exc:
        raise DataError(f"{path}: '{TIME_COLUMN}' values must look like 01.01.2009 00:10:00 ({exc})") from None
    return frame


def jena_climate(path=None, *, url=None, sha256=None):
    """Load the Jena climate table as a DataFrame.

    Reads ``path`` (the CSV or its zip) when given. Otherwise the zip is
    downloaded once into the cache from ``url``, the ``RNNKIT_JENA_URL``
    environment variable, or :data:`JENA_URL`, in that order, and verified
    against ``sha256`` (default :data:`JENA_SHA256`). An overridden address
    may be used without a checksum (it is then not verified); the default
    address needs a known checksum, which rnnkit does not pin yet.

    Returns the rows in file order, with ``"Date Time"`` parsed to datetimes
    and the 14 measurement columns, e.g. ``"T (degC)"``, as float64.
    """
    if path is not None:
        return _read(path)
    override = url or os.environ.get(JENA_URL_ENV)
    source = override or JENA_URL
    expected = sha256 or (None if override else JENA_SHA256)
    if expected is None:
        if not override:
            raise ValueError(
                "The SHA-256 of the Jena climate archive is not pinned in rnnkit, so it cannot "
                "be verified. Pass path= to a local copy of jena_climate_2009_2016.csv(.zip), or "
                f"sha256= with the checksum you trust for {JENA_URL}."
            )
        warnings.warn(f"Downloading {source} without checksum verification.", stacklevel=2)
    filename = posixpath.basename(urllib.parse.urlparse(source).path) or f"{JENA_CSV}.zip"
    return _read(download(source, filename, expected, subdir="jena"))
