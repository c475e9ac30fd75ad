"""Training and prediction throughput of rnnkit against raw PyTorch and Keras 3, in one run.

    python -m benchmarks.rnn                  # everything, full shapes (minutes)
    python -m benchmarks.rnn --quick          # small shapes, few steps: a smoke test, not a measurement
    python -m benchmarks.rnn --only 'A-*' --frameworks rnnkit,torch
    python -m benchmarks.rnn --device cuda --bf16
    python -m benchmarks.rnn --memory         # also peak RSS and growth over 200 training steps of B
    python -m benchmarks.rnn --profile        # torch.profiler + cProfile of A-LSTM and B-LSTM, small scale

Every number is samples/s: the batch size over the median wall time of one step, timed one
step at a time after warm-up steps. A training step is what a user runs:

* rnnkit: ``Sequential`` + ``compile`` + ``model.train_on_batch(x, y)`` with NumPy inputs;
  prediction is ``model.predict_on_batch(x)``.
* torch: the same network from ``nn.Embedding`` / ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` /
  ``nn.Linear`` with a hand-written step (``zero_grad``, forward, loss, ``backward``,
  ``torch.optim`` step, ``loss.item()``); packed sequences for masked inputs; prediction
  under ``torch.inference_mode``.
* keras-torch / keras-tf / keras-jax: Keras 3 (``KERAS_BACKEND=torch`` / ``tensorflow`` /
  ``jax``; on JAX its recurrent layers run ``jax.lax.scan``), each in its own child process
  (a backend is fixed per process) with glibc's default allocator, as their users run them;
  ``train_on_batch`` / ``predict_on_batch``, one step per request from this process, timed
  in the child. Skipped when keras (or the backend) is not importable.

Within a row the frameworks' timed steps alternate (A B C C B A ...), Keras's children
included, so a machine whose speed drifts slows every framework alike.

rnnkit and raw torch run in this process, which imports rnnkit first, so both get
rnnkit's process settings (freed memory kept for reuse, see ``rnnkit.config``): the
rnnkit/torch ratio compares the layers, not the allocator.

FLOPs count the matrix products of one sample's forward pass (recurrent input and state
projections, the Dense head); training counts 3x that (forward + two backward products).
Masked workloads count only the unpadded steps. GFLOP/s is shown as a fraction of the
float32 matrix-product peak measured at the start of the run (``torch.mm``, and oneDNN's
``mkldnn_linear`` on CPU).
"""
import argparse
import contextlib
import copy
import datetime
import fnmatch
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KERAS_BACKENDS = {"keras-torch": "torch", "keras-tf": "tensorflow", "keras-jax": "jax"}
FRAMEWORKS = ("rnnkit", "torch", *KERAS_BACKENDS)
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
GOAL_VS_TORCH = 0.95
GOAL_VS_KERAS_TORCH = 3.0


# ----- workloads -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """One model and batch shape. ``rnn`` lists (cell, units, return_sequences) per layer."""

    name: str
    title: str
    batch: int
    time: int
    rnn: tuple
    quick: tuple  # (batch, time) under --quick
    features: int = 0  # float inputs (batch, time, features)
    vocab: int = 0  # int token inputs (batch, time) -> Embedding(vocab, embed)
    embed: int = 0
    bidirectional: bool = False
    mask: bool = False  # Embedding(mask_zero=True) and random lengths
    padding: str = "post"  # where masked inputs are padded: 'post' (right) or 'pre' (left, pad_sequences' default)
    head: int = 1
    head_activation: str = None
    loss: str = "mse"  # mse | bce (binary, sigmoid head) | sce (sparse CE from logits at every step)
    optimizer: str = "rmsprop"

    def shape(self, quick):
        return self.quick if quick else (self.batch, self.time)


def _workloads():
    a = dict(features=14, loss="mse", optimizer="rmsprop", quick=(64, 30))
    b = dict(vocab=10000, embed=32, head_activation="sigmoid", loss="bce", optimizer="rmsprop", quick=(32, 100))
    items = [
        Workload("A-LSTM", "Jena (256,120,14) LSTM(32)->Dense(1), MSE", 256, 120, (("lstm", 32, False),), **a),
        Workload("A-GRU", "Jena GRU(32)->Dense(1)", 256, 120, (("gru", 32, False),), **a),
        Workload("A-SimpleRNN", "Jena SimpleRNN(32)->Dense(1)", 256, 120, (("simple_rnn", 32, False),), **a),
        Workload("A-GRU2", "Jena GRU(32, return_sequences)->GRU(64)->Dense(1)", 256, 120,
                 (("gru", 32, True), ("gru", 64, False)), **a),
        Workload("B-LSTM", "IMDB (128,500) Embedding(10000,32)->LSTM(32)->Dense(1,sigmoid)", 128, 500,
                 (("lstm", 32, False),), **b),
        Workload("B-SimpleRNN", "IMDB SimpleRNN(32)", 128, 500, (("simple_rnn", 32, False),), **b),
        Workload("B-BiLSTM", "IMDB Bidirectional(LSTM(32))", 128, 500, (("lstm", 32, False),),
                 bidirectional=True, **b),
        Workload("B-LSTM-mask", "IMDB LSTM(32), mask_zero=True, random lengths", 128, 500,
                 (("lstm", 32, False),), mask=True, **b),
        Workload("B-SimpleRNN-mask", "IMDB SimpleRNN(32), mask_zero=True, random lengths", 128, 500,
                 (("simple_rnn", 32, False),), mask=True, **b),
        Workload("B-BiLSTM-mask", "IMDB Bidirectional(LSTM(32)), mask_zero=True, random lengths", 128, 500,
                 (("lstm", 32, False),), bidirectional=True, mask=True, **b),
        Workload("B-LSTM-mask-pre", "IMDB LSTM(32), mask_zero=True, random lengths, left-padded", 128, 500,
                 (("lstm", 32, False),), mask=True, padding="pre", **b),
        Workload("C-LSTM", "char LM (64,100) Embedding(65,64)->LSTM(256, return_sequences)->Dense(65), CE",
                 64, 100, (("lstm", 256, True),), quick=(16, 50), vocab=65, embed=64, head=65, loss="sce",
                 optimizer="adam"),
    ]
    return {w.name: w for w in items}


WORKLOADS = _workloads()


def select_workloads(patterns):
    if not patterns:
        return list(WORKLOADS.values())
    chosen = [w for w in WORKLOADS.values() if any(fnmatch.fnmatch(w.name, p) for p in patterns)]
    if not chosen:
        raise SystemExit(f"--only {','.join(patterns)} matches no workload; known: {', '.join(WORKLOADS)}")
    return chosen


def make_data(w, batch, steps, seed=0):
    """NumPy (x, y, lengths): what a user feeds in (int32 tokens as pad_sequences gives them)."""
    rng = np.random.default_rng(seed)
    lengths = None
    if not w.vocab:
        x = rng.standard_normal((batch, steps, w.features), dtype=np.float32)
        y = rng.standard_normal((batch, 1), dtype=np.float32)
        return x, y, lengths
    x = rng.integers(1, w.vocab, (batch, steps)).astype(np.int32)
    if w.mask:  # padded with zeros, every sequence at least steps//10 long
        lengths = rng.integers(max(1, steps // 10), steps + 1, batch)
        if w.padding == "pre":
            x[np.arange(steps)[None, :] < (steps - lengths)[:, None]] = 0
        else:
            x[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    if w.loss == "sce":
        y = rng.integers(0, w.head, (batch, steps)).astype(np.int32)
    else:
        y = rng.integers(0, 2, (batch, 1)).astype(np.float32)
    return x, y, lengths


def forward_flops(w, steps, lengths=None):
    """Matmul FLOPs of one sample's forward pass (2 per multiply-add); padding excluded."""
    useful_steps = float(np.mean(lengths)) if lengths is not None else steps
    directions = 2 if w.bidirectional else 1
    width = w.embed or w.features
    total = 0.0
    for cell, units, _ in w.rnn:
        total += directions * useful_steps * 2 * GATES[cell] * units * (width + units)
        width = units * directions
    head_positions = steps if w.rnn[-1][2] else 1
    return total + head_positions * 2 * width * w.head


# ----- timing --------------------------------------------------------------------------------------
def measure(fn, warmup, repeats, max_seconds, min_repeats=3, sync=None, before=None):
    """Wall time of each of up to ``repeats`` calls after ``warmup`` calls (stops early after
    ``max_seconds`` once ``min_repeats`` are in); ``before`` runs untimed before each timed call."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    deadline = time.perf_counter() + max_seconds
    while len(times) < repeats and (len(times) < min_repeats or time.perf_counter() < deadline):
        if before:
            before()
            if sync:
                sync()
        start = time.perf_counter()
        result = fn()
        if sync:
            sync()
        elapsed = time.perf_counter() - start
        times.append(result.seconds if isinstance(result, ChildStep) else elapsed)
    return times


def summarize(times, batch, flops_per_sample):
    median = statistics.median(times)
    rate = batch / median
    q = np.percentile(times, [25, 75]) if len(times) > 1 else (median, median)
    return {"median_s": median, "min_s": min(times), "iqr_s": float(q[1] - q[0]), "repeats": len(times),
            "samples_per_s": rate, "gflop_per_sample": flops_per_sample / 1e9,
            "gflops": rate * flops_per_sample / 1e9}


def _sync_fn(device):
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return None


# ----- rnnkit ----------------------------------------------------------------------------------------
def build_rnnkit_model(w, steps, seed=0):
    import torch

    import rnnkit
    from rnnkit import layers

    torch.manual_seed(seed)
    cells = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}
    stack = []
    if w.vocab:
        stack.append(layers.Embedding(w.vocab, w.embed, mask_zero=w.mask))
    for i, (cell, units, return_sequences) in enumerate(w.rnn):
        shape = {"input_shape": (steps, w.features)} if i == 0 and not w.vocab else {}
        layer = cells[cell](units, return_sequences=return_sequences, **({} if w.bidirectional else shape))
        stack.append(layers.Bidirectional(layer, **shape) if w.bidirectional else layer)
    stack.append(layers.Dense(w.head, activation=w.head_activation))
    model = rnnkit.Sequential(stack)
    if not model.built:
        model.build((None, steps) if w.vocab else (None, steps, w.features))
    return model


def initial_weights(w, steps, seed=0):
    """Keras-layout starting weights (Keras's initialisers, seeded) that every framework loads.

    Starting from the same values matters beyond fairness of arithmetic: how fast gradients
    vanish over 500 steps, and so how much denormal arithmetic the CPU does, depends on them.
    """
    return build_rnnkit_model(w, steps, seed).get_weights()


class RnnkitRunner:
    """The public API, as a user writes it: Sequential, compile, train_on_batch, predict_on_batch."""

    framework = "rnnkit"

    def __init__(self, w, batch, steps, device, precision, seed=0):
        from rnnkit import losses

        self.model = build_rnnkit_model(w, steps, seed)
        self.loss = {"mse": "mse", "bce": "binary_crossentropy",
                     "sce": losses.SparseCategoricalCrossentropy(from_logits=True)}[w.loss]
        self.optimizer, self.device = w.optimizer, device
        self.x, self.y, self.lengths = make_data(w, batch, steps, seed)
        self.compile(precision)

    def compile(self, precision):
        self.model.compile(optimizer=self.optimizer, loss=self.loss, device=self.device,
                           mixed_precision="bf16" if precision == "bf16" else None)

    def train(self):
        return self.model.train_on_batch(self.x, self.y)

    def predict(self):
        return self.model.predict_on_batch(self.x)

    def snapshot(self):
        self._saved = copy.deepcopy((self.model.state_dict(), self.model.optimizer.state_dict()))

    def restore(self):
        weights, optimizer = copy.deepcopy(self._saved)
        self.model.load_state_dict(weights)
        self.model.optimizer.load_state_dict(optimizer)

    def paths(self):
        found = {}
        for layer in self.model.layers:
            path = getattr(layer, "execution_path", None)
            if path is not None:
                found[layer.name] = path
        return found


# ----- raw PyTorch -----------------------------------------------------------------------------------
def _torch_net(w, steps):
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    cells = {"simple_rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(w.vocab, w.embed) if w.vocab else None
            width = w.embed or w.features
            self.rnns = nn.ModuleList()
            for cell, units, _ in w.rnn:
                self.rnns.append(cells[cell](width, units, batch_first=True, bidirectional=w.bidirectional))
                width = units * (2 if w.bidirectional else 1)
            self.head = nn.Linear(width, w.head)

        def forward(self, x):
            lengths = (x != 0).sum(1) if w.mask else None
            if lengths is not None and w.padding == "pre":  # rotate the tokens to the front, then pack
                shift = x.shape[1] - lengths
                x = x.gather(1, (torch.arange(x.shape[1], device=x.device)[None, :] + shift[:, None]) % x.shape[1])
            h = self.embed(x) if self.embed is not None else x
            lengths = lengths.cpu() if lengths is not None else None
            for rnn, (cell, _, return_sequences) in zip(self.rnns, w.rnn):
                if lengths is not None:
                    out, state = rnn(pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False))
                    if return_sequences:
                        out = pad_packed_sequence(out, batch_first=True, total_length=steps)[0]
                else:
                    out, state = rnn(h)
                if return_sequences:
                    h = out
                else:
                    h_n = state[0] if cell == "lstm" else state
                    h = torch.cat([h_n[-2], h_n[-1]], dim=-1) if w.bidirectional else h_n[-1]
            y = self.head(h)
            return torch.sigmoid(y) if w.head_activation == "sigmoid" else y

    return Net()


def _load_keras_weights(net, w, weights):
    """Keras-layout arrays into the nn modules (gates i,f,c,o = torch's i,f,g,o; GRU z,r,h -> r,z,n)."""
    import torch

    arrays = iter(torch.as_tensor(a) for a in weights)

    def gru_order(t):
        z, r, h = t.chunk(3, dim=0)
        return torch.cat([r, z, h], dim=0)

    with torch.no_grad():
        if net.embed is not None:
            net.embed.weight.copy_(next(arrays))
        for rnn, (cell, _, _) in zip(net.rnns, w.rnn):
            for suffix in ("_l0", "_l0_reverse") if w.bidirectional else ("_l0",):
                kernel, recurrent, bias = next(arrays), next(arrays), next(arrays)
                order = gru_order if cell == "gru" else (lambda t: t)
                getattr(rnn, "weight_ih" + suffix).copy_(order(kernel.t()))
                getattr(rnn, "weight_hh" + suffix).copy_(order(recurrent.t()))
                if cell == "gru":  # reset_after: bias (2, 3*units) = input and recurrent biases
                    getattr(rnn, "bias_ih" + suffix).copy_(order(bias[0]))
                    getattr(rnn, "bias_hh" + suffix).copy_(order(bias[1]))
                else:  # Keras's single bias; torch's second bias stays zero
                    getattr(rnn, "bias_ih" + suffix).copy_(bias)
                    getattr(rnn, "bias_hh" + suffix).zero_()
        net.head.weight.copy_(next(arrays).t())
        net.head.bias.copy_(next(arrays))


class TorchRunner:
    """Hand-written PyTorch: nn modules, torch.optim (Keras's default hyper-parameters), loss.item()."""

    framework = "torch"

    def __init__(self, w, batch, steps, device, precision, seed=0):
        import torch
        import torch.nn.functional as F

        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.net = _torch_net(w, steps)
        _load_keras_weights(self.net, w, initial_weights(w, steps, seed))
        self.net.to(self.device)
        params = self.net.parameters()
        if w.optimizer == "adam":
            self.opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7)
        else:
            self.opt = torch.optim.RMSprop(params, lr=1e-3, alpha=0.9, eps=1e-7)
        x, y, self.lengths = make_data(w, batch, steps, seed)
        self.x = torch.from_numpy(x).long() if w.vocab else torch.from_numpy(x)
        self.y = torch.from_numpy(y).long() if w.loss == "sce" else torch.from_numpy(y)
        head = w.head
        self.loss_fn = {
            "mse": F.mse_loss,
            "bce": F.binary_cross_entropy,
            "sce": lambda out, target: F.cross_entropy(out.reshape(-1, head), target.reshape(-1)),
        }[w.loss]
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) if precision == "bf16" \
            else contextlib.nullcontext

    def train(self):
        x = self.x.to(self.device, non_blocking=True)
        y = self.y.to(self.device, non_blocking=True)
        self.opt.zero_grad(set_to_none=True)
        with self.autocast():
            out = self.net(x)
        loss = self.loss_fn(out.float(), y)
        loss.backward()
        self.opt.step()
        return loss.item()

    def predict(self):
        import torch

        with torch.inference_mode(), self.autocast():
            return self.net(self.x.to(self.device, non_blocking=True)).float().cpu().numpy()

    def snapshot(self):
        self._saved = copy.deepcopy((self.net.state_dict(), self.opt.state_dict()))

    def restore(self):
        weights, optimizer = copy.deepcopy(self._saved)
        self.net.load_state_dict(weights)
        self.opt.load_state_dict(optimizer)

    def paths(self):
        return {}


# ----- Keras 3 (run inside a worker subprocess) ------------------------------------------------------
class KerasRunner:
    framework = "keras"

    def __init__(self, w, batch, steps, device, precision, seed=0):
        import keras
        from keras import layers

        keras.utils.set_random_seed(seed)
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
        cells = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}
        stack = [keras.Input((steps,), dtype="int32") if w.vocab else keras.Input((steps, w.features))]
        if w.vocab:
            stack.append(layers.Embedding(w.vocab, w.embed, mask_zero=w.mask))
        for cell, units, return_sequences in w.rnn:
            layer = cells[cell](units, return_sequences=return_sequences)
            stack.append(layers.Bidirectional(layer) if w.bidirectional else layer)
        stack.append(layers.Dense(w.head, activation=w.head_activation))
        self.model = keras.Sequential(stack)
        loss = {"mse": "mse", "bce": "binary_crossentropy",
                "sce": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}[w.loss]
        self.model.set_weights(initial_weights(w, steps, seed))
        self.model.compile(optimizer=w.optimizer, loss=loss)
        self.x, self.y, self.lengths = make_data(w, batch, steps, seed)

    def train(self):
        return self.model.train_on_batch(self.x, self.y)

    def predict(self):
        return self.model.predict_on_batch(self.x)

    def snapshot(self):
        self._saved = (self.model.get_weights(), [np.array(v) for v in self.model.optimizer.variables])

    def restore(self):
        weights, slots = self._saved
        self.model.set_weights(weights)
        for variable, value in zip(self.model.optimizer.variables, slots):
            variable.assign(value)

    def paths(self):
        return {}


RUNNERS = {"rnnkit": RnnkitRunner, "torch": TorchRunner}


# ----- Keras in child processes, stepped from here -------------------------------------------------
@dataclass
class ChildStep:
    """One step run in a child process, timed there (the pipe's latency is not in it)."""
    seconds: float
    loss: object = None
    values: object = None


class KerasChild:
    """One Keras backend in its own process (``KERAS_BACKEND`` must be set before keras is
    imported, and backends do not share a process), running one step per request, so that
    its timed steps interleave with rnnkit's and torch's like theirs do with each other."""

    def __init__(self, framework, args):
        import multiprocessing

        self.framework, self.timeout = framework, args.worker_timeout
        backend = KERAS_BACKENDS[framework]
        self.info = {"framework": framework, "backend": backend}
        if importlib.util.find_spec("keras") is None:
            self.info["skipped"] = "keras not installed"
            return
        if backend != "torch" and importlib.util.find_spec(backend) is None:
            self.info["skipped"] = f"{backend} not installed"
            return
        # the child's environment: its backend, glibc's default allocator (as Keras users run it),
        # and no GPU unless asked for (Keras takes any GPU it sees)
        env = {"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "RNNKIT_KEEP_FREED_MEMORY": "0"}
        if not str(args.device).startswith("cuda"):
            env["CUDA_VISIBLE_DEVICES"] = ""
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_keras_child_main, daemon=True,
                                       args=(child_conn, env, args.threads, args.flush_denormal))
        self.process.start()
        print(f"[{framework}] started a child process (KERAS_BACKEND={backend})", flush=True)
        self.info.update(self.request("hello"))

    def request(self, *message):
        self.conn.send(message)
        if not self.conn.poll(self.timeout):
            raise TimeoutError(f"{self.framework} child gave no answer in {self.timeout:.0f} s")
        status, payload = self.conn.recv()
        if status == "error":
            raise RuntimeError(payload)
        return payload

    def close(self):
        if hasattr(self, "process"):
            try:
                self.conn.send(("close",))
            except OSError:
                pass
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()


class RemoteKerasRunner:
    """The runner interface over a :class:`KerasChild`."""

    def __init__(self, child, w, batch, steps, device, precision, seed=0):
        self.child = child
        self.lengths = child.request("build", w, batch, steps, device, precision, seed)

    def train(self):
        return ChildStep(*self.child.request("train", False))

    def predict(self):
        return ChildStep(*self.child.request("predict", False))

    def predict_values(self):
        return ChildStep(*self.child.request("predict", True)).values

    def snapshot(self):
        self.child.request("snapshot")

    def restore(self):
        self.child.request("restore")

    def paths(self):
        return {}


def _keras_child_main(conn, env, threads, flush_denormal):
    """The child's loop: build a KerasRunner, then run and time one step per request."""
    os.environ.update(env)  # before keras (and anything that reads these) is imported
    info, runner = {}, None
    try:
        import keras

        info["keras_version"] = keras.__version__
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            info["tensorflow_version"] = tf.__version__
            if threads:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(max(1, threads // 2))
        elif backend == "jax":
            import jax

            info["jax_version"] = jax.__version__
        else:
            import torch

            if threads:
                torch.set_num_threads(threads)
            if flush_denormal:
                torch.set_flush_denormal(True)
            info["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    except Exception as exc:
        info = {"skipped": f"keras not importable: {type(exc).__name__}: {exc}"}
    sync = _sync_fn("cuda") if info.get("device") == "cuda" else None
    while True:
        try:
            op, *rest = conn.recv()
        except EOFError:
            return
        try:
            if op == "close":
                return
            if op == "hello":
                reply = info
            elif op == "build":
                runner = KerasRunner(*rest)
                reply = runner.lengths
            elif op in ("train", "predict"):
                start = time.perf_counter()
                out = runner.train() if op == "train" else runner.predict()
                if sync:
                    sync()
                seconds = time.perf_counter() - start
                values = np.asarray(out, dtype=np.float32) if op == "predict" and rest[0] else None
                reply = (seconds, _loss_value(out) if op == "train" else None, values)
            else:  # snapshot, restore
                reply = getattr(runner, op)()
            conn.send(("ok", reply))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"[:300]))


def _loss_value(value):
    if isinstance(value, ChildStep):
        value = value.loss
    if isinstance(value, (list, tuple)):
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def bench_interleaved(built, w, batch, steps, args, precision, mode):
    """Rows for one workload and mode. The frameworks' timed steps alternate (A B B A ...), so
    whatever else the machine does in the meantime slows all of them alike; a shared 2-core
    machine drifts by 10 % and more between consecutive rows."""
    sync = _sync_fn(args.device)
    flops = forward_flops(w, steps, next(iter(built.values())).lengths) if built else 0
    base = {"workload": w.name, "mode": mode, "precision": precision, "batch": batch, "steps": steps}
    rows, fns, befores = [], {}, {}

    def fail(framework, exc):  # a failing row is reported, not fatal
        rows.append({**base, "framework": framework, "error": f"{type(exc).__name__}: {exc}"[:300]})
        _progress(rows[-1])
        fns.pop(framework, None)

    for framework, runner in built.items():
        fn = runner.train if mode == "train" else runner.predict
        try:
            measure(fn, args.warmup, 0, 0, 0, sync)
            if mode == "train" and not args.drift:  # every timed step starts from the same state
                runner.snapshot()
                befores[framework] = runner.restore
            fns[framework] = fn
        except Exception as exc:
            fail(framework, exc)
    times = {framework: [] for framework in fns}
    deadline = time.perf_counter() + args.max_seconds * max(len(fns), 1)
    turn = 0
    while fns and (min(len(times[f]) for f in fns) < args.min_repeats
                   or (min(len(times[f]) for f in fns) < args.repeats and time.perf_counter() < deadline)):
        order = list(fns) if turn % 2 == 0 else list(fns)[::-1]
        for framework in order:
            try:
                times[framework] += measure(fns[framework], 0, 1, 0, 1, sync, befores.get(framework))
            except Exception as exc:
                fail(framework, exc)
        turn += 1
    for framework, fn in fns.items():
        runner = built[framework]
        row = {**base, "framework": framework,
               **summarize(times[framework], batch, flops * (3 if mode == "train" else 1))}
        if mode == "train":
            row["last_loss"] = _loss_value(fn())
        paths = runner.paths()
        if paths:
            row["paths"] = paths
        rows.append(row)
        _progress(row)
    return rows


def _progress(row):
    if "error" in row:
        text = "ERROR " + row["error"]
    else:
        text = f"{row['samples_per_s']:>12,.0f} samples/s  ({row['repeats']} steps, median {row['median_s'] * 1e3:.1f} ms)"
    print(f"  {row['workload']:<17} {row['mode']:<8} {row['precision']:<5} {row['framework']:<12} {text}", flush=True)


def bench_all(args, workloads, precisions, frameworks, children, rows, save):
    """Every workload, precision and mode into ``rows``, the frameworks' steps interleaved
    (Keras through its ``children``); ``save()`` after each workload."""
    for w in workloads:
        batch, steps = w.shape(args.quick)
        for precision in precisions:
            built = {}
            for framework in frameworks:
                try:
                    if framework in children:
                        built[framework] = RemoteKerasRunner(children[framework], w, batch, steps, args.device,
                                                             precision)
                    else:
                        built[framework] = RUNNERS[framework](w, batch, steps, args.device, precision)
                except Exception as exc:
                    rows.append({"workload": w.name, "framework": framework, "mode": "build", "precision": precision,
                                 "batch": batch, "steps": steps, "error": f"{type(exc).__name__}: {exc}"[:300]})
                    _progress(rows[-1])
            checks = _same_model_checks(w, batch, steps, args, built) if precision == "fp32" else {}
            for mode in args.modes:
                new = bench_interleaved(built, w, batch, steps, args, precision, mode)
                for row in new:
                    if row["framework"] in checks:
                        row["max_abs_diff_vs_rnnkit"] = checks[row["framework"]]
                rows += new
            if precision == "bf16" and "rnnkit" in built:
                rows.append(_bf16_accuracy(w, batch, steps, args))
        save()


def _same_model_checks(w, batch, steps, args, built):
    """Max |prediction - rnnkit's prediction| of each freshly built runner, same weights and data:
    proof that the frameworks compute the same model."""
    checks = {}
    try:
        reference = RnnkitRunner(w, batch, steps, args.device, "fp32").predict()
        for framework, runner in built.items():
            values = runner.predict_values() if hasattr(runner, "predict_values") else runner.predict()
            checks[framework] = float(np.max(np.abs(np.asarray(values, dtype=np.float32) - reference)))
    except Exception as exc:
        print(f"  same-model check failed: {type(exc).__name__}: {exc}", flush=True)
    return checks


def _bf16_accuracy(w, batch, steps, args):
    """How far bf16 autocast moves rnnkit's predictions, same weights and batch."""
    runner = RnnkitRunner(w, batch, steps, args.device, "fp32")
    reference = runner.predict()
    runner.compile("bf16")
    approx = runner.predict()
    err = float(np.max(np.abs(approx - reference)))
    scale = float(np.max(np.abs(reference))) or 1.0
    return {"workload": w.name, "framework": "rnnkit", "mode": "bf16-accuracy", "precision": "bf16",
            "max_abs_err": err, "max_rel_err": err / scale}


# ----- workers (subprocesses) ------------------------------------------------------------------------
def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak_rss_bytes():
    """This process's own high-water mark (VmHWM). ``ru_maxrss`` would not do: Linux carries
    it over from the parent through fork and exec, so every worker reported the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker_memory(args):
    """Peak RSS of training one B workload, and RSS growth over ``--memory-steps`` steps after
    ``--memory-warmup`` steps, in a fresh process; "no growth" is judged on the last
    ``--memory-judged-steps`` of them (a leak grows there too; a heap that glibc extends once
    more while it settles does not)."""
    import torch

    framework, name = args.memory_target.split(":")
    w = WORKLOADS[name]
    batch, steps = w.shape(args.quick)
    runner = RUNNERS[framework](w, batch, steps, args.device, "fp32")
    baseline = _rss_bytes()  # everything imported and built, nothing trained yet
    cuda = str(args.device).startswith("cuda")
    rss, gpu = [], []
    for _ in range(args.memory_warmup + args.memory_steps):
        runner.train()
        rss.append(_rss_bytes())
        if cuda:
            gpu.append(torch.cuda.memory_allocated())
    # the allocator settles over the first tens of steps (glibc extends its heap once or twice)
    warm = min(args.memory_warmup, len(rss) - 1)
    tail = np.asarray(rss[warm:], dtype=np.float64)
    judged = tail[-min(args.memory_judged_steps, len(tail)):]
    growth, judged_growth = _rss_growth(tail), _rss_growth(judged)
    slope = float(np.polyfit(np.arange(len(judged)), judged, 1)[0]) if len(judged) > 2 else 0.0
    result = {"framework": framework, "workload": name, "batch": batch, "steps": steps,
              "train_steps": len(rss) - warm, "warmup_steps": warm, "judged_steps": len(judged),
              "baseline_rss_mb": baseline / 2**20, "peak_rss_mb": _peak_rss_bytes() / 2**20,
              "rss_after_warmup_mb": rss[warm] / 2**20, "rss_final_mb": rss[-1] / 2**20,
              "growth_mb": growth / 2**20, "judged_growth_mb": judged_growth / 2**20,
              "slope_kb_per_step": slope / 1024,
              "no_growth": judged_growth <= args.memory_tolerance_mb * 2**20}
    if cuda:
        result.update({"gpu_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20,
                       "gpu_growth_mb": (gpu[-1] - gpu[warm]) / 2**20})
    return result


def _rss_growth(rss):
    """Median RSS of the last tenth of the steps minus that of the first tenth: one step's
    allocator spike (RSS moves by tens of MB as glibc maps and trims) is not growth."""
    window = max(1, len(rss) // 10)
    return float(np.median(rss[-window:]) - np.median(rss[:window]))


def run_worker_subprocess(args, worker, extra_env=None, extra_args=(), timeout=None):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "benchmarks.rnn", *args.forward_argv, "--worker", worker,
               "--worker-out", str(out), *extra_args]
        env = dict(os.environ)
        src = str(ROOT / "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, str(ROOT), env.get("PYTHONPATH")) if p)
        env.update(extra_env or {})
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"skipped": f"worker {worker} timed out after {timeout} s"}
        if proc.returncode != 0 or not out.exists():
            return {"skipped": f"worker {worker} exited with status {proc.returncode}"}
        return json.loads(out.read_text())


def bench_memory(args):
    results = []
    targets = [f"{fw}:{name}" for name in args.memory_workloads for fw in ("torch", "rnnkit")
               if fw in args.frameworks]
    for target in targets:
        print(f"[memory] {target}: {args.memory_warmup} + {args.memory_steps} training steps in a fresh process",
              flush=True)
        result = run_worker_subprocess(args, "memory", extra_args=["--memory-target", target],
                                       timeout=args.worker_timeout)
        result.setdefault("target", target)
        results.append(result)
        if "peak_rss_mb" in result:
            print(f"  peak RSS {result['peak_rss_mb']:.0f} MB (baseline {result['baseline_rss_mb']:.0f} MB), "
                  f"growth after warm-up {result['growth_mb']:+.1f} MB, over the last {result['judged_steps']} "
                  f"steps {result['judged_growth_mb']:+.1f} MB -> "
                  f"{'ok' if result['no_growth'] else 'GROWS'}", flush=True)
        else:
            print(f"  skipped: {result.get('skipped')}", flush=True)
    return results


# ----- peaks and machine facts -----------------------------------------------------------------------
def measure_peaks(args):
    """float32 matrix-product peak in GFLOP/s: torch.mm, and oneDNN's linear on CPU."""
    import torch

    n = 2048 if args.quick else 4096
    device = torch.device(args.device)
    sync = _sync_fn(args.device)
    peaks = {"matmul_size": n}
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    flops = 2.0 * n**3
    reps = 3 if args.quick else 6
    times = measure(lambda: torch.mm(a, b), 2, reps, 30, 2, sync)
    peaks["torch_mm_fp32"] = flops / min(times) / 1e9
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        try:
            am, bm = a.to_mkldnn(), b.to_mkldnn()
            times = measure(lambda: torch._C._nn.mkldnn_linear(am, bm), 2, reps, 30, 2)
            peaks["onednn_fp32"] = flops / min(times) / 1e9
        except Exception as exc:  # private op; report instead of failing the run
            peaks["onednn_fp32_error"] = str(exc)[:200]
    if "bf16" in args.precisions:
        a16, b16 = a.bfloat16(), b.bfloat16()
        times = measure(lambda: torch.mm(a16, b16), 2, reps, 30, 2, sync)
        peaks["torch_mm_bf16"] = flops / min(times) / 1e9
    return peaks


def machine_facts(args):
    import torch

    facts = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
             "command": "python -m benchmarks.rnn " + " ".join(args.argv),
             "quick": args.quick, "device": args.device, "python": platform.python_version(),
             "flush_denormal": args.flush_denormal, "same_state_steps": not args.drift,
             "torch": torch.__version__, "numpy": np.__version__, "os": platform.platform(),
             "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
             "mkldnn_enabled": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled}
    try:
        facts["load_average_1min"] = os.getloadavg()[0]
    except OSError:
        pass
    cpu, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    facts["cpu"] = cpu or platform.processor() or platform.machine()
    facts["cpu_bf16"] = sorted(flags & {"avx512_bf16", "amx_bf16"})
    try:
        import rnnkit

        facts["rnnkit"] = rnnkit.__version__
        facts["keeps_freed_memory"] = rnnkit.config.KEEPS_FREED_MEMORY
        from rnnkit import cpu_kernels

        facts["native_cpu_kernels"] = cpu_kernels.unavailable_reason() or "yes"
    except Exception:
        pass
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name()
        facts["cuda"] = torch.version.cuda
        facts["cudnn"] = torch.backends.cudnn.version()
    return facts


# ----- report ----------------------------------------------------------------------------------------
def _fmt_rate(row):
    if row is None:
        return "-"
    if "error" in row:
        return "error"
    return f"{row['samples_per_s']:,.0f}"


def _ratio(a, b):
    if not a or not b or "error" in a or "error" in b:
        return None
    return a["samples_per_s"] / b["samples_per_s"]


def _short_path(paths):
    if not paths:
        return "-"
    if all(p.startswith("fused") for p in paths.values()):
        return "; ".join(sorted(set(paths.values())))
    return "; ".join(f"{k}: {v}" for k, v in paths.items())


PEERS = ("torch", *KERAS_BACKENDS)


def _fmt_best_peer(ours, peers):
    """rnnkit over the fastest of the other frameworks measured on this row, and which it was."""
    rates = [(row["samples_per_s"], fw) for fw, row in peers if row and "error" not in row]
    if not rates or not ours or "error" in ours:
        return "-"
    rate, fw = max(rates)
    return f"{ours['samples_per_s'] / rate:.2f} ({fw})"


def build_table(results):
    rows = [r for r in results["rows"] if r.get("mode") in ("train", "predict")]
    index = {(r["workload"], r["mode"], r["precision"], r["framework"]): r for r in rows}
    peaks = results["peaks"]
    lines = []
    keys = sorted({(r["workload"], r["mode"], r["precision"]) for r in rows},
                  key=lambda k: (list(WORKLOADS).index(k[0]), k[2] != "fp32", k[1] != "train"))
    for workload, mode, precision in keys:
        get = lambda fw: index.get((workload, mode, precision, fw))  # noqa: E731
        ours, torch_row, kt = get("rnnkit"), get("torch"), get("keras-torch")
        vs_torch, vs_keras = _ratio(ours, torch_row), _ratio(ours, kt)
        gflops = ours["gflops"] if ours and "error" not in ours else None
        peak = peaks.get("torch_mm_bf16" if precision == "bf16" else "torch_mm_fp32")
        onednn = peaks.get("onednn_fp32") if precision == "fp32" else None
        lines.append({
            "workload": workload, "mode": mode, "precision": precision,
            "rnnkit": _fmt_rate(ours), "torch": _fmt_rate(torch_row), "keras-torch": _fmt_rate(kt),
            "keras-tf": _fmt_rate(get("keras-tf")), "keras-jax": _fmt_rate(get("keras-jax")),
            "rnnkit/best peer": _fmt_best_peer(ours, [(fw, get(fw)) for fw in PEERS]),
            "rnnkit/torch": "-" if vs_torch is None else
            f"{vs_torch:.2f}" + ("" if vs_torch >= GOAL_VS_TORCH else " (<0.95)"),
            "rnnkit/keras-torch": "-" if vs_keras is None else
            f"{vs_keras:.1f}" + ("" if vs_keras >= GOAL_VS_KERAS_TORCH else " (<3)"),
            "GFLOP/s": "-" if gflops is None else f"{gflops:.1f}",
            "torch GFLOP/s": "-" if not torch_row or "error" in torch_row else f"{torch_row['gflops']:.1f}",
            "% mm peak": "-" if gflops is None or not peak else f"{100 * gflops / peak:.0f}%",
            "% oneDNN peak": "-" if gflops is None or not onednn else f"{100 * gflops / onednn:.0f}%",
            "rnnkit path": _short_path(ours.get("paths") if ours else None),
        })
    return lines


def render(lines, markdown):
    if not lines:
        return "(no rows)"
    cols = list(lines[0])
    if markdown:
        out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        out += ["| " + " | ".join(str(line[c]) for c in cols) + " |" for line in lines]
        return "\n".join(out)
    cols = [c for c in cols if c != "rnnkit path"]
    widths = {c: max(len(c), *(len(str(line[c])) for line in lines)) for c in cols}
    out = ["  ".join(c.rjust(widths[c]) if i > 2 else c.ljust(widths[c]) for i, c in enumerate(cols))]
    out.append("  ".join("-" * widths[c] for c in cols))
    for line in lines:
        out.append("  ".join(str(line[c]).rjust(widths[c]) if i > 2 else str(line[c]).ljust(widths[c])
                             for i, c in enumerate(cols)))
    return "\n".join(out)


def write_markdown(results, path):
    facts, peaks = results["facts"], results["peaks"]
    lines = build_table(results)
    md = ["# rnnkit RNN benchmark", "",
          "Generated by `python -m benchmarks.rnn`; do not edit by hand.", ""]
    if facts.get("quick"):
        md += ["**Quick mode: small shapes and few steps. A smoke test, not a measurement.**", ""]
    load = facts.get("load_average_1min")
    if load is not None and load > 0.5 * (facts.get("logical_cpus") or 1):
        md += [f"**The machine was busy (1-minute load average {load:.1f} on {facts['logical_cpus']} CPUs) when "
               "this run started: timings are unreliable.**", ""]
    md += ["## Machine", "",
           f"- command: `{facts['command'].strip()}`", f"- date: {facts['date']}",
           f"- CPU: {facts['cpu']} ({facts['logical_cpus']} logical CPUs, torch threads: {facts['torch_threads']}"
           f"{', bf16: ' + '/'.join(facts['cpu_bf16']) if facts.get('cpu_bf16') else ''})",
           f"- device: {facts['device']}" + (f" ({facts['gpu']}, CUDA {facts.get('cuda')}, cuDNN {facts.get('cudnn')})"
                                              if facts.get("gpu") and facts["device"].startswith("cuda") else ""),
           f"- torch {facts['torch']}, numpy {facts['numpy']}, python {facts['python']}, rnnkit {facts.get('rnnkit')}",
           f"- flush denormals: {'on (--flush-denormal, every framework)' if facts.get('flush_denormal') else 'off'}; "
           f"1-minute load average at start: {facts.get('load_average_1min', '?')}",
           "- freed memory kept for reuse (rnnkit's import setting; this process: rnnkit and torch rows): "
           + {True: "yes", False: "no"}.get(facts.get("keeps_freed_memory"), "?"),
           "- rnnkit's native CPU kernels (float32 GRU and SimpleRNN, `rnnkit/cpu_kernels.c`): "
           + facts.get("native_cpu_kernels", "?")]
    for fw in KERAS_BACKENDS:
        info = results["keras"].get(fw)
        if info:
            md.append(f"- {fw}: " + (f"skipped ({info['skipped']})" if "skipped" in info else
                                     f"keras {info.get('keras_version')}" +
                                     (f", tensorflow {info['tensorflow_version']}" if "tensorflow_version" in info else "")
                                     + (f", jax {info['jax_version']}" if "jax_version" in info else "")
                                     + (f", device {info['device']}" if "device" in info else "")))
    md.append(f"- float32 matmul peak ({peaks['matmul_size']}x{peaks['matmul_size']}): torch.mm "
              f"{peaks['torch_mm_fp32']:.0f} GFLOP/s" +
              (f", oneDNN linear {peaks['onednn_fp32']:.0f} GFLOP/s" if "onednn_fp32" in peaks else "") +
              (f"; bf16 torch.mm {peaks['torch_mm_bf16']:.0f} GFLOP/s" if "torch_mm_bf16" in peaks else ""))
    md += ["", "## Throughput (samples/s, median step)", "",
           f"Goals: rnnkit/torch >= {GOAL_VS_TORCH}, rnnkit/keras-torch >= {GOAL_VS_KERAS_TORCH:g}; "
           "misses are marked. GFLOP/s and % of peak are rnnkit's.", "", render(lines, markdown=True), ""]
    misses = [f"{x['workload']} {x['mode']} {x['precision']}" for x in lines if "(<" in x["rnnkit/torch"]]
    md += [f"Below {GOAL_VS_TORCH}x raw torch: " + (", ".join(misses) if misses else "none") + ".", ""]
    acc = [r for r in results["rows"] if r.get("mode") == "bf16-accuracy"]
    if acc:
        md += ["## bf16 autocast: prediction error against float32 (same weights and batch)", "",
               "| workload | max abs error | max relative error |", "|---|---|---|"]
        md += [f"| {r['workload']} | {r['max_abs_err']:.2e} | {r['max_rel_err']:.2e} |" for r in acc]
        md.append("")
    errors = [r for r in results["rows"] if "error" in r]
    if errors:
        md += ["## Errors", ""] + [f"- {r['workload']} {r['mode']} {r['precision']} {r['framework']}: "
                                   f"`{r['error']}`" for r in errors] + [""]
    if results.get("memory"):
        md += ["## Memory: training workload B", "",
               "| framework | workload | steps measured (warm-up) | peak RSS MB | RSS before training MB "
               "| RSS after warm-up MB | growth after warm-up MB | growth over the last N steps MB "
               "| slope over those KB/step | no growth over those |", "|---|---|---|---|---|---|---|---|---|---|"]
        for m in results["memory"]:
            if "peak_rss_mb" not in m:
                md.append(f"| {m.get('target')} | skipped: {m.get('skipped')} | | | | | | | | |")
                continue
            md.append(f"| {m['framework']} | {m['workload']} | {m['train_steps']} "
                      f"({m.get('warmup_steps', 20)}) | {m['peak_rss_mb']:.0f} | "
                      f"{m['baseline_rss_mb']:.0f} | {m['rss_after_warmup_mb']:.0f} | {m['growth_mb']:+.1f} | "
                      f"{m['judged_growth_mb']:+.1f} (N = {m['judged_steps']}) | {m['slope_kb_per_step']:+.1f} | "
                      f"{'yes' if m['no_growth'] else 'NO'} |")
        md.append("")
    diffs = {}
    for r in results["rows"]:
        if "max_abs_diff_vs_rnnkit" in r and r["framework"] != "rnnkit":
            diffs.setdefault(r["workload"], {})[r["framework"]] = r["max_abs_diff_vs_rnnkit"]
    if diffs:
        md += ["## Same model check", "",
               "Every framework starts from the same Keras-initialised weights; max |prediction - rnnkit's| "
               "before training (anything above 1e-3 means the models differ):", ""]
        md += [f"- {wl}: " + ", ".join(f"{fw} {d:.1e}" for fw, d in fws.items()) for wl, fws in diffs.items()] + [""]
    paths = {r["workload"]: r["paths"] for r in results["rows"] if r.get("paths") and r["mode"] == "train"}
    if paths:
        md += ["## rnnkit execution paths (training)", ""]
        md += [f"- {w}: " + ", ".join(f"{k}: {v}" for k, v in p.items()) for w, p in paths.items()] + [""]
    same_state = facts.get("same_state_steps", True)
    md += ["## Method", "",
           "Each step is timed alone (CUDA synchronised) after warm-up steps; the table shows the median. "
           "Within a row the frameworks' timed steps alternate; each Keras backend runs in a child process "
           "of its own with glibc's default allocator, stepped from the benchmark's process and timed in the "
           "child. rnnkit and raw torch share the benchmark's process and so rnnkit's process settings. "
           "Every framework starts from the same Keras-initialised weights and data. "
           + ("Before each timed training step the weights and optimizer state saved after warm-up are restored "
              "(untimed), so every timed step does the same arithmetic (how fast gradients vanish, and so how "
              "much slow denormal arithmetic the CPU does, otherwise drifts as the weights train). "
              if same_state else "Weights train on between timed steps (--drift). ")
           + "rnnkit and Keras get NumPy inputs and run `train_on_batch` / `predict_on_batch`; raw torch gets "
           "tensors prepared once and runs a hand-written step ending in `loss.item()`. Optimizers use Keras's "
           "defaults (RMSprop lr 1e-3, rho 0.9; Adam lr 1e-3; epsilon 1e-7). FLOPs: matrix products of "
           "the forward pass x3 for training; masked rows count unpadded steps only.", ""]
    Path(path).write_text("\n".join(md))


# ----- profiling -------------------------------------------------------------------------------------
def profile(args, out_path):
    """Where a step's time goes, rnnkit vs raw torch (small shapes unless ``--profile-full``)."""
    import cProfile
    import io
    import pstats

    from torch.profiler import ProfilerActivity, profile as torch_profile

    activities = [ProfilerActivity.CPU]
    if str(args.device).startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    sort = "self_device_time_total" if len(activities) > 1 else "self_cpu_time_total"
    text = []
    for name in args.profile_workloads:
        w = WORKLOADS[name]
        batch, steps = w.shape(not args.profile_full)
        for mode in args.profile_modes:
            for framework in ("torch", "rnnkit"):
                runner = RUNNERS[framework](w, batch, steps, args.device, "fp32")
                fn = runner.train if mode == "train" else runner.predict
                times = measure(fn, 5, 30, 10, 5, _sync_fn(args.device))
                head = (f"==== {name} {mode} {framework}: batch {batch}, {steps} steps, median "
                        f"{statistics.median(times) * 1e3:.2f} ms/step ====")
                print(head, flush=True)
                text.append(head)
                with torch_profile(activities=activities) as prof:
                    for _ in range(10):
                        fn()
                try:
                    text.append(prof.key_averages().table(sort_by=sort, row_limit=25))
                except Exception:  # older torch names the CUDA column self_cuda_time_total
                    text.append(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=25))
                if framework == "rnnkit":
                    pr = cProfile.Profile()
                    pr.enable()
                    for _ in range(10):
                        fn()
                    pr.disable()
                    buf = io.StringIO()
                    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(25)
                    text.append("cProfile (10 steps, by own time):\n" + buf.getvalue())
    Path(out_path).write_text("\n\n".join(text))
    print(f"profile written to {out_path}", flush=True)


# ----- command line ----------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.rnn", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small shapes, few steps (a smoke test)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--bf16", action="store_true", help="also run every row under bfloat16 autocast")
    p.add_argument("--only", type=lambda s: [x for x in s.split(",") if x], default=None,
                   help="comma-separated workload names or globs, e.g. 'A-*,B-LSTM'")
    p.add_argument("--frameworks", type=lambda s: [x for x in s.split(",") if x], default=list(FRAMEWORKS),
                   help=f"comma-separated subset of {','.join(FRAMEWORKS)}")
    p.add_argument("--modes", type=lambda s: [x for x in s.split(",") if x], default=["train", "predict"])
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; quick 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed steps (default 15; quick 5)")
    p.add_argument("--min-repeats", type=int, default=3)
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop timing a row after this long once --min-repeats are in (default 20; quick 3)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--drift", action="store_true",
                   help="let the weights train on between timed steps (default: restore the post-warm-up "
                        "weights and optimizer state before each timed training step)")
    p.add_argument("--flush-denormal", action="store_true",
                   help="torch.set_flush_denormal(True) in every process before any work (all frameworks)")
    p.add_argument("--memory", action="store_true", help="peak RSS and growth over training steps of B")
    p.add_argument("--memory-steps", type=int, default=400, help="training steps measured for growth")
    p.add_argument("--memory-warmup", type=int, default=50, help="training steps before those")
    p.add_argument("--memory-judged-steps", type=int, default=200,
                   help="'no growth' is judged over the last this many measured steps")
    p.add_argument("--memory-workloads", type=lambda s: s.split(","), default=["B-LSTM", "B-LSTM-mask"])
    p.add_argument("--memory-tolerance-mb", type=float, default=8.0,
                   help="RSS growth after warm-up counted as 'no growth' (allocator noise)")
    p.add_argument("--profile", action="store_true", help="profile A-LSTM and B-LSTM (small scale) instead")
    p.add_argument("--profile-workloads", type=lambda s: s.split(","), default=["A-LSTM", "B-LSTM"])
    p.add_argument("--profile-full", action="store_true", help="profile at the benchmark's shapes, not the quick ones")
    p.add_argument("--profile-modes", type=lambda s: s.split(","), default=["train", "predict"])
    p.add_argument("--out-dir", default=None, help="where results.md/json go (default benchmarks/)")
    p.add_argument("--worker-timeout", type=float, default=None)
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    # internal: subprocess workers
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--memory-target", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    unknown = set(args.frameworks) - set(FRAMEWORKS)
    if unknown:
        p.error(f"unknown framework(s) {sorted(unknown)}; choose from {FRAMEWORKS}")
    args.precisions = ["fp32", "bf16"] if args.bf16 else ["fp32"]
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 3)
    args.repeats = args.repeats if args.repeats is not None else (5 if args.quick else 15)
    args.max_seconds = args.max_seconds if args.max_seconds is not None else (3.0 if args.quick else 20.0)
    args.worker_timeout = args.worker_timeout or (900 if args.quick else 7200)
    # what workers inherit: the user's flags minus the worker-only ones
    args.argv = list(argv)
    args.forward_argv = _strip_worker_flags(argv)
    return args


def _strip_worker_flags(argv):
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        if item in ("--worker", "--worker-out", "--memory-target", "--out-dir"):
            skip = True
            continue
        if item.split("=")[0] in ("--worker", "--worker-out", "--memory-target", "--out-dir") or item in (
                "--memory", "--profile", "--list"):
            continue
        out.append(item)
    return out


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.list:
        for w in WORKLOADS.values():
            print(f"{w.name:<18} {w.title}  (quick: batch {w.quick[0]}, {w.quick[1]} steps)")
        return 0
    if args.flush_denormal:  # before the first parallel region, so OpenMP's threads inherit it
        import torch

        torch.set_flush_denormal(True)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.worker:
        result = worker_memory(args)
        Path(args.worker_out).write_text(json.dumps(result, indent=1, default=str))
        return 0
    out_dir = Path(args.out_dir) if args.out_dir else HERE
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.profile:
        profile(args, out_dir / "profile.txt")
        return 0
    workloads = select_workloads(args.only)
    facts = machine_facts(args)
    print(f"rnnkit benchmark on {facts['cpu']} ({facts['torch_threads']} torch threads), torch {facts['torch']}, "
          f"device {args.device}{' [QUICK: not a measurement]' if args.quick else ''}", flush=True)
    load = facts.get("load_average_1min")
    if load is not None and load > 0.5 * (facts["logical_cpus"] or 1):
        print(f"WARNING: 1-minute load average {load:.1f} on {facts['logical_cpus']} CPUs: other work is running, "
              "timings will be noisy (try --threads 1, or a quiet machine)", flush=True)
    peaks = measure_peaks(args)
    print("peaks (GFLOP/s): " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items() if isinstance(v, float)),
          flush=True)
    results = {"facts": facts, "peaks": peaks, "rows": [], "keras": {}, "memory": []}
    stem = "results-quick" if args.quick else "results"

    def save():  # after every stage, so an interrupted run keeps what it measured
        (out_dir / f"{stem}.json").write_text(json.dumps(results, indent=1, default=str))
        write_markdown(results, out_dir / f"{stem}.md")

    children = {}
    try:
        for framework in KERAS_BACKENDS:
            if framework in args.frameworks:
                child = KerasChild(framework, args)
                results["keras"][framework] = child.info
                if "skipped" in child.info:
                    print(f"[{framework}] skipped: {child.info['skipped']}", flush=True)
                    child.close()
                else:
                    children[framework] = child
        frameworks = [fw for fw in args.frameworks if fw in RUNNERS or fw in children]
        bench_all(args, workloads, args.precisions, frameworks, children, results["rows"], save)
    finally:
        for child in children.values():
            child.close()
    save()
    if args.memory:
        results["memory"] = bench_memory(args)
    save()
    print()
    print(render(build_table(results), markdown=False))
    print(f"\nwrote {out_dir / (stem + '.md')} and {out_dir / (stem + '.json')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
