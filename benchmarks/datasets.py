"""Training on ``rnnkit.data.Dataset`` against training on NumPy arrays: the same model, the same batches.

    python -m benchmarks.datasets             # prints a markdown table; about a minute
    python -m benchmarks.datasets --out benchmarks/results-datasets.md

Rows: the Jena-shaped forecaster (GRU(32) on 120 steps x 14 features) fed as NumPy arrays, as
``Dataset.from_tensor_slices((x, y)).batch(b)``, the same with ``.shuffle(len(x))`` first and
with a ``.map`` that rescales x, and as ``timeseries_dataset_from_array`` windows (lazy, no
copies) against the same windows materialised as one array. Each variant runs one epoch
(``fit(epochs=1, verbose=0)``) per round, variants interleaved round by round so machine noise
falls on all of them; the table gives the median samples/s over the rounds and the ratio to
its array baseline.
"""
import argparse
import statistics
import time

import numpy as np
import torch

import rnnkit
from rnnkit import layers
from rnnkit.data import Dataset

N, STEPS, FEATURES, BATCH = 4096, 120, 14, 256


def _model():
    model = rnnkit.Sequential([rnnkit.Input((STEPS, FEATURES)), layers.GRU(32), layers.Dense(1)])
    model.compile(optimizer="rmsprop", loss="mse")
    return model


def _variants():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, STEPS, FEATURES)).astype("float32")
    y = rng.normal(size=(N, 1)).astype("float32")
    series = rng.normal(size=(N + STEPS, FEATURES)).astype("float32")
    targets = series[STEPS:, :1].copy()
    windows = np.lib.stride_tricks.sliding_window_view(series[:N + STEPS - 1], (STEPS, FEATURES))[:, 0].copy()
    return [
        ("arrays", "arrays", lambda: dict(x=x, y=y, batch_size=BATCH, shuffle=False)),
        ("Dataset.batch", "arrays", lambda: dict(x=Dataset.from_tensor_slices((x, y)).batch(BATCH))),
        ("arrays, shuffled", "arrays, shuffled", lambda: dict(x=x, y=y, batch_size=BATCH, shuffle=True)),
        ("Dataset.shuffle.batch", "arrays, shuffled",
         lambda: dict(x=Dataset.from_tensor_slices((x, y)).shuffle(N, seed=0).batch(BATCH))),
        ("Dataset.batch.map", "arrays",
         lambda: dict(x=Dataset.from_tensor_slices((x, y)).batch(BATCH).map(lambda a, b: (a * 1.0, b)))),
        ("window arrays", "window arrays", lambda: dict(x=windows, y=targets, batch_size=BATCH, shuffle=False)),
        ("timeseries_dataset_from_array", "window arrays",
         lambda: dict(x=rnnkit.utils.timeseries_dataset_from_array(series[:N + STEPS - 1], targets,
                                                                     sequence_length=STEPS, batch_size=BATCH))),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = _variants()
    models = {name: _model() for name, _, _ in variants}
    rates = {name: [] for name, _, _ in variants}
    for name, _, make in variants:  # warm-up: builds, native kernels, allocator
        models[name].fit(**make(), epochs=1, verbose=0)
    for _ in range(args.rounds):
        for name, _, make in variants:
            data = make()
            start = time.perf_counter()
            models[name].fit(**data, epochs=1, verbose=0)
            rates[name].append(N / (time.perf_counter() - start))
    median = {name: statistics.median(r) for name, r in rates.items()}
    lines = [f"Training one epoch of GRU(32) on {N} x ({STEPS}, {FEATURES}), batch {BATCH}, "
             f"{args.threads} threads, median of {args.rounds} interleaved rounds "
             f"(`python -m benchmarks.datasets`).", "",
             "| input | samples/s | vs. its array baseline |", "|---|---|---|"]
    for name, baseline, _ in variants:
        ratio = "-" if baseline == name else f"{median[name] / median[baseline]:.2f}x ({baseline})"
        lines.append(f"| {name} | {median[name]:,.0f} | {ratio} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        rnnkit.plots.atomic_write(args.out, (table + "\n").encode())


if __name__ == "__main__":
    main()
