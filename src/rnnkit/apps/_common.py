"""What every application command shares: argument types with their ranges, threads, the
JSON report, the terminal table, and the output folder that a run fills atomically.

    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--seed", type=seed, default=0)
    with output_folder(args.out) as out:          # files land in --out only when the run completes
        write_json(out / "report.json", report)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import tempfile
from pathlib import Path

from .._io import atomic_write_bytes
from .._naming import suggest
from . import UsageError

EXIT_USAGE = 2
MAX_THREADS = 4 * (os.cpu_count() or 1)
did_you_mean = suggest  # the package's one "did you mean" rule (rnnkit._naming)


# ----- argument types ---------------------------------------------------------------------------
def _argument_type(convert, accept, expected):
    """An argparse ``type=``: ``convert`` the text, then insist on ``accept(value)``."""
    def parse(text):
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def _number(text):
    value = float(text)
    return value if math.isfinite(value) else None


positive_int = _argument_type(int, lambda v: v > 0, "a positive integer")
nonnegative_int = _argument_type(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _argument_type(_number, lambda v: v > 0, "a positive number")
nonnegative_float = _argument_type(_number, lambda v: v >= 0, "a number >= 0")
dropout_rate = _argument_type(_number, lambda v: 0 <= v < 1, "a dropout rate in [0, 1)")
seed = _argument_type(int, lambda v: 0 <= v < 2 ** 32, "a seed in [0, 2**32)")
threads = _argument_type(int, lambda v: 1 <= v <= MAX_THREADS, f"a thread count in [1, {MAX_THREADS}]")
threads_or_default = _argument_type(int, lambda v: 0 <= v <= MAX_THREADS,
                                    f"a thread count in [0, {MAX_THREADS}] (0: PyTorch's default)")


def bounded_int(low, high, what="an integer"):
    """An int type with an inclusive range, e.g. ``bounded_int(1, 100_000, "a length")``."""
    return _argument_type(int, lambda v: low <= v <= high, f"{what} in [{low:,}, {high:,}]")


def apply_threads(count):
    """Set PyTorch's CPU threads (None or 0: leave its default); returns the count in use."""
    import torch

    if count:
        torch.set_num_threads(count)
    return torch.get_num_threads()


def load_model_for(path, task):
    """A model file saved by ``rnnkit <task> train``: (model, metadata), or a one-line error saying
    what the file holds instead."""
    import rnnkit

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    model = rnnkit.load_model(path, compile=False)
    metadata = model.metadata or {}
    found = metadata.get("task")
    if found != task:
        what = f"a '{found}' model" if found else "a model without a task"
        raise UsageError(f"{path} holds {what}, not a '{task}' model." + (f" Use `rnnkit {found} ...` with it."
                                                                            if found else ""))
    return model, metadata


# ----- outputs ----------------------------------------------------------------------------------
def format_table(headers, rows):
    """A plain-text table with aligned columns."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def write_json(path, data, default=None):
    """Write JSON atomically (temp file + rename)."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=default) + "\n").encode("utf-8"))


@contextlib.contextmanager
def output_folder(path):
    """A fresh staging folder beside ``path`` for a run to write into; when the block completes,
    its files move into ``path`` (replacing those of the same name, keeping others) with Ctrl-C
    held off for the moves, so an interrupted run leaves ``path`` as the last complete run left it.
    If the block fails, the staging folder goes and ``path`` is untouched."""
    final = Path(path)
    if final.exists() and not final.is_dir():
        raise UsageError(f"--out {final} exists and is not a folder.")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        yield staging
        final.mkdir(exist_ok=True)
        blocked = hasattr(signal, "pthread_sigmask")
        if blocked:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for item in sorted(staging.rglob("*"), key=lambda p: (p.name == "report.json", len(p.parts))):
                target = final / item.relative_to(staging)
                if item.is_dir():
                    target.mkdir(exist_ok=True)
                else:
                    os.replace(item, target)
        finally:
            if blocked:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
