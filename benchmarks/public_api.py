"""The public API against a hand-written PyTorch loop over the same NumPy arrays.

    python -m benchmarks.public_api                      # every workload, writes results-public-api.md
    python -m benchmarks.public_api --only 'A-*' --batches 4 --rounds 3

``benchmarks.rnn`` times one step on a ready batch (``train_on_batch`` / ``predict_on_batch``).
This script times what users call on whole arrays, and what a PyTorch user would write instead
for the same work:

* predict: ``model.predict(x, batch_size=B, verbose=0)`` against ``torch.from_numpy`` per slice,
  the network under ``torch.inference_mode``, ``.numpy()`` per batch and one ``np.concatenate``;
* evaluate: ``model.evaluate(x, y, batch_size=B, verbose=0)`` against the same loop computing the
  loss, with one ``loss.item()`` per batch (a running mean, as a user would print it);
* fit: ``model.fit(x, y, batch_size=B, epochs=1, shuffle=True, verbose=0)`` against one epoch of
  ``torch.randperm`` order, slicing, ``zero_grad``, forward, loss, ``backward``, ``step`` and
  ``loss.item()``.

Both start from the same Keras-layout weights and use the same kernels (``benchmarks.rnn``'s
networks). Each round runs rnnkit then torch, the next torch then rnnkit, and so on, so drift
slows both alike; a row reports the median seconds per call over the rounds as samples/s and
the ratio rnnkit / torch (above 1: rnnkit is faster). Training changes the weights between
rounds in both frameworks alike.
"""
import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.rnn import (WORKLOADS, RnnkitRunner, TorchRunner, make_data, select_workloads)

HERE = Path(__file__).resolve().parent
MODES = ("predict", "evaluate", "fit")


class RnnkitAPI:
    def __init__(self, w, x, y, batch):
        self.runner = RnnkitRunner(w, batch, x.shape[1], "cpu", "fp32")
        self.model, self.x, self.y, self.batch = self.runner.model, x, y, batch

    def predict(self):
        return self.model.predict(self.x, batch_size=self.batch, verbose=0)

    def evaluate(self):
        return self.model.evaluate(self.x, self.y, batch_size=self.batch, verbose=0)

    def fit(self):
        return self.model.fit(self.x, self.y, batch_size=self.batch, epochs=1, shuffle=True, verbose=0)


class TorchLoop:
    """What a PyTorch user writes around the same network."""

    def __init__(self, w, x, y, batch):
        import torch

        self.torch = torch
        self.runner = TorchRunner(w, batch, x.shape[1], "cpu", "fp32")
        self.net, self.opt, self.loss_fn = self.runner.net, self.runner.opt, self.runner.loss_fn
        self.x, self.y, self.batch = x, y, batch
        self.x_dtype = torch.long if w.vocab else torch.float32
        self.y_dtype = torch.long if w.loss == "sce" else torch.float32

    def _slice(self, idx):
        torch = self.torch
        return (torch.from_numpy(self.x[idx]).to(self.x_dtype), torch.from_numpy(self.y[idx]).to(self.y_dtype))

    def predict(self):
        torch = self.torch
        self.net.eval()
        outs = []
        with torch.inference_mode():
            for start in range(0, len(self.x), self.batch):
                xb = torch.from_numpy(self.x[start:start + self.batch]).to(self.x_dtype)
                outs.append(self.net(xb).numpy())
        return np.concatenate(outs)

    def evaluate(self):
        torch = self.torch
        self.net.eval()
        total, count = 0.0, 0
        with torch.inference_mode():
            for start in range(0, len(self.x), self.batch):
                xb, yb = self._slice(slice(start, start + self.batch))
                total += self.loss_fn(self.net(xb), yb).item() * len(xb)
                count += len(xb)
        return total / count

    def fit(self):
        torch = self.torch
        self.net.train()
        order = torch.randperm(len(self.x)).numpy()
        for start in range(0, len(self.x), self.batch):
            xb, yb = self._slice(order[start:start + self.batch])
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.net(xb), yb)
            loss.backward()
            self.opt.step()
            loss.item()


def time_call(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_workload(w, mode, batches, rounds, seed=0):
    batch, steps = w.batch, w.time
    parts = [make_data(w, batch, steps, seed + i)[:2] for i in range(batches)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    frameworks = {"rnnkit": RnnkitAPI(w, x, y, batch), "torch": TorchLoop(w, x, y, batch)}
    for api in frameworks.values():  # warm-up: builds, first allocations, kernel compilation
        getattr(api, mode)()
    times = {name: [] for name in frameworks}
    for r in range(rounds):
        order = list(frameworks) if r % 2 == 0 else list(reversed(frameworks))
        for name in order:
            times[name].append(time_call(getattr(frameworks[name], mode)))
    n = len(x)
    rates = {name: n / statistics.median(t) for name, t in times.items()}
    return {"workload": w.name, "mode": mode, "samples": n, "batch": batch, "rounds": rounds,
            "rnnkit_samples_per_s": rates["rnnkit"], "torch_samples_per_s": rates["torch"],
            "ratio": rates["rnnkit"] / rates["torch"]}


def cpu_name():
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def markdown(rows, args, seconds):
    import torch

    lines = ["# Public API vs a hand-written PyTorch loop (CPU)", "",
             f"Generated by `python -m benchmarks.public_api {' '.join(sys.argv[1:])}` on "
             f"{datetime.date.today().isoformat()} in {seconds:.0f} s: {cpu_name()} ({os.cpu_count()} logical CPUs), "
             f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), float32. "
             f"{args.batches} batches per call, median of {args.rounds} alternating rounds.", "",
             "| workload | call | samples | rnnkit samples/s | torch loop samples/s | rnnkit / torch |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        call = {"predict": "predict(x)", "evaluate": "evaluate(x, y)", "fit": "fit(x, y, epochs=1)"}[r["mode"]]
        lines.append(f"| {r['workload']} | {call} | {r['samples']:,} | {r['rnnkit_samples_per_s']:,.0f} | "
                     f"{r['torch_samples_per_s']:,.0f} | {r['ratio']:.2f}x |")
    under = [r for r in rows if r["ratio"] < 1.0]
    lines += ["", f"Rows under 1.00x: {len(under)} of {len(rows)}"
              + (": " + ", ".join(f"{r['workload']} {r['mode']} {r['ratio']:.2f}x" for r in under) if under else ".")]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated workload patterns (default: all)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--batches", type=int, default=8, help="batches per call (default 8)")
    parser.add_argument("--rounds", type=int, default=5, help="timed calls per framework (default 5)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument("--out", default=str(HERE / "results-public-api.md"))
    args = parser.parse_args(argv)
    import torch

    import rnnkit  # noqa: F401  (process settings, as in benchmarks.rnn)

    if args.threads:
        torch.set_num_threads(args.threads)
    workloads = select_workloads([p for p in args.only.split(",") if p])
    modes = [m for m in args.modes.split(",") if m]
    start, rows = time.perf_counter(), []
    for w in workloads:
        for mode in modes:
            row = run_workload(w, mode, args.batches, args.rounds)
            rows.append(row)
            print(f"{w.name:18s} {mode:8s} rnnkit {row['rnnkit_samples_per_s']:9,.0f}/s  "
                  f"torch {row['torch_samples_per_s']:9,.0f}/s  {row['ratio']:.2f}x", flush=True)
    text = markdown(rows, args, time.perf_counter() - start)
    from rnnkit._io import atomic_write_bytes

    atomic_write_bytes(args.out, text.encode("utf-8"))
    print(text)


if __name__ == "__main__":
    main()
