"""``rnnkit forecast predict``: forecasts for new data from a saved forecast model.

The new data goes through the same steps as the training data, with what was saved in
the model file: the same value columns (checked, then cleaned with the same gap rule),
the same engineered features, the training part's mean and std, and the same window
geometry. Every complete window gives one forecast, for ``horizon`` after its last sample.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from ... import load_model
from ...datasets import DataError, clean_timeseries
from ...plots import atomic_write
from ...utils import timeseries_dataset_from_array
from .. import UsageError
from . import data as D

TASK = "forecast"
METADATA_KEYS = ("target", "time_column", "raw_columns", "features", "feature_plan", "feature_mean",
                 "feature_std", "target_mean", "target_std", "step_seconds", "sampling_rate", "sequence_length",
                 "horizon_steps")


def load_forecaster(path):
    """``load_model`` plus a check that the file holds a forecast model with its metadata."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"No model file at {path}" + (" (it is a folder)" if path.is_dir() else "") + ".")
    model = load_model(path)
    meta = model.metadata or {}
    task = meta.get("task")
    if task != TASK:
        what = f"a '{task}' model" if task else "a model without a task in its metadata"
        raise UsageError(f"{path} holds {what}, not a forecast model; train one with 'rnnkit forecast'.")
    missing = [k for k in METADATA_KEYS if k not in meta]
    if missing:
        raise UsageError(f"{path} is a forecast model without {', '.join(missing)} in its metadata; retrain it.")
    return model, meta


def forecast_frame(model, meta, data=None, time_column=None):
    """DataFrame of forecasts (one row per complete window) for the data source ``data``."""
    source = data
    if source is None:
        saved = str(meta.get("source", ""))
        if not saved.startswith("builtin:"):
            raise UsageError("Pass --data FILE.csv: the model was trained on a file, not on built-in data.")
        source = saved.split(":", 1)[1]
    raw_columns = list(meta["raw_columns"])
    raw = D.load_source(source, meta["target"], time_column or meta["time_column"], raw_columns)
    step = pd.Timedelta(seconds=meta["step_seconds"])
    protocol = D.Protocol(step, int(meta["sampling_rate"]), int(meta["sequence_length"]),
                          int(meta["horizon_steps"]))
    frame, _ = D.check_and_parse(raw, min_rows=1)
    if len(frame) < protocol.span:
        raise DataError(_too_short(raw.label, len(frame), protocol))

    clean = _clean(frame, raw, raw_columns, int(meta.get("max_gap_steps", 6)))
    if len(clean) >= 2:
        found = D.detect_step(clean[raw.time_column])
        if found != step:
            raise DataError(f"{raw.label} has a time step of {D.format_duration(found)}, but the model was trained "
                            f"on data every {D.format_duration(step)}.")
    features = D.engineer(clean, raw.time_column, raw_columns, meta["feature_plan"])
    if list(features.columns) != list(meta["features"]):
        raise DataError(f"The features of {raw.label} ({', '.join(features.columns)}) differ from the model's "
                        f"({', '.join(meta['features'])}).")
    x = ((features.to_numpy(dtype=np.float64) - np.asarray(meta["feature_mean"]))
         / np.asarray(meta["feature_std"])).astype(np.float32)

    segs = [(a, b) for a, b in D.segments(clean[raw.time_column], step) if b - a >= protocol.span]
    if not segs:
        raise DataError(_too_short(raw.label, len(clean), protocol, consecutive=True))
    starts, outputs = [], []
    for a, b in segs:
        windows = timeseries_dataset_from_array(x, None, protocol.sequence_length,
                                                sampling_rate=protocol.sampling_rate, batch_size=256,
                                                start_index=a, end_index=b)
        outputs.append(model.predict(windows, verbose=0).reshape(-1))
        starts.append(np.arange(a, b - protocol.span + 1))
    starts = np.concatenate(starts)
    times = clean[raw.time_column].reset_index(drop=True)
    values = clean[raw.target].to_numpy(dtype=np.float64)
    last = starts + protocol.span - 1
    forecast = D.decode_targets(np.concatenate(outputs), values, last, meta.get("target_mode", "value"),
                                meta["target_mean"], meta["target_std"])
    issued = times.iloc[last].reset_index(drop=True)
    valid_for = issued + protocol.horizon
    lookup = pd.Series(values, index=pd.DatetimeIndex(times))
    actual = lookup.reindex(pd.DatetimeIndex(valid_for)).to_numpy()
    target = meta["target"]
    return pd.DataFrame({
        "issued_at": issued, "forecast_for": valid_for, f"forecast {target}": forecast,
        f"persistence {target}": values[last], f"actual {target}": actual,
    })


def _clean(frame, raw, raw_columns, max_gap_steps):
    """Clean the new data like the training data, keeping every column the model needs."""
    clean, actions = clean_timeseries(frame[[raw.time_column, *raw_columns]], raw.time_column, raw.target,
                                        features=raw_columns, max_gap=max_gap_steps)
    for column in raw_columns:
        if column in clean.columns:
            continue
        values = frame[column].dropna()
        if values.nunique() == 1:  # constant in this stretch of data: still a valid input
            clean[column] = float(values.iloc[0])
            continue
        reason = next((a for a in actions if a.startswith(f"{column}:")), f"{column}: dropped")
        raise DataError(f"Column '{column}' of {raw.label} cannot be used ({reason.split(': ', 1)[-1]}), "
                        f"and the model needs it.")
    return clean[[raw.time_column, *raw_columns]]


def _too_short(label, rows, protocol, consecutive=False):
    kind = "consecutive rows (without a gap longer than the interpolation limit)" if consecutive else "rows"
    return (f"{label} has {rows} rows, fewer than the {protocol.span} {kind} one window needs "
            f"({protocol.sequence_length} samples every {D.format_duration(protocol.step * protocol.sampling_rate)}).")


def run(model_file, data=None, time_column=None, output=None, show=10, verbose=1):
    """Forecast, print the last ``show`` forecasts (and the MAE where the truth is known), write ``output``."""
    model, meta = load_forecaster(model_file)
    table = forecast_frame(model, meta, data, time_column)
    target, unit = meta["target"], meta.get("unit", "")
    if output:
        buffer = io.StringIO()
        table.to_csv(buffer, index=False)
        atomic_write(output, buffer.getvalue().encode("utf-8"))
    if verbose:
        print(f"{len(table)} forecasts of '{target}' {meta.get('horizon', '')} ahead by model "
              f"'{meta.get('model')}' from {model_file}")
        with pd.option_context("display.width", 120, "display.max_columns", 10):
            print(table.tail(show).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        known = table[f"actual {target}"].notna()
        if known.any():
            err = (table.loc[known, f"forecast {target}"] - table.loc[known, f"actual {target}"]).abs().mean()
            pers = (table.loc[known, f"persistence {target}"] - table.loc[known, f"actual {target}"]).abs().mean()
            print(f"Where the truth is in the data ({int(known.sum())} forecasts): MAE {err:.3f} {unit}, "
                  f"persistence {pers:.3f} {unit}")
        if output:
            print(f"Wrote {output}")
    return table
