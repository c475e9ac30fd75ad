"""rnnkit's native CPU GRU and SimpleRNN (``rnnkit.cpu_kernels``) against the step-by-step reference.

The kernels are float32; the reference runs the lecture's equations in float64 on the same
weights. Values and gradients (inputs, initial state, every weight) must agree within
float32 tolerance, for batches split across one, two and three threads (row blocks of
unequal size included), with and without biases, and through the output sequence, the
final state, or both. Also: the fused path picks them for float32 only, and without a
compiler the layers fall back (ATen's GRU, ``cpu_loops``' SimpleRNN) with the reason recorded.
"""
import functools
import os
import subprocess
import sys

import pytest
import torch

from rnnkit import cpu_kernels, cpu_loops, fused
from rnnkit.layers import GRU, SimpleRNN
from rnnkit.recurrence import SequenceOptions, gru_sequence, simple_rnn_sequence

pytestmark = pytest.mark.skipif(not cpu_kernels.available(),
                                reason=f"native kernels unavailable: {cpu_kernels.unavailable_reason()}")


@pytest.fixture
def threads(request):
    previous = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(previous)


CELLS = ["gru", "tanh", "relu"]


def keras_weights(cell, features, units, use_bias, seed):
    g = torch.Generator().manual_seed(seed)
    gates = 3 if cell == "gru" else 1
    kernel = torch.randn(features, gates * units, generator=g, dtype=torch.float64) * 0.5
    # spectral radius below 1, so float32 rounding does not grow chaotically over the steps
    recurrent = torch.randn(units, gates * units, generator=g, dtype=torch.float64) * (0.8 / units ** 0.5)
    bias_shape = (2, 3 * units) if cell == "gru" else (units,)  # GRU reset_after: input and recurrent rows
    bias = torch.randn(*bias_shape, generator=g, dtype=torch.float64) * 0.5 if use_bias else None
    return kernel, recurrent, bias


def run_both(cell, batch, steps, features, units, use_bias, seed=0):
    """(reference float64, native float32) outputs, final states and gradients of one loss."""
    weights = keras_weights(cell, features, units, use_bias, seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, steps, features, generator=g, dtype=torch.float64)
    h0 = torch.randn(batch, units, generator=g, dtype=torch.float64) * 0.5
    probe_out = torch.randn(batch, steps, units, generator=g, dtype=torch.float64)
    probe_last = torch.randn(batch, units, generator=g, dtype=torch.float64)

    def grads(out, last, leaves):
        loss = (out * probe_out.to(out.dtype)).sum() + (last * probe_last.to(last.dtype)).sum()
        return torch.autograd.grad(loss, leaves)

    ref_leaves = [t.clone().requires_grad_(True) for t in (x, h0, *[w for w in weights if w is not None])]
    ref_weights = (ref_leaves[2], ref_leaves[3], ref_leaves[4] if use_bias else None)
    if cell == "gru":
        reference_fn, options = gru_sequence, SequenceOptions()
    else:
        reference_fn, options = simple_rnn_sequence, SequenceOptions(activation=getattr(torch, cell))
    ref_out, (ref_last,) = reference_fn(ref_leaves[0], (ref_leaves[1],), ref_weights, options)
    reference = (ref_out, ref_last, grads(ref_out, ref_last, ref_leaves))

    nat_leaves = [t.float().requires_grad_(True) for t in (x, h0, *[w for w in weights if w is not None])]
    nat_weights = (nat_leaves[2], nat_leaves[3], nat_leaves[4] if use_bias else None)
    kind = "gru" if cell == "gru" else "simple_rnn"
    params = fused._native_weights(kind, nat_weights)  # Keras layout -> ATen's, differentiably
    args = (nat_leaves[0], nat_leaves[1].unsqueeze(0), params, use_bias, 1, 0.0, True, False, True)
    out, h_n = cpu_kernels.gru(*args) if cell == "gru" else cpu_kernels.simple_rnn(*args, relu=cell == "relu")
    native = (out, h_n[0], grads(out, h_n[0], nat_leaves))
    return reference, native


@pytest.mark.parametrize("threads", [1, 2, 3], indirect=True)
@pytest.mark.parametrize("batch", [1, 7, 16, 37])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("cell", CELLS)
def test_native_kernel_equals_reference(cell, threads, batch, use_bias):
    (ref_out, ref_last, ref_grads), (out, last, grads) = run_both(cell, batch, 9, 5, 6, use_bias)
    torch.testing.assert_close(out.double(), ref_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(last.double(), ref_last, rtol=1e-5, atol=1e-5)
    for name, got, want in zip(["x", "h0", "kernel", "recurrent_kernel", "bias"], grads, ref_grads):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4, msg=lambda m: f"d{name}: {m}")


@pytest.mark.parametrize("threads", [2], indirect=True)
@pytest.mark.parametrize("cell", CELLS)
def test_native_kernel_wider_and_longer(cell, threads):
    """Units past one SIMD register (40) and 60 steps, so errors would compound."""
    (ref_out, ref_last, ref_grads), (out, last, grads) = run_both(cell, 24, 60, 8, 40, True, seed=5)
    torch.testing.assert_close(out.double(), ref_out, rtol=1e-4, atol=1e-4)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got.double(), want, rtol=1e-3, atol=1e-3)


ATEN = {
    "gru": (lambda: torch.nn.GRU, torch.gru, cpu_kernels.gru),
    "tanh": (lambda: torch.nn.RNN, torch.rnn_tanh, cpu_kernels.simple_rnn),
    "relu": (lambda: functools.partial(torch.nn.RNN, nonlinearity="relu"), torch.rnn_relu,
             functools.partial(cpu_kernels.simple_rnn, relu=True)),
}


@pytest.mark.parametrize("threads", [2], indirect=True)
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("cell", CELLS)
def test_native_kernel_equals_aten_bidirectional(cell, threads, use_bias):
    module_class, aten, native = ATEN[cell]
    torch.manual_seed(0)
    module = module_class()(4, 8, batch_first=True, bias=use_bias, bidirectional=True)
    params = list(module._flat_weights)
    x = torch.randn(20, 11, 4, requires_grad=True)
    h0 = torch.randn(2, 20, 8)
    args = (params, use_bias, 1, 0.0, True, True, True)
    out_aten, h_aten = aten(x, h0, *args)
    out, h = native(x, h0, *args)
    torch.testing.assert_close(out, out_aten, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h, h_aten, rtol=1e-5, atol=1e-6)
    probe = torch.randn_like(out)
    want = torch.autograd.grad((out_aten * probe).sum() + h_aten.sum(), [x, *params])
    got = torch.autograd.grad((out * probe).sum() + h.sum(), [x, *params])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_empty_batch(cell):
    _, _, native = ATEN[cell]
    params = [p.requires_grad_(True) for p in torch.nn.GRU(2, 5, batch_first=True)._flat_weights] \
        if cell == "gru" else [p.requires_grad_(True) for p in torch.nn.RNN(2, 5, batch_first=True)._flat_weights]
    out, h = native(torch.zeros(0, 4, 2), torch.zeros(1, 0, 5), params, True, 1, 0.0, True, False, True)
    assert out.shape == (0, 4, 5) and h.shape == (1, 0, 5)
    out.sum().backward()
    assert all(p.grad is not None and not p.grad.any() for p in params)


def test_inference_keeps_nothing_for_backward():
    x = torch.randn(3, 4, 2)
    params = list(torch.nn.GRU(2, 5, batch_first=True)._flat_weights)
    with torch.inference_mode():
        out, h = cpu_kernels.gru(x, torch.zeros(1, 3, 5), params, True, 1, 0.0, False, False, True)
    assert not out.requires_grad and out.shape == (3, 4, 5)
    torch.testing.assert_close(h[0], out[:, -1])


@pytest.mark.parametrize("layer_class, name", [(GRU, "gru"), (SimpleRNN, "simple_rnn")])
def test_fused_path_uses_the_native_kernel_for_float32_only(monkeypatch, layer_class, name):
    calls = []
    native = getattr(cpu_kernels, name)
    monkeypatch.setattr(cpu_kernels, name, lambda *args, **kw: calls.append(args[0].dtype) or native(*args, **kw))
    layer = layer_class(4)
    layer(torch.zeros(2, 3, 2))
    assert calls == [torch.float32]
    layer.double()(torch.zeros(2, 3, 2, dtype=torch.float64))  # ATen / cpu_loops serve float64
    assert calls == [torch.float32]


def test_simple_rnn_falls_back_to_the_torch_loop(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu_kernels, "_failure", "pretend no compiler")
    monkeypatch.setattr(cpu_kernels, "_library", None)
    loop = cpu_loops.simple_rnn
    monkeypatch.setattr(cpu_loops, "simple_rnn", lambda *args, **kw: calls.append(1) or loop(*args, **kw))
    SimpleRNN(4)(torch.zeros(2, 3, 2))
    assert calls == [1]


def test_without_a_compiler_the_layers_fall_back(tmp_path):
    """A fresh process with no working compiler and an empty cache: the reason is recorded
    and the layers still run on the fused path (ATen, cpu_loops), equal to the reference."""
    script = """
import torch
from rnnkit import cpu_kernels
from rnnkit.layers import GRU, SimpleRNN
print(cpu_kernels.unavailable_reason())
x = torch.randn(2, 4, 5)
for layer in (GRU, SimpleRNN):
    fast, slow = layer(3), layer(3, use_fused=False)
    fast(x); slow(x); slow.set_weights(fast.get_weights())
    torch.testing.assert_close(fast(x), slow(x))
print(fast.execution_path)
"""
    env = dict(os.environ, CC="/bin/false", RNNKIT_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    reason, path = done.stdout.strip().splitlines()
    assert reason.startswith("could not build the native CPU kernels with '/bin/false'"), reason
    assert path == "fused: torch-loop simple_rnn", path  # GRU: ATen's loop; SimpleRNN: cpu_loops
    assert not list((tmp_path / "native").glob("*.so"))  # no half-written library left behind


def test_turned_off_by_environment(tmp_path):
    env = dict(os.environ, RNNKIT_NATIVE="0", RNNKIT_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", "from rnnkit import cpu_kernels; print(cpu_kernels.unavailable_reason())"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "turned off by RNNKIT_NATIVE=0", done.stderr


def test_a_corrupt_cached_library_is_reported_not_loaded(tmp_path):
    env = dict(os.environ, RNNKIT_HOME=str(tmp_path))
    probe = [sys.executable, "-c", "from rnnkit import cpu_kernels; print(cpu_kernels.unavailable_reason())"]
    assert subprocess.run(probe, env=env, capture_output=True, text=True, timeout=120).stdout.strip() == "None"
    (library,) = (tmp_path / "native").glob("*.so")
    library.write_bytes(b"not a shared library")
    reason = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=120).stdout.strip()
    assert reason.startswith("could not load the native CPU kernels (delete ") and str(library) in reason, reason
