"""Inference throughput: onnxruntime on the exported ONNX file against rnnkit's ``predict``.

    python -m benchmarks.onnx_throughput                      # A-GRU and B-LSTM-mask, 1 thread
    python -m benchmarks.onnx_throughput --only 'A-*,B-BiLSTM' --threads 2 --repeats 20
    python -m benchmarks.onnx_throughput --quick              # small shapes: a smoke test

The models and inputs are benchmarks/rnn.py's workloads (same shapes, weights and data).
Each row exports the model with ``rnnkit.export.export_onnx`` (left-padded workloads with
``masks="any"``, the Scan path) and times one full batch per step, after warm-up:
``model.predict(x, batch_size=batch)`` against onnxruntime's ``session.run`` (CPU execution
provider, ``intra_op_num_threads`` = ``--threads``, the int32 tokens cast to int64 inside the
timed step). The two alternate step by step (A B B A ...), so a drifting machine slows both
alike. samples/s = batch / median step time. ``max |diff|`` is the largest absolute difference
between the two outputs on the timed batch.
"""
import argparse
import fnmatch
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.rnn import WORKLOADS, build_rnnkit_model, make_data  # noqa: E402

DEFAULT = "A-GRU,B-LSTM-mask"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=DEFAULT, help=f"comma-separated workload patterns (default {DEFAULT})")
    parser.add_argument("--threads", type=int, default=1, help="threads for torch and onnxruntime (default 1)")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per framework (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per framework first (default 2)")
    parser.add_argument("--quick", action="store_true", help="the workloads' small shapes")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import torch

    import rnnkit
    from rnnkit.export import export_onnx

    torch.set_num_threads(args.threads)
    patterns = [p.strip() for p in args.only.split(",") if p.strip()]
    workloads = [w for w in WORKLOADS.values() if any(fnmatch.fnmatch(w.name, p) for p in patterns)]
    if not workloads:
        raise SystemExit(f"--only {args.only} matches no workload; known: {', '.join(WORKLOADS)}")
    print(f"rnnkit {rnnkit.__version__}, torch {torch.__version__}, onnxruntime {ort.__version__}, "
          f"{args.threads} thread(s), {args.repeats} timed steps after {args.warmup} warm-up, CPU")
    print(f"{'workload':<17} {'batch x time':>12} {'rnnkit predict':>16} {'onnxruntime':>14} {'ratio':>6} "
          f"{'max |diff|':>10}  path")
    with tempfile.TemporaryDirectory() as tmp:
        for w in workloads:
            batch, steps = w.shape(args.quick)
            model = build_rnnkit_model(w, steps)
            x, _, _ = make_data(w, batch, steps)
            masks = "any" if w.mask and w.padding == "pre" else "right_padding"
            path = os.path.join(tmp, f"{w.name}.onnx")
            info = export_onnx(model, path, masks=masks)
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            name = info.inputs[0].name
            feed_dtype = np.int64 if info.inputs[0].dtype == "int64" else np.float32

            def run_rnnkit():
                return model.predict(x, batch_size=batch, verbose=0)

            def run_ort():
                return session.run(None, {name: x.astype(feed_dtype, copy=False)})[0]

            for _ in range(args.warmup):
                run_rnnkit(), run_ort()
            times = {"rnnkit": [], "ort": []}
            order = [("rnnkit", run_rnnkit), ("ort", run_ort)]
            for i in range(args.repeats):
                for key, fn in (order if i % 2 == 0 else order[::-1]):
                    start = time.perf_counter()
                    fn()
                    times[key].append(time.perf_counter() - start)
            diff = float(np.max(np.abs(run_rnnkit() - run_ort())))
            rate = {k: batch / statistics.median(v) for k, v in times.items()}
            how = "; ".join(h for _, c, h in info.layers if c in ("LSTM", "GRU", "SimpleRNN", "Bidirectional"))
            print(f"{w.name:<17} {f'{batch}x{steps}':>12} {rate['rnnkit']:>11.0f} s/s {rate['ort']:>9.0f} s/s "
                  f"{rate['ort'] / rate['rnnkit']:>5.2f}x {diff:>10.1e}  {how}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
