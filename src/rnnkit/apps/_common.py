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
import shlex
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
def argument_type(convert, accept, expected):
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


positive_int = argument_type(int, lambda v: v > 0, "a positive integer")
nonnegative_int = argument_type(int, lambda v: v >= 0, "an integer >= 0")
positive_float = argument_type(_number, lambda v: v > 0, "a positive number")
nonnegative_float = argument_type(_number, lambda v: v >= 0, "a number >= 0")
dropout_rate = argument_type(_number, lambda v: 0 <= v < 1, "a dropout rate in [0, 1)")
seed = argument_type(int, lambda v: 0 <= v < 2 ** 32, "a seed in [0, 2**32)")
threads = argument_type(int, lambda v: 1 <= v <= MAX_THREADS, f"a thread count in [1, {MAX_THREADS}]")
threads_or_default = argument_type(int, lambda v: 0 <= v <= MAX_THREADS,
                                    f"a thread count in [0, {MAX_THREADS}] (0: PyTorch's default)")


def bounded_int(low, high, what="an integer"):
    """An int type with an inclusive range, e.g. ``bounded_int(1, 100_000, "a length")``."""
    return argument_type(int, lambda v: low <= v <= high, f"{what} in [{low:,}, {high:,}]")


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


def choose_names(value, choices, *, option, what, aliases=None, key=str.lower):
    """A comma list of names from ``choices`` (``"all"``: every choice) in the order given, each
    once, matched by ``key`` (default: case-insensitively; ``aliases`` map a key to a choice);
    an unknown or empty list is a :class:`UsageError` with a did-you-mean hint.

        choose_names("gru,ALL", ["lstm", "gru"], option="--model", what="model")  # ['gru', 'lstm']
    """
    by_key = {key(c): c for c in choices}
    by_key.update({key(a): c for a, c in (aliases or {}).items()})
    names = []
    for part in str(value).split(","):
        part = part.strip()
        if not part:
            continue
        found = list(choices) if key(part) == "all" else [by_key.get(key(part))]
        if found == [None]:
            raise UsageError(f"unknown {what} '{part}'.{suggest(part, [*choices, *(aliases or {}), 'all'])} "
                             f"Choose from {', '.join(choices)} or all.")
        names += [n for n in found if n not in names]
    if not names:
        raise UsageError(f"{option} is empty; name a {what} or all.")
    return names


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
    If the block fails, the staging folder goes and ``path`` is untouched. In a data-parallel rank
    other than 0 (``--distributed``, torchrun) the block gets a scratch folder that is then deleted."""
    from .. import distribute

    if not distribute.is_primary():
        scratch = Path(tempfile.mkdtemp(prefix="rnnkit-rank-"))
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
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


# ----- training services: TensorBoard logs, data-parallel processes -----------------------------
def add_training_service_arguments(parser, distributed=True):
    """``--tensorboard DIR`` and ``--distributed N`` for a command that trains. Its ``main`` then
    starts with ``if (code := start_distributed(args)) is not None: return code`` and passes
    ``training_callbacks(args)`` to ``fit``; its batches, read alike by every process, are global.
    ``distributed=False``: ``--tensorboard`` alone."""
    parser.add_argument("--tensorboard", type=_tensorboard_dir, metavar="DIR",
                        help="write TensorBoard logs (loss, metrics and learning rate per epoch, train and "
                             "validation) under DIR; view them with `tensorboard --logdir DIR` "
                             '(needs pip install "rnnkit[tensorboard]")')
    if not distributed:
        return
    parser.add_argument("--distributed", type=bounded_int(2, 256, "a process count"), metavar="N",
                        help="train data-parallel in N local processes, as `torchrun --nproc_per_node=N -m "
                             "rnnkit ...` does: each takes its share of every batch (--batch-size stays the "
                             "global batch), gradients are averaged every step, rank 0 writes the outputs")


def _tensorboard_dir(text):
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise argparse.ArgumentTypeError('needs the tensorboard package: pip install "rnnkit[tensorboard]" '
                                         "(or pip install tensorboard)") from None
    return text


def training_callbacks(args, run=None):
    """The callbacks that ``--tensorboard DIR`` asks for: ``[TensorBoard(DIR/run)]`` (``run``: one
    folder per model when a command trains several), else ``[]``."""
    folder = getattr(args, "tensorboard", None)
    if not folder:
        return []
    from ..callbacks import TensorBoard

    return [TensorBoard(log_dir=Path(folder) / run if run else folder)]


def batch_size_per_process(batch_size):
    """What a command passes to ``fit(x, y, batch_size=...)`` on arrays so that ``--batch-size`` stays
    the global batch under ``--distributed`` (``fit`` takes a per-process batch on arrays; a dataset's
    batches are global already). With one process: ``batch_size``.

        model.fit(x, y, batch_size=batch_size_per_process(args.batch_size))
    """
    from .. import distribute

    return max(1, batch_size // distribute.world_size())


def start_distributed(args):
    """``--distributed N`` outside torchrun: run this same command in N local processes with
    torchrun's launcher (``torch.distributed.launcher``, as ``torchrun --standalone``) and return
    the exit status (a failing process's own, after the others are stopped). Launched by torchrun:
    join the process group now (so that only rank 0 prints and fills ``--out``) and return None."""
    import logging
    import sys
    import uuid

    from .. import config, distribute

    if distribute.launched():
        distribute.initialize(config.resolve_device())
        if not distribute.is_primary():
            sys.stdout = open(os.devnull, "w")  # rank 0 alone prints; errors still reach stderr
        return None
    count = getattr(args, "distributed", None)
    if not count:
        return None
    if not getattr(args, "command_line", None):
        raise UsageError("--distributed starts the `rnnkit` command again under torchrun; from Python, launch "
                         "your script with `torchrun --nproc_per_node=N script.py` instead.")
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    argv = shlex.split(args.command_line)[1:]  # the processes see torchrun's RANK and ignore --distributed
    launch = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=count, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for name in list(logging.root.manager.loggerDict):  # the launcher's own logs; the processes say what failed
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        elastic_launch(launch, sys.executable)("-m", "rnnkit", *argv)
    except ChildFailedError as exc:
        return exc.get_first_failure()[1].exitcode
    except SignalException:
        raise KeyboardInterrupt from None
    return 0
