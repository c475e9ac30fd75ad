"""What keeping freed memory buys: one LSTM(32) forward + backward at workload B's shape.

    python -m benchmarks.allocator            # prints a table; about 30 s

Runs the same call in two fresh processes, with rnnkit's import setting
(``RNNKIT_KEEP_FREED_MEMORY=1``, the default) and without it (``=0``: glibc's defaults),
and reports the median time per call and the minor page faults per call.
"""
import argparse
import json
import os
import subprocess
import sys

CHILD = """
import json, resource, statistics, sys, time
import torch
import rnnkit
batch, steps, threads, repeats = map(int, sys.argv[1:5])
torch.set_num_threads(threads)
lstm = torch.nn.LSTM(32, 32, batch_first=True)
x = torch.randn(batch, steps, 32)
def call():
    out, _ = lstm(x)
    torch.autograd.grad(out[:, -1].sum(), list(lstm.parameters()))
for _ in range(3):
    call()
times, faults = [], []
for _ in range(repeats):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": rnnkit.config.KEEPS_FREED_MEMORY, "ms": 1e3 * statistics.median(times),
                  "faults": statistics.median(faults)}))
"""


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.allocator", description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)
    print(f"LSTM(32) forward + backward, input ({args.batch}, {args.steps}, 32), {args.threads} thread(s), "
          f"median of {args.repeats} calls")
    print(f"{'RNNKIT_KEEP_FREED_MEMORY':<26}{'kept':>6}{'ms/call':>10}{'page faults/call':>18}")
    for value in ("1", "0"):
        env = {**os.environ, "RNNKIT_KEEP_FREED_MEMORY": value}
        done = subprocess.run([sys.executable, "-c", CHILD, str(args.batch), str(args.steps), str(args.threads),
                               str(args.repeats)], env=env, capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{value:<26}{'yes' if r['kept'] else 'no':>6}{r['ms']:>10.1f}{r['faults']:>18,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
