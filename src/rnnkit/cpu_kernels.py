"""rnnkit's native CPU GRU and SimpleRNN: ``cpu_kernels.c``, compiled on first use, called via ctypes.

ATen's GRU loop runs eight small tensor ops per step (its SimpleRNN two, plus autograd
records for each); for layers of tens of units the op dispatch, not the arithmetic, is
the cost. The C kernels run each step as one MKL ``sgemm`` on pre-packed weights (the
BLAS PyTorch itself links) and one fused loop over the gates, and split the batch across
threads (rows are independent, so the threads never wait for each other). Forward and
back-propagation through time are one call each; the input projection and the weight
gradients are single matrix products over all steps, in torch, so autograd handles them.

It is compiled once per machine with the system C compiler (``cc``, or ``$CC``) into
``$RNNKIT_HOME/native`` (default ``~/.cache/rnnkit/native``), about a second. Where that
fails (no compiler, not Linux, a torch without MKL) the fused path uses ATen's GRU and
``rnnkit.cpu_loops``' SimpleRNN, and :func:`unavailable_reason` says why.
``RNNKIT_NATIVE=0`` turns the native kernels off.
"""
import ctypes
import functools
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from .cpu_loops import by_direction

_SOURCE = Path(__file__).with_name("cpu_kernels.c")
_library = None
_failure = None
_FLOAT_P = ctypes.POINTER(ctypes.c_float)


def unavailable_reason():
    """None if the native kernels are loaded (building them if needed), else why not."""
    _load()
    return _failure


def available():
    return unavailable_reason() is None


def _cache_dir():
    home = os.environ.get("RNNKIT_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "rnnkit")
    return Path(home) / "native"


def _cpu_signature():
    """The CPU's feature flags: the library is built with ``-march=native`` for this CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return ""


def _build(target, compiler, torch_lib, vector_math):
    flags = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp-simd", "-shared", "-fPIC", "-pthread"]
    if vector_math:
        flags += ["-DRNNKIT_VECTOR_MATH"]
    libs = [f"-L{torch_lib}", "-ltorch_cpu", f"-Wl,-rpath,{torch_lib}", "-lm"] + (["-lmvec"] if vector_math else [])
    fd, partial = tempfile.mkstemp(dir=target.parent, suffix=".so.partial")
    os.close(fd)
    try:
        result = subprocess.run([compiler, *flags, str(_SOURCE), "-o", partial, *libs],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
            raise OSError(next((line for line in lines if "error" in line), lines[-1]))
        os.replace(partial, target)  # atomic: a concurrent build or reader never sees half a library
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _load():
    global _library, _failure
    if _library is not None or _failure is not None:
        return
    if os.environ.get("RNNKIT_NATIVE", "1") == "0":
        _failure = "turned off by RNNKIT_NATIVE=0"
        return
    if not sys.platform.startswith("linux") or not torch.backends.mkl.is_available():
        _failure = "needs Linux and a PyTorch build with MKL"
        return
    compiler = os.environ.get("CC", "cc")
    torch_lib = str(Path(torch.__file__).parent / "lib")
    key = hashlib.sha256(b"\0".join([_SOURCE.read_bytes(), compiler.encode(), torch_lib.encode(),
                                     torch.__version__.encode(), _cpu_signature().encode()])).hexdigest()[:16]
    target = _cache_dir() / f"cpu_kernels-{key}.so"
    errors = []
    if not target.exists():
        for vector_math in (True, False):  # libmvec (glibc's SIMD exp/tanh) if the compiler finds it
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                _build(target, compiler, torch_lib, vector_math)
                break
            except (OSError, subprocess.SubprocessError) as error:
                errors.append(str(error))
    try:
        library = ctypes.CDLL(str(target))
    except OSError as error:
        if errors:
            _failure = f"could not build the native CPU kernels with '{compiler}': {errors[0]}"
        else:
            _failure = f"could not load the native CPU kernels (delete {target} to rebuild them): {error}"
        return
    library.rnnkit_forward.argtypes = [ctypes.c_int] * 4 + [_FLOAT_P] * 7 + [ctypes.c_int]
    library.rnnkit_backward.argtypes = [ctypes.c_int] * 4 + [_FLOAT_P] * 9 + [ctypes.c_int]
    library.rnnkit_forward.restype = library.rnnkit_backward.restype = ctypes.c_int
    _library = library


def _ptr(t):
    return None if t is None else ctypes.cast(t.data_ptr(), _FLOAT_P)


def _threads(batch):
    """One block of rows per thread, at least 8 rows each (smaller blocks waste the sgemm)."""
    return max(1, min(torch.get_num_threads(), batch // 8))


_GRU, _RNN_TANH, _RNN_RELU = range(3)  # the kinds in cpu_kernels.c


def supports(x, params):
    """Whether the native kernels compute this call (float32 CPU tensors, kernels built)."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and all(p.dtype == torch.float32 for p in params) \
        and available()


def gru(x, hx, params, has_bias, num_layers, dropout, train, bidirectional, batch_first):
    """``torch.gru``'s call (one layer, batch first) on the native kernel."""
    return _layer(_GRU, x, hx, params, has_bias, bidirectional)


def simple_rnn(x, hx, params, has_bias, num_layers, dropout, train, bidirectional, batch_first, relu=False):
    """``torch.rnn_tanh``'s (``relu=True``: ``torch.rnn_relu``'s) call on the native kernel."""
    return _layer(_RNN_RELU if relu else _RNN_TANH, x, hx, params, has_bias, bidirectional)


def _layer(kind, x, hx, params, has_bias, bidirectional):
    if not available():
        raise RuntimeError(f"rnnkit's native CPU kernels are not available: {_failure}")
    return by_direction(functools.partial(_one_direction, kind), x, hx, params, has_bias, bidirectional)


def _one_direction(kind, x, h0, w_ih, w_hh, b_ih, b_hh):
    if kind != _GRU and b_ih is not None:  # a SimpleRNN's two biases both add to the input projection
        b_ih, b_hh = b_ih + b_hh, None
    # x_t W_ih^T for all steps at once, (time, batch, gates * units); the kernel adds b_ih
    # (cheaper than addmm, which first copies the bias into every row of its result)
    xp = x.transpose(0, 1).reshape(-1, x.shape[-1]).mm(w_ih.t())
    hs, h = _Recurrence.apply(kind, xp.view(x.shape[1], x.shape[0], w_ih.shape[0]), h0, w_hh, b_ih, b_hh)
    return hs.transpose(0, 1), h


def _check(status):
    if status != 0:
        raise MemoryError("rnnkit's native CPU kernel could not allocate its per-thread workspace")


class _Recurrence(torch.autograd.Function):
    """(kind, xp (T, B, gates*H), h0, w_hh, b_x or None, b_hh or None) -> (h_t for all t,
    time-major; h_T), computed in C, forward and backward; b_x is added to xp."""

    @staticmethod
    def forward(ctx, kind, xp, h0, w_hh, b_x, b_hh):
        xp, h0, w_hh = xp.contiguous(), h0.contiguous(), w_hh.contiguous()
        b_x, b_hh = (None if b is None else b.contiguous() for b in (b_x, b_hh))
        steps, batch, units = xp.shape[0], xp.shape[1], w_hh.shape[1]
        hs = xp.new_empty(steps, batch, units)
        training = any(ctx.needs_input_grad)
        saved = xp.new_empty(steps, batch, 4 * units) if training and kind == _GRU else None
        _check(_library.rnnkit_forward(kind, steps, batch, units, _ptr(xp), _ptr(w_hh), _ptr(b_x), _ptr(b_hh),
                                       _ptr(h0), _ptr(hs), _ptr(saved), _threads(batch)))
        ctx.set_materialize_grads(False)
        ctx.kind, ctx.has_input_bias, ctx.has_bias = kind, b_x is not None, b_hh is not None
        if training:
            ctx.save_for_backward(h0, w_hh, hs, saved)
        return hs, hs[-1].clone()

    @staticmethod
    def backward(ctx, d_hs, d_last):
        h0, w_hh, hs, saved = ctx.saved_tensors
        steps, batch, units = hs.shape
        d_hs = None if d_hs is None else d_hs.contiguous()
        d_last = None if d_last is None else d_last.contiguous()
        d_xp = hs.new_empty(steps, batch, w_hh.shape[0])
        d_hp = torch.empty_like(d_xp) if ctx.kind == _GRU else None  # other kinds: dL/dxp is dL/d(h W_hh^T)
        d_h0 = torch.empty_like(h0)
        _check(_library.rnnkit_backward(ctx.kind, steps, batch, units, _ptr(w_hh), _ptr(h0), _ptr(hs), _ptr(saved),
                                        _ptr(d_hs), _ptr(d_last), _ptr(d_xp), _ptr(d_hp), _ptr(d_h0),
                                        _threads(batch)))
        flat = (d_xp if d_hp is None else d_hp).view(steps * batch, w_hh.shape[0])
        # dW_hh = sum_t dhp_t^T h_{t-1} (h_{-1} = h0): two matrix products over all steps
        d_w_hh = flat[:batch].t().mm(h0)
        if steps > 1:
            d_w_hh += flat[batch:].t().mm(hs[:-1].reshape(-1, units))
        d_b_x = d_xp.view(steps * batch, w_hh.shape[0]).sum(0) if ctx.has_input_bias else None
        d_b_hh = flat.sum(0) if ctx.has_bias else None
        return None, d_xp, d_h0, d_w_hh, d_b_x, d_b_hh
