"""Train and evaluate forecasters with baselines; write the table, plots, report and model."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ... import __version__, callbacks, distribute, optimizers, plots
from ...datasets import DataError
from .. import UsageError
from .. import _common
from .._common import output_folder, training_callbacks
from ...utils import set_random_seed
from . import data as D
from . import models as M

TASK = "forecast"
QUICK_ROWS = 2400          # time steps of the sampled series kept by --quick (100 days of hours)
QUICK_SEQUENCE_LENGTH = 48
DEFAULT_EPOCHS = 20
DEFAULT_PATIENCE = 4


@dataclass
class Options:
    data: str | None = None
    target: str | None = None
    time_column: str | None = None
    features: list | None = None
    models: list = field(default_factory=lambda: list(M.DEFAULT_MODELS))
    epochs: int | None = None
    horizon: str = "24h"
    sampling: str = "1h"
    sequence_length: int | None = None
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int = DEFAULT_PATIENCE
    max_gap: str = "12h"
    time_of_year: str = "on"
    target_mode: str = "change"
    out: str = "runs/forecast"
    seed: int = 1337
    quick: bool = False
    verbose: int = 1
    threads: int = 1
    tensorboard: str | None = None   # --tensorboard DIR: logs in DIR/<model name>
    command: str | None = None


def log(opts, message=""):
    if opts.verbose:
        print(message, flush=True)


# ----- preparation ----------------------------------------------------------------------------
@dataclass
class Prepared:
    raw: D.RawData
    frame: pd.DataFrame            # clean frame: time column + value columns
    actions: list
    protocol: D.Protocol
    plan: dict
    feature_names: list
    x: np.ndarray                  # normalised features, float32 (rows, features)
    y_raw: np.ndarray              # target in its unit, float64 (rows,)
    mean: np.ndarray
    std: np.ndarray
    target_mode: str
    target_mean: float
    target_std: float
    split: dict
    segments: list
    windows: dict
    summary: dict


def prepare(opts):
    """Load, check, clean, engineer, split, normalise and window the data."""
    M.resolve_names(opts.models)  # an unknown name fails before any work
    horizon = D.parse_duration(opts.horizon, "--horizon")
    sampling = D.parse_duration(opts.sampling, "--sampling")
    max_gap = D.parse_duration(opts.max_gap, "--max-gap")
    sequence_length = opts.sequence_length or (QUICK_SEQUENCE_LENGTH if opts.quick else 120)

    raw = D.load_source(opts.data, opts.target, opts.time_column, opts.features)
    log(opts, f"Data: {raw.label}")
    frame, _ = D.check_and_parse(raw, min_rows=1)
    rows_raw = len(frame)
    step = D.detect_step(frame[raw.time_column])
    protocol = D.Protocol.from_durations(step, sequence_length, sampling, horizon)
    if opts.quick:
        frame = frame.iloc[: QUICK_ROWS * protocol.sampling_rate].reset_index(drop=True)
    if len(frame) < protocol.delay + 1:
        raise DataError(
            f"{raw.label} has {len(frame)} rows, fewer than the {protocol.delay + 1} needed for one window "
            f"({protocol.sequence_length} samples every {D.format_duration(step * protocol.sampling_rate)} and "
            f"the target {D.format_duration(horizon)} later).")

    raw_for_clean = D.RawData(frame, raw.source, raw.label, raw.time_column, raw.target, raw.features)
    max_gap_steps = max(1, int(max_gap // step))
    value_columns = [c for c in frame.columns if c != raw.time_column]
    if raw.features is not None:
        value_columns = list(dict.fromkeys([*raw.features, raw.target]))
    clean, actions = D.clean(frame, raw_for_clean, value_columns, max_gap_steps)
    step = D.detect_step(clean[raw.time_column])
    protocol = D.Protocol.from_durations(step, sequence_length, sampling, horizon)
    segs = D.segments(clean[raw.time_column], step)
    n = len(clean)
    split = D.split_rows(n)
    ranges = {name: D.window_ranges(part, segs, protocol, n) for name, part in split.items()}
    empty = [name for name, r in ranges.items() if not r]
    if empty:
        needed = D.minimum_rows(protocol)
        gaps = f" in {len(segs)} gap-free pieces" if len(segs) > 1 else ""
        raise DataError(
            f"{raw.label} has {n} rows after cleaning{gaps}, too few for the 50/25/25 split: the "
            f"{'/'.join(empty)} part{'s' if len(empty) > 1 else ''} would hold no window of "
            f"{protocol.sequence_length} samples every {D.format_duration(step * protocol.sampling_rate)} with "
            f"its target {D.format_duration(protocol.horizon)} later (at least {needed} consecutive rows needed)."
            + (" Try a shorter --sequence-length." if not opts.quick else ""))

    value_columns = [c for c in clean.columns if c != raw.time_column]
    times = clean[raw.time_column]
    year_features = opts.time_of_year == "on"
    plan = D.plan_features(value_columns, time_of_year=year_features)
    features = D.engineer(clean, raw.time_column, value_columns, plan)
    values = features.to_numpy(dtype=np.float64)
    mean, std = D.normalisation(values, split["train"])
    x = ((values - mean) / std).astype(np.float32)
    y_raw = clean[raw.target].to_numpy(dtype=np.float64)
    train_y = y_raw[slice(*split["train"])]
    if len(train_y) and np.nanstd(train_y) == 0:
        raise UsageError(f"The target '{raw.target}' is constant ({train_y[0]:g}) in the training part of "
                         f"{raw.label}: there is nothing to forecast. Pick another --target.")
    targets = D.window_targets(y_raw, protocol, opts.target_mode)
    train_targets = targets[: max(1, split["train"][1] - protocol.span + 1)]
    if opts.target_mode == "value":
        target_mean, target_std = float(train_y.mean()), float(train_y.std()) or 1.0
    else:  # the change since the last observed value: not centred, so 0 means persistence
        target_mean, target_std = 0.0, float(np.sqrt(np.mean(train_targets ** 2))) or 1.0
    y = ((targets - target_mean) / target_std).astype(np.float32)[:, None]
    windows = D.make_windows(x, y, split, segs, protocol, opts.batch_size, opts.seed)

    def stamp(i):
        return str(times.iloc[i])

    summary = {
        "source": raw.source, "label": raw.label, "target": raw.target, "unit": D.unit_of(raw.target),
        "time_column": raw.time_column, "rows_raw": rows_raw, "rows_used": len(frame), "rows_clean": n,
        "start": stamp(0), "end": stamp(n - 1), "step": D.format_duration(step),
        "gap_free_pieces": len(segs), "value_columns": value_columns, "features": list(features.columns),
        "time_of_year_features": bool(year_features),
        "target_mode": opts.target_mode, "target_mean": target_mean, "target_std": target_std,
        "quick": bool(opts.quick),
        "split": {name: {"rows": b - a, "start": stamp(a), "end": stamp(b - 1), "windows": windows[name].num_samples}
                  for name, (a, b) in split.items()},
    }
    return Prepared(raw, clean, actions, protocol, plan, list(features.columns), x, y_raw, mean, std,
                    opts.target_mode, target_mean, target_std, split, segs, windows, summary)


# ----- baselines and models -----------------------------------------------------------------
def persistence(prep, part):
    """The last observed value of each window of ``part``."""
    return prep.y_raw[prep.windows[part].last_rows]


def seasonal_persistence(prep, part):
    """The value a whole number of days before each target (the latest one observed), or None."""
    lag = prep.protocol.seasonal_lag
    if lag is None:
        return None
    return prep.y_raw[prep.windows[part].target_rows - lag]


def truth(prep, part):
    return prep.y_raw[prep.windows[part].target_rows]


def mae(pred, actual):
    return float(np.mean(np.abs(np.asarray(pred, dtype=np.float64).ravel() - actual)))


def model_metadata(prep, name, opts):
    protocol = prep.protocol
    return {
        "task": TASK, "model": name, "architecture": M.describe(name), "rnnkit_version": __version__,
        "source": prep.raw.source, "target": prep.raw.target, "unit": D.unit_of(prep.raw.target),
        "time_column": prep.raw.time_column, "raw_columns": prep.summary["value_columns"],
        "features": prep.feature_names, "feature_plan": prep.plan,
        "feature_mean": [float(v) for v in prep.mean], "feature_std": [float(v) for v in prep.std],
        "target_mode": prep.target_mode, "target_mean": prep.target_mean, "target_std": prep.target_std,
        "step_seconds": protocol.step.total_seconds(), "sampling_rate": protocol.sampling_rate,
        "sequence_length": protocol.sequence_length, "horizon_steps": protocol.horizon_steps,
        "horizon": D.format_duration(protocol.horizon), "delay_rows": protocol.delay,
        "max_gap_steps": max(1, int(D.parse_duration(opts.max_gap, "--max-gap") // protocol.step)),
    }


def predict_rows(model, prep, part):
    """Model forecasts for the windows of ``part``, in the target's unit."""
    out = model.predict(prep.windows[part], verbose=0)
    return D.decode_targets(out.reshape(-1), prep.y_raw, prep.windows[part].last_rows, prep.target_mode,
                            prep.target_mean, prep.target_std)


def train_one(name, prep, opts, out_dir):
    """Build, train (early stopping, best checkpoint) and evaluate one model."""
    set_random_seed(opts.seed)
    model = M.build(name, (prep.protocol.sequence_length, len(prep.feature_names)))
    model.compile(optimizer=optimizers.RMSprop(learning_rate=opts.learning_rate), loss="mse", metrics=["mae"])
    model.metadata = model_metadata(prep, name, opts)
    checkpoint = out_dir / "checkpoints" / f"{name}.rnnkit"
    cbs = [callbacks.EarlyStopping(monitor="val_mae", patience=opts.patience, restore_best_weights=True),
           callbacks.ModelCheckpoint(checkpoint, monitor="val_mae", save_best_only=True),
           *training_callbacks(opts, run=name)]
    started = time.perf_counter()
    history = model.fit(prep.windows["train"].fresh(opts.seed), validation_data=prep.windows["val"], epochs=opts.epochs,
                        callbacks=cbs, verbose=opts.verbose)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    val_pred = predict_rows(model, prep, "val")
    test_pred = predict_rows(model, prep, "test")
    eval_seconds = time.perf_counter() - started
    h = history.history
    val_curve = [float(v) * prep.target_std for v in h.get("val_mae", [])]
    return {
        "model": model,
        "row": {"name": name, "kind": "baseline" if name in M.BASELINE_MODELS else "model",
                "description": M.describe(name), "val_mae": mae(val_pred, truth(prep, "val")),
                "test_mae": mae(test_pred, truth(prep, "test")), "epochs": len(h.get("loss", [])),
                "best_epoch": int(np.argmin(val_curve)) + 1 if val_curve else None,
                "train_seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds, 2),
                "params": int(sum(p.numel() for p in model.parameters())),
                "checkpoint": str(checkpoint)},
        "curve": {"train": [float(v) * prep.target_std for v in h.get("mae", [])], "val": val_curve},
        "pred": {"val": val_pred, "test": test_pred},
    }


# ----- the run ------------------------------------------------------------------------------
class torch_threads:
    """Run with ``n`` PyTorch CPU threads (0: leave PyTorch's choice), restoring the old value after.

    One thread is the default of the forecast app: its small recurrent layers gain little
    from intra-op parallelism, and on a machine whose cores are busy with other work,
    PyTorch's threads waiting for each other made training 10-20 times slower.
    """

    def __init__(self, n):
        self.n = int(n or 0)

    def __enter__(self):
        import torch

        self.old = torch.get_num_threads()
        if self.n > 0:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        import torch

        if self.n > 0:
            torch.set_num_threads(self.old)


def run(opts):
    """The whole pipeline; returns the report (also written to ``opts.out``/report.json). The files
    land in ``opts.out`` only when the run completes (``apps._common.output_folder``)."""
    with torch_threads(opts.threads):
        return _run(opts)


def _run(opts):
    t0 = time.perf_counter()
    names = M.resolve_names(opts.models)
    if opts.epochs is None:
        opts.epochs = 1 if opts.quick else DEFAULT_EPOCHS
    if opts.epochs < 1:
        raise UsageError("--epochs must be at least 1.")
    final_dir = Path(opts.out)
    if final_dir.exists() and not final_dir.is_dir():
        raise UsageError(f"--out {final_dir} exists and is not a folder.")
    prep = prepare(opts)
    _print_summary(prep, opts)
    with output_folder(final_dir) as out_dir:
        report = _train_and_report(opts, names, prep, out_dir, final_dir, t0, time.perf_counter() - t0)
    log(opts, f"Report and plots in {final_dir}/")
    return report


def _train_and_report(opts, names, prep, out_dir, final_dir, t0, t_prep):
    unit = prep.summary["unit"]

    started = time.perf_counter()
    rows, preds = [], {}
    for part in ("val", "test"):
        preds.setdefault("persistence", {})[part] = persistence(prep, part)
    rows.append(_baseline_row("persistence", "the last observed value", preds["persistence"], prep))
    seasonal = {part: seasonal_persistence(prep, part) for part in ("val", "test")}
    if seasonal["val"] is not None:
        lag = D.format_duration(prep.protocol.step * prep.protocol.seasonal_lag)
        same = prep.protocol.seasonal_lag == prep.protocol.horizon_steps
        note = f"the value {lag} before the target" + (" (= persistence at this horizon)" if same else "")
        preds[f"seasonal persistence ({lag})"] = seasonal
        rows.append(_baseline_row(f"seasonal persistence ({lag})", note, seasonal, prep))
    t_baselines = time.perf_counter() - started

    trained, curves, timings = {}, {}, {}
    for i, name in enumerate(["dense", *names], start=1):
        log(opts, f"\n[{i}/{len(names) + 1}] {name}: {M.describe(name)}")
        result = train_one(name, prep, opts, out_dir)
        trained[name] = result
        rows.append(result["row"])
        curves[name] = result["curve"]
        preds[name] = result["pred"]
        timings[name] = result["row"]["train_seconds"]
        log(opts, f"{name}: val MAE {result['row']['val_mae']:.3f} {unit}, test MAE "
                  f"{result['row']['test_mae']:.3f} {unit} ({result['row']['epochs']} epochs, "
                  f"{result['row']['train_seconds']:.1f} s)")

    reference = rows[0]
    for row in rows:
        row["improvement_pct"] = _improvement(reference["test_mae"], row["test_mae"])
        row["val_improvement_pct"] = _improvement(reference["val_mae"], row["val_mae"])
    best = min(names, key=lambda n: trained[n]["row"]["val_mae"])
    best_model = trained[best]["model"]
    best_model.metadata = {**best_model.metadata, "val_mae": trained[best]["row"]["val_mae"],
                           "test_mae": trained[best]["row"]["test_mae"]}

    started = time.perf_counter()
    model_path = out_dir / "model.rnnkit"
    best_model.save(model_path)
    files = {"model": model_path, "report": out_dir / "report.json"}
    files.update(_plots(prep, out_dir, curves, preds, best, rows))
    files = {k: str(final_dir / Path(v).relative_to(out_dir)) for k, v in files.items()}  # where they will be
    t_output = time.perf_counter() - started

    total = time.perf_counter() - t0
    eval_total = t_baselines + sum(trained[n]["row"]["eval_seconds"] for n in trained)
    report = {
        "task": TASK, "rnnkit_version": __version__, "created": pd.Timestamp.now(tz="UTC").isoformat(),
        "command": opts.command,
        "unit": unit,
        "data": prep.summary, "cleaning": prep.actions,
        "protocol": {**prep.protocol.describe(), "batch_size": opts.batch_size, "split": "chronological 50/25/25",
                     "normalisation": "mean/std of the training part", "epochs": opts.epochs,
                     "early_stopping": f"val_mae, patience {opts.patience}, best weights restored",
                     "optimizer": f"RMSprop(learning_rate={opts.learning_rate})", "seed": opts.seed,
                     "torch_threads": _threads(), "processes": distribute.world_size()},
        "results": [{k: v for k, v in row.items()} for row in rows],
        "best_model": best,
        "best_beats_persistence": trained[best]["row"]["test_mae"] < reference["test_mae"],
        "timings": {"data_prep_seconds": round(t_prep, 2), "training_seconds": timings,
                    "training_total_seconds": round(sum(timings.values()), 2),
                    "evaluation_seconds": round(eval_total, 2),
                    "plots_report_model_seconds": round(t_output, 2), "total_seconds": round(total, 2)},
        "files": files,
    }
    write_json(out_dir / "report.json", report)
    print(format_table(rows, unit, best))
    log(opts, f"\nBest model by validation MAE: {best} -> {final_dir / 'model.rnnkit'}")
    log(opts, f"Time: {total:.1f} s total = data {t_prep:.1f} s + training {sum(timings.values()):.1f} s "
              f"+ evaluation {eval_total:.1f} s + plots/report/model {t_output:.1f} s")
    return report


def _threads():
    import torch

    return torch.get_num_threads()


def _baseline_row(name, description, pred, prep):
    return {"name": name, "kind": "baseline", "description": description,
            "val_mae": mae(pred["val"], truth(prep, "val")), "test_mae": mae(pred["test"], truth(prep, "test")),
            "epochs": None, "best_epoch": None, "train_seconds": None, "eval_seconds": None, "params": 0}


def _improvement(reference, value):
    if not reference or not math.isfinite(reference):
        return None
    return round(100.0 * (reference - value) / reference, 2)


def _print_summary(prep, opts):
    s, p = prep.summary, prep.protocol
    log(opts, f"  {s['rows_raw']} rows{' (quick: first ' + str(s['rows_used']) + ')' if opts.quick else ''}, "
              f"{s['start']} .. {s['end']}, step {s['step']}; target '{s['target']}' ({s['unit'] or 'no unit'})")
    if prep.actions:
        log(opts, f"Cleaning ({len(prep.actions)} actions):")
        for action in prep.actions:
            log(opts, f"  - {action}")
    log(opts, f"Features ({len(prep.feature_names)}): {', '.join(prep.feature_names)}")
    log(opts, f"Windows: {p.sequence_length} samples every {D.format_duration(p.step * p.sampling_rate)}, target "
              f"{D.format_duration(p.horizon)} after the last; train {s['split']['train']['windows']}, "
              f"val {s['split']['val']['windows']}, test {s['split']['test']['windows']} windows "
              f"(batch {opts.batch_size})")


def format_table(rows, unit, best=None):
    """The results table as text."""
    u = f" ({unit})" if unit else ""
    headers = ["", f"val MAE{u}", f"test MAE{u}", "vs persistence", "epochs", "train s"]
    lines = []
    for row in rows:
        imp = row.get("improvement_pct")
        lines.append([
            row["name"] + (" *" if row["name"] == best else ""),
            f"{row['val_mae']:.3f}", f"{row['test_mae']:.3f}",
            "-" if imp is None or row["name"] == "persistence" else f"{imp:+.1f} %",
            "-" if row.get("epochs") is None else str(row["epochs"]),
            "-" if row.get("train_seconds") is None else f"{row['train_seconds']:.1f}",
        ])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    rule = "-" * len(fmt(headers))
    text = ["", fmt(headers), rule, *[fmt(line) for line in lines], rule]
    if best:
        text.append("* best model by validation MAE (saved); 'vs persistence': test MAE improvement")
    return "\n".join(text)


def write_json(path, obj):
    _common.write_json(path, obj, default=_json_default)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _plots(prep, out_dir, curves, preds, best, rows):
    unit = prep.summary["unit"]
    target = prep.raw.target
    files = {}
    val_pers = rows[0]["val_mae"]
    files["training_curves"] = str(plots.training_curves(
        out_dir / "training_curves.png", curves, unit=unit, reference={"persistence (validation)": val_pers},
        title=f"MAE per epoch: {target}, {prep.summary['label']}"))

    test = prep.windows["test"]
    times = prep.frame[prep.raw.time_column].to_numpy()
    lo, hi = _first_run(test.starts)
    week = int(pd.Timedelta(days=7) // prep.protocol.step)
    idx = np.arange(lo, min(hi, lo + week))
    forecasts = {"persistence": preds["persistence"]["test"][idx], best: preds[best]["test"][idx]}
    if "dense" in preds and best != "dense":
        forecasts["dense"] = preds["dense"]["test"][idx]
    files["forecast_week"] = str(plots.series_plot(
        out_dir / "forecast_week.png", times[test.target_rows[idx]], truth(prep, "test")[idx], forecasts,
        unit=unit, ylabel=target,
        title=f"First week of the test period: {D.format_duration(prep.protocol.horizon)}-ahead forecasts"))

    actual = truth(prep, "test")
    errors = {name: preds[name]["test"] - actual for name in ("persistence", "dense", best) if name in preds}
    files["error_histogram"] = str(plots.error_histogram(
        out_dir / "error_histogram.png", errors, unit=unit,
        title=f"Test errors (forecast - truth), {D.format_duration(prep.protocol.horizon)} ahead"))
    return files


def _first_run(starts):
    """Index range of the first run of consecutive start rows (windows without a gap)."""
    if len(starts) == 0:
        return 0, 0
    breaks = np.flatnonzero(np.diff(starts) != 1)
    return 0, int(breaks[0] + 1) if len(breaks) else len(starts)
