"""Data-parallel training throughput: the B and C workloads of ``benchmarks/rnn.py`` trained with
``model.fit`` in 1 and in 2 processes (``torchrun``, gloo, one PyTorch thread per process).

    python -m benchmarks.distributed                       # B-LSTM and C-LSTM, 1 and 2 processes
    python -m benchmarks.distributed --only 'B-*' --processes 1,2,4 --steps 20
    python -m benchmarks.distributed --json results-distributed.json

Each row trains the same global batch (the workload's batch: 128 for B, 64 for C), so a process
of a 2-process run computes half of it: ``batch_size`` = global batch / processes. samples/s =
global samples of the timed steps / wall time of rank 0's ``fit`` (after a warm-up ``fit``).
"all-reduce ms/step in fit" is the time spent in ``rnnkit.distribute.average_gradients`` per step
(rank 0; it includes waiting for the slower rank); "all-reduce alone" is the median time of one
all-reduce of the parameters' size with both ranks ready (barrier first): the cost of the
communication itself. "samples/CPU-s" (samples over the CPU seconds of all ranks) changes less
than samples/s when other programs share the cores. Every step all-reduces the gradients of all
parameters: the communication volume per step is the parameter bytes (float32), of which a ring
all-reduce sends and receives 2 (W-1)/W times per process.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_WORKLOADS = ("B-LSTM", "C-LSTM")


def worker(name, steps, warmup, out):
    """One process of a run (launched by torchrun): fit ``warmup`` then ``steps`` global batches."""
    import torch

    torch.set_num_threads(1)
    import rnnkit
    from rnnkit import distribute, losses

    from benchmarks.rnn import WORKLOADS, build_rnnkit_model, make_data

    w = WORKLOADS[name]
    distribute.initialize(torch.device("cpu"))
    world = distribute.world_size()
    model = build_rnnkit_model(w, w.time)
    loss = {"mse": "mse", "bce": "binary_crossentropy",
            "sce": losses.SparseCategoricalCrossentropy(from_logits=True)}[w.loss]
    model.compile(optimizer=w.optimizer, loss=loss)
    x, y, _ = make_data(w, w.batch * (steps + warmup), w.time)
    per_process = w.batch // world

    comm = []
    average = distribute.average_gradients

    def timed_average(*args):
        started = time.perf_counter()
        value = average(*args)
        comm.append(time.perf_counter() - started)
        return value

    distribute.average_gradients = timed_average
    warm = slice(0, w.batch * warmup)
    model.fit(x[warm], y[warm], batch_size=per_process, epochs=1, shuffle=False, verbose=0)
    comm.clear()
    rest = slice(w.batch * warmup, None)
    if distribute.active():
        torch.distributed.barrier()
    cpu0, started = time.process_time(), time.perf_counter()
    model.fit(x[rest], y[rest], batch_size=per_process, epochs=1, shuffle=False, verbose=0)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    params = sum(p.numel() for p in model.parameters())
    alone = _allreduce_alone(params) if distribute.active() else None
    result = {"workload": name, "processes": world, "rank": distribute.rank(), "global_batch": w.batch,
              "batch_per_process": per_process, "steps": steps, "wall_s": wall, "cpu_s": cpu,
              "allreduce_s": sum(comm) if world > 1 else 0.0, "allreduce_alone_s": alone, "params": params,
              "param_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
              "threads": torch.get_num_threads()}
    Path(out, f"{name}-{world}-{distribute.rank()}.json").write_text(json.dumps(result))


def _allreduce_alone(count, repeats=20):
    """Median seconds of one all-reduce of ``count`` float32 values, all ranks starting together."""
    import statistics

    import torch

    flat, times = torch.zeros(count), []
    for _ in range(repeats):
        torch.distributed.barrier()
        started = time.perf_counter()
        torch.distributed.all_reduce(flat)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(name, processes, steps, warmup, folder):
    """Launch one run under torchrun; returns rank 0's measurements with CPU time summed over ranks."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
               f"--nproc_per_node={processes}", "-m", "benchmarks.distributed", "--worker", name,
               "--steps", str(steps), "--warmup", str(warmup), "--out", str(folder)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run(command, env=env, check=True, cwd=ROOT)
    ranks = [json.loads(Path(folder, f"{name}-{processes}-{r}.json").read_text()) for r in range(processes)]
    row = dict(ranks[0])
    row["cpu_s_all_ranks"] = sum(r["cpu_s"] for r in ranks)
    row["samples_per_s"] = row["global_batch"] * steps / row["wall_s"]
    return row


def format_rows(rows):
    from rnnkit.apps._common import format_table

    base = {r["workload"]: r["samples_per_s"] for r in rows if r["processes"] == 1}
    table = []
    for r in rows:
        speedup = r["samples_per_s"] / base[r["workload"]] if r["workload"] in base else float("nan")
        table.append([r["workload"], r["processes"], f"{r['global_batch']} = {r['processes']} x {r['batch_per_process']}",
                      f"{r['samples_per_s']:,.0f}", f"{speedup:.2f}x",
                      f"{1000 * r['allreduce_s'] / r['steps']:.1f}" if r["processes"] > 1 else "-",
                      f"{1000 * r['allreduce_alone_s']:.1f}" if r["processes"] > 1 else "-",
                      f"{r['param_bytes'] / 1e6:.2f}", f"{r['wall_s']:.1f}", f"{r['cpu_s_all_ranks']:.1f}",
                      f"{r['global_batch'] * r['steps'] / r['cpu_s_all_ranks']:,.0f}"])
    return format_table(["workload", "processes", "global batch", "samples/s", "speedup", "all-reduce ms/step in fit",
                         "all-reduce alone ms", "MB all-reduced/step", "wall s", "CPU s (all ranks)",
                         "samples/CPU-s"], table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(DEFAULT_WORKLOADS), help="workloads (default B-LSTM,C-LSTM)")
    parser.add_argument("--processes", default="1,2", help="process counts to compare (default 1,2)")
    parser.add_argument("--steps", type=int, default=12, help="timed global batches per run (default 12)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up global batches (default 2)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.steps, args.warmup, args.out)
        return 0
    from benchmarks.rnn import select_workloads

    names = [w.name for w in select_workloads(args.only.split(","))]
    counts = [int(c) for c in args.processes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            for count in counts:
                print(f"{name}: {count} process(es)...", file=sys.stderr, flush=True)
                rows.append(run(name, count, args.steps, args.warmup, folder))
    load = os.getloadavg()[0]
    print(f"\nmodel.fit throughput, gloo on CPU, 1 PyTorch thread per process, {os.cpu_count()} logical CPUs, "
          f"1-min load average at the end {load:.1f}; {args.steps} timed global batches per run\n")
    print(format_rows(rows))
    print("\nCommunication per step = parameter bytes (float32 gradients), all-reduced once; a ring all-reduce moves "
          "2(W-1)/W of that in and out of each process.")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "load_average_1min": load}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
