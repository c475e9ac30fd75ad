"""The fast path: whole sequences in fused kernels, and the choice of path for each RNN call.

:func:`plan` decides how one call of an RNN runs -- which fused kernel, or the step-by-step
reference of ``rnnkit.recurrence`` -- and says why (``layer.execution_path``); :func:`run`
runs a fused plan. Same inputs and results as the reference functions (oneDNN/MKL on CPU,
cuDNN on GPU, through ``torch.lstm`` / ``torch.gru`` / ``torch.rnn_tanh`` /
``torch.rnn_relu``, the ops behind ``torch.nn.LSTM`` and friends). Keras-layout weights
are mapped to the kernels' layout here:

* kernel (in, k*units) -> weight_ih (k*units, in); recurrent_kernel -> weight_hh
* Keras's single bias -> bias_ih, with a zero bias_hh (SimpleRNN, LSTM)
* GRU (reset_after=True) gates z, r, h -> PyTorch's r, z, n; bias rows -> bias_ih, bias_hh

On the CPU, float32 GRUs and SimpleRNNs (unmasked or right-padded) run rnnkit's native
kernels (``rnnkit.cpu_kernels``: C, one sgemm and one fused gate loop per step, batch
split across threads) instead of ``torch.gru`` / ``torch.rnn_tanh`` / ``torch.rnn_relu``,
with the same signatures. Where those could not be built, the GRU stays on ATen and the
SimpleRNN runs ``rnnkit.cpu_loops`` (hand-written back-propagation through time in torch
ops; ATen's own loop records every step for autograd), as float64 SimpleRNNs do.

Under ``torch.no_grad`` / ``inference_mode`` the converted weights are cached per
parameter version, so repeated ``predict`` batches do not convert again; an optimizer
step or ``set_weights`` bumps the version and invalidates the cache. With autograd on,
conversion happens once per call (not per step) and gradients flow to the Keras-layout
parameters.
"""
import functools
import warnings
from dataclasses import dataclass
from typing import Optional

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import cpu_kernels, cpu_loops


# ----- which path, and why --------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """How one RNN call runs: ``path`` (what ``layer.execution_path`` shows) and ``reason`` (why).

    A reference plan has ``kind`` None. A fused plan names the recurrence (``kind``:
    'simple_rnn', 'lstm', 'gru') and the code that runs it:

    * ``kernel``: 'native-c' (rnnkit's C kernels), 'torch-loop' (``cpu_loops``' SimpleRNN), or
      'aten' (``torch.lstm`` / ``torch.gru`` / ``torch.rnn_*``: oneDNN's LSTM or ATen's loop
      on the CPU, cuDNN on CUDA)
    * ``packed``: a masked batch runs as a PackedSequence (else the whole padded batch runs
      and each row is read at its last real step)
    * ``mask_layout``: 'right' or 'left' padding (left padding is rotated into right padding)
    * ``float32``: a GRU or SimpleRNN under CPU bf16 autocast runs in float32
    """

    path: str
    reason: str
    kind: Optional[str] = None
    activation: str = "tanh"
    kernel: Optional[str] = None
    packed: bool = False
    mask_layout: Optional[str] = None
    float32: bool = False

    @property
    def fused(self):
        return self.kind is not None


def plan(cell, options, x, use_fused="auto"):
    """Choose how an RNN call runs: a fused kernel where one computes exactly this call, else the reference.

    Arguments:
        cell: the RNN's cell. Built-in cells (SimpleRNNCell, LSTMCell, GRUCell) name their
            recurrence in ``cell.fused_kind``; any other cell runs step by step through its call().
        options: this call's ``rnnkit.recurrence.SequenceOptions`` (mask, dropout masks,
            go_backwards, what the caller reads). A mask's layout and lengths are stored there.
        x: the input (batch, time, features); its device and dtype pick the kernel.
        use_fused: "auto" or True: fused whenever exact; False: always the reference. (For
            True the layer raises when the plan is not fused.)

    Returns a :class:`Plan`. Its ``path``, for example::

        fused: native-c gru            float32 GRU or SimpleRNN on the CPU
        fused: aten lstm (oneDNN)      LSTM on the CPU
        fused: native-c gru unpacked   right- or left-padded batch run whole, read at each row's end
        fused: aten lstm packed        padded batch whose final LSTM cell state is read
        fused: aten gru (cuDNN)        on CUDA
        reference: recurrent_dropout in training

    Only masked calls cost more than a few comparisons (the mask's layout is read once per
    call); each configuration's Plan is made once and shared. Example::

        rnn = RNN(LSTMCell(8))
        rnn(torch.zeros(2, 5, 3))
        rnn.execution_plan        # plan(rnn.cell, options, x): path 'fused: aten lstm (oneDNN)'
    """
    if use_fused is False:
        return reference_plan("use_fused=False")
    kind = getattr(cell, "fused_kind", None)
    if kind is None:
        return reference_plan(f"{type(cell).__name__} has no fused kernel")
    reason = _unsupported_reason(kind, cell.activation_name, cell.recurrent_activation_name, options)
    if reason is not None:
        return reference_plan(reason)
    device, activation = x.device.type, cell.activation_name
    float32 = device == "cpu" and torch.is_autocast_enabled("cpu") and (kind != "lstm" or not cpu_bf16_lstm())
    dtype, weights_dtype = (torch.float32 if float32 else x.dtype), cell.kernel.dtype
    native = (kind != "lstm" and device == "cpu" and dtype == weights_dtype == torch.float32
              and cpu_kernels.available())
    if device != "cpu":
        kernel, why = "aten", f"{device} tensors"
    elif native:
        kernel, why = "native-c", "float32 on the CPU: rnnkit's C kernel"
    elif kind == "lstm":
        kernel, why = "aten", "LSTM on the CPU"
    else:
        kernel = "torch-loop" if kind == "simple_rnn" else "aten"
        if dtype != torch.float32 or weights_dtype != torch.float32:
            why = f"no native kernel for {dtype if dtype != torch.float32 else weights_dtype}"
        else:
            why = f"native kernels unavailable: {cpu_kernels.unavailable_reason()}"
    packed = False
    if options.mask is not None:
        packed, mask_why = _packing(kind, activation, x, options, cell.recurrence_weights(), native)
        kernel = "aten" if packed else kernel
        why = f"{why}; {options.mask_layout}-padded mask: {mask_why}"
    return _fused(kind, activation, kernel, packed, options.mask_layout, float32, why, device, dtype)


def _unsupported_reason(kind, activation_name, recurrent_activation_name, options):
    """Why no fused kernel computes this configuration exactly, or None if one does."""
    if kind == "simple_rnn":
        if activation_name not in ("tanh", "relu"):
            return f"activation '{activation_name}' (fused SimpleRNN supports tanh and relu)"
    else:
        if activation_name != "tanh":
            return f"activation '{activation_name}' (fused kernels use tanh)"
        if recurrent_activation_name != "sigmoid":
            return f"recurrent_activation '{recurrent_activation_name}' (fused kernels use sigmoid)"
    if kind == "gru" and not options.reset_after:
        return "reset_after=False has no native kernel"
    if options.recurrent_dropout is not None:
        return "recurrent_dropout in training"
    if options.mask is not None:
        if options.mask_layout is None:
            options.mask_lengths = options.mask.sum(dim=1)
            options.mask_layout = mask_layout(options.mask, options.mask_lengths)
        if options.mask_layout not in ("right", "left"):
            return options.mask_layout
    return None


def _packing(kind, activation, x, options, weights, native):
    """(packed?, why) for a right- or left-padded batch.

    On CPU, packed sequences leave oneDNN's LSTM for ATen's step loop, whose backward is
    4-12x slower than the unpacked kernels (B: (128, 500), mean length 270), and the
    native kernels (``cpu_kernels``) and the SimpleRNN's two-op loop (``cpu_loops``) beat
    ATen's packed loops in inference too. The unpacked run also computes the padded steps
    and discards them; it cannot give an LSTM's cell state at each row's last token, and a
    relu SimpleRNN could overflow over long padding, so those keep packed sequences, as
    does CUDA (cuDNN runs packed sequences natively). ``native``: the plan runs ``cpu_kernels``.
    """
    if x.device.type != "cpu":
        return True, "packed (cuDNN runs packed sequences natively)"
    if kind == "simple_rnn" and activation == "relu":
        return True, "packed (a relu SimpleRNN could overflow over the padding)"
    if kind == "lstm" and options.needs_final_cell:
        return True, "packed (the LSTM's final cell state is read)"
    autograd = torch.is_grad_enabled() and any(w is not None and w.requires_grad for w in weights)
    if not autograd and kind == "gru" and not native:
        return True, "packed (in inference ATen's GRU loop is no faster unpacked)"
    lengths = options.mask_lengths
    if int(lengths.sum()) * 10 < lengths.numel() * x.shape[1]:
        return True, "packed (under 10% of the steps are real)"
    return False, "unpacked, read at each row's last step (faster than ATen's packed loop)"


def _library(kind, device, dtype, kernel, packed):
    """The library behind ATen's call, where it is not ATen's own loop: 'oneDNN', 'cuDNN' or None."""
    if kernel != "aten":
        return None
    if device == "cuda":
        return "cuDNN" if torch.backends.cudnn.enabled and torch.backends.cudnn.is_available() else None
    if (device == "cpu" and kind == "lstm" and not packed and dtype in (torch.float32, torch.bfloat16)
            and torch.backends.mkldnn.enabled and torch.backends.mkldnn.is_available()):
        return "oneDNN"
    return None


@functools.lru_cache(maxsize=None)
def reference_plan(reason):
    """The plan of the step-by-step reference, for ``reason``."""
    return Plan(path=f"reference: {reason}", reason=reason)


@functools.lru_cache(maxsize=None)
def _fused(kind, activation, kernel, packed, layout, float32, reason, device, dtype):
    """The fused plan of one configuration (made once: each call with it gets this same object)."""
    library = _library(kind, device, dtype, kernel, packed)
    masked = " packed" if packed else " unpacked" if layout else ""
    path = f"fused: {kernel} {kind}{masked}" + (f" ({library})" if library else "")
    return Plan(path, reason, kind, activation, kernel, packed, layout, float32)


def mask_layout(mask, lengths=None):
    """'right' (padding after the tokens), 'left' (padding before), or why neither fits.

    Right padding maps straight to packed sequences. Left padding (Keras's
    ``pad_sequences`` default) is rotated into right padding and back: in Keras's loop
    the masked prefix keeps the initial state and outputs zeros, which is exactly what
    the rotated packed run gives. ``lengths``: ``mask.sum(dim=1)`` when already known.
    """
    lengths = mask.sum(dim=1) if lengths is None else lengths
    if bool((lengths == 0).any()):
        return "mask has an all-padding sequence"
    steps = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    if bool(torch.equal(mask, steps < lengths.unsqueeze(1))):
        return "right"
    if bool(torch.equal(mask, steps >= (mask.shape[1] - lengths).unsqueeze(1))):
        return "left"
    return "mask is neither right- nor left-padded"


# ----- running a fused plan --------------------------------------------------------------------------
def _rotate(t, shift):
    """Row b of ``t`` rotated left along time by ``shift[b]`` steps."""
    steps = t.shape[1]
    index = (torch.arange(steps, device=t.device).unsqueeze(0) + shift.unsqueeze(1)) % steps
    if t.dim() == 3:
        index = index.unsqueeze(-1).expand(-1, -1, t.shape[-1])
    return t.gather(1, index)


def _native_weights(kind, weights):
    kernel, recurrent_kernel, bias = weights
    if kind == "gru":
        w_ih, w_hh = _gru_order(kernel.t()), _gru_order(recurrent_kernel.t())
        if bias is None:
            return [w_ih, w_hh]
        return [w_ih, w_hh, _gru_order(bias[0]), _gru_order(bias[1])]
    w_ih, w_hh = kernel.t().contiguous(), recurrent_kernel.t().contiguous()
    if bias is None:
        return [w_ih, w_hh]
    return [w_ih, w_hh, bias, torch.zeros_like(bias)]


def _gru_order(t):
    z, r, h = t.chunk(3, dim=0)
    return torch.cat([r, z, h], dim=0)


def native_weights(kind, weights, cache=None):
    """Weights in the fused kernels' layout.

    ``cache`` (a dict owned by the layer) keeps the converted copy while no autograd graph
    is needed; it is keyed on each parameter's version counter and storage, which every
    in-place update (optimizer step, ``set_weights``, ``load_state_dict``) changes.
    """
    if cache is None or (torch.is_grad_enabled() and any(w is not None and w.requires_grad for w in weights)):
        return _native_weights(kind, weights)
    stamp = tuple((w._version, w.data_ptr(), w.device, w.dtype) if w is not None else None for w in weights)
    if cache.get("stamp") == stamp:
        return cache["weights"]
    with torch.no_grad():
        converted = _native_weights(kind, weights)
    cache["stamp"], cache["weights"] = stamp, converted
    return converted


def _aten(kind, activation_name):
    if kind == "simple_rnn":
        return torch.rnn_relu if activation_name == "relu" else torch.rnn_tanh
    return torch.lstm if kind == "lstm" else torch.gru


def _unpacked_function(plan, x):
    """The ``torch.gru``-style function that runs ``plan``'s kernel on a whole (unpacked) batch."""
    relu = plan.activation == "relu"
    if plan.kernel == "native-c":
        return cpu_kernels.gru if plan.kind == "gru" else functools.partial(cpu_kernels.simple_rnn, relu=relu)
    if plan.kernel == "torch-loop":
        return functools.partial(cpu_loops.simple_rnn, relu=relu)
    return _quiet_on_cuda(_aten(plan.kind, plan.activation), x)


def run(plan, x, states, weights, options, training=False, backward=None, cache=None):
    """Run a fused ``plan`` (from :func:`plan`) for one layer, or for a bidirectional pair.

    ``weights``: Keras's (kernel, recurrent_kernel, bias or None); ``cache``: the layer's
    converted-weight cache (see :func:`native_weights`). ``backward`` = (states, weights,
    cache) of a reverse direction makes this one bidirectional call; its outputs come back
    aligned with the input time steps, as Keras's ``Bidirectional`` presents them. Returns
    ``(outputs, states)`` for one direction, or ``(forward_outputs, backward_outputs,
    forward_states, backward_states)`` for two; outputs are None where ``options`` says
    they are not read.

    Under bf16 autocast on the CPU, GRU and SimpleRNN run in float32 (``plan.float32``):
    ATen's loops for them are slower in bfloat16 than in float32 (only oneDNN's LSTM has
    bf16 kernels), and rnnkit's native kernels are float32, so float32 is both faster and
    exact there. Their outputs are float32; the next layer casts.
    """
    if plan.float32:
        with torch.autocast("cpu", enabled=False):
            states = [s.float() for s in states]
            if backward is not None:
                backward = ([s.float() for s in backward[0]], *backward[1:])
            return _run(plan, x.float(), states, weights, options, training, backward, cache)
    return _run(plan, x, states, weights, options, training, backward, cache)


@functools.cache
def cpu_bf16_lstm():
    """Whether this CPU's oneDNN runs an LSTM under bfloat16 autocast (on CPUs without native
    bf16 support it cannot: "could not create a primitive descriptor"); without it, bf16
    autocast runs the LSTM in float32 like the GRU and SimpleRNN."""
    weights = [torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(4), torch.zeros(4)]
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            torch.lstm(torch.zeros(1, 2, 1), (torch.zeros(1, 1, 1),) * 2, weights, True, 1, 0.0, False, False, True)
        return True
    except RuntimeError:
        return False


def _run(plan, x, states, weights, options, training, backward, cache):
    kind = plan.kind
    params = native_weights(kind, weights, cache)
    has_bias = len(params) == 4
    hx = _stack_states(kind, states, None if backward is None else backward[0])
    if backward is not None:
        params = params + native_weights(kind, backward[1], backward[2])
    if x.device.type == "cuda":
        params = _cudnn_flat(kind, plan.activation, params, x.shape[-1], backward is not None)
    if options.input_dropout is not None:
        x = x * options.input_dropout.unsqueeze(1)
    mask, layout = options.mask, plan.mask_layout
    if options.go_backwards:
        x = x.flip(1)
        if mask is not None:
            mask, layout = mask.flip(1), {"right": "left", "left": "right"}[layout]
    fn = _unpacked_function(plan, x)
    bidirectional = backward is not None
    if mask is None:
        out, h_n = _call(fn, kind, x, hx, params, has_bias, training, bidirectional)
        if not options.needs_sequences:  # the final h is the last output; no gradient through the sequence
            out = None
    else:
        lengths = options.mask_lengths
        if layout == "left":
            pad = mask.shape[1] - lengths
            x = _rotate(x, pad)
        call = _call_packed if plan.packed else _call_unpacked
        out, h_n = call(fn, kind, x, hx, params, has_bias, training, bidirectional, lengths, options.needs_sequences)
        if out is not None and layout == "left":
            out = _rotate(out, -pad)
    units = weights[1].shape[0]
    directions = _unstack_states(kind, h_n)
    if not bidirectional:
        if out is not None and mask is not None and layout == "right" and not options.zero_output_for_mask:
            # masked steps repeat the last output; arithmetic, not torch.where (5x slower on CPU)
            keep = mask.unsqueeze(-1).to(out.dtype)
            out = out * keep + directions[0][0].unsqueeze(1) * (1 - keep)
        return out, directions[0]
    if out is None:
        return None, None, directions[0], directions[1]
    return out[..., :units], out[..., units:], directions[0], directions[1]


def _stack_states(kind, states, backward_states):
    groups = [tuple(states)] + ([tuple(backward_states)] if backward_states is not None else [])
    h = torch.stack([g[0] for g in groups])
    if kind == "lstm":
        return (h, torch.stack([g[1] for g in groups]))
    return h


def _unstack_states(kind, h_n):
    if kind == "lstm":
        h, c = h_n
        return [(h[d], c[d]) for d in range(h.shape[0])]
    return [(h_n[d],) for d in range(h_n.shape[0])]


_CUDNN_LAYOUTS = {}


def _cudnn_flat(kind, activation_name, params, input_size, bidirectional):
    """The weights as views of one buffer in cuDNN's own layout, which cuDNN reads in place.

    Without it cuDNN allocates a buffer and copies every matrix into it on each call (and
    warns), which costs more host time than a small layer's whole GPU step. The buffer is
    one ``cat`` (zeros fill any alignment gaps) and the views come from one ``split``, so
    gradients still reach the separate weights. The layout is read once per configuration
    from torch's own flattened ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` of the same shape.
    """
    key = (kind, activation_name, input_size, tuple(p.shape for p in params), bidirectional, params[0].dtype,
           params[0].device)
    if key not in _CUDNN_LAYOUTS:
        _CUDNN_LAYOUTS[key] = _cudnn_layout(kind, activation_name, input_size, params, bidirectional)
    layout = _CUDNN_LAYOUTS[key]
    if layout is None:
        return params
    offsets, total = layout
    pieces, slots, position = [], {}, 0
    for i in sorted(range(len(params)), key=offsets.__getitem__):
        if offsets[i] > position:
            pieces.append(params[i].new_zeros(offsets[i] - position))
        slots[i] = len(pieces)
        pieces.append(params[i].reshape(-1))
        position = offsets[i] + params[i].numel()
    if total > position:
        pieces.append(params[0].new_zeros(total - position))
    views = torch.cat(pieces).split([p.numel() for p in pieces])
    return [views[slots[i]].view(p.shape) for i, p in enumerate(params)]


def _cudnn_layout(kind, activation_name, input_size, params, bidirectional):
    """(offset of each weight, buffer size) in elements, as torch's flattened module of this
    shape places them; None if they overlap or do not match ``params``."""
    from torch import nn

    units = params[1].shape[1]
    has_bias = len(params) // (2 if bidirectional else 1) == 4
    options = dict(bias=has_bias, batch_first=True, bidirectional=bidirectional)
    if kind == "lstm":
        module = nn.LSTM(input_size, units, **options)
    elif kind == "gru":
        module = nn.GRU(input_size, units, **options)
    else:
        module = nn.RNN(input_size, units, nonlinearity="relu" if activation_name == "relu" else "tanh", **options)
    module = module.to(device=params[0].device, dtype=params[0].dtype)
    weights = [w for layer in module.all_weights for w in layer]
    if len(weights) != len(params) or any(w.shape != p.shape or not w.is_contiguous() for w, p in zip(weights, params)):
        return None
    storage = weights[0].untyped_storage()
    if any(w.untyped_storage().data_ptr() != storage.data_ptr() for w in weights):
        return None
    offsets = [w.storage_offset() for w in weights]
    spans = sorted((o, o + w.numel()) for o, w in zip(offsets, weights))
    if any(end > start for (_, end), (start, _) in zip(spans, spans[1:])):
        return None
    return offsets, storage.nbytes() // weights[0].element_size()


def _quiet_on_cuda(fn, x):
    """cuDNN warns that our weights are not one contiguous buffer (it packs them per call,
    a copy of a few KB here, cheaper than keeping a second packed copy in sync)."""
    if x.device.type != "cuda":
        return fn

    def call(*args):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
            return fn(*args)

    return call


def _call(fn, kind, x, hx, params, has_bias, training, bidirectional):
    out, *h_n = fn(x, hx, params, has_bias, 1, 0.0, training, bidirectional, True)
    return out, (tuple(h_n) if kind == "lstm" else h_n[0])


def _call_packed(fn, kind, x, hx, params, has_bias, training, bidirectional, lengths, needs_sequences=True):
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    if kind == "lstm":
        hx = (hx[0].index_select(1, order), hx[1].index_select(1, order))
    else:
        hx = hx.index_select(1, order)
    data, *h_n = fn(packed.data, packed.batch_sizes, hx, params, has_bias, 1, 0.0, training, bidirectional)
    out = None
    if needs_sequences:
        out, _ = pad_packed_sequence(PackedSequence(data, packed.batch_sizes, order, unorder),
                                     batch_first=True, total_length=x.shape[1])
    if kind == "lstm":
        return out, (h_n[0].index_select(1, unorder), h_n[1].index_select(1, unorder))
    return out, h_n[0].index_select(1, unorder)


def _reverse_within(t, lengths):
    """Each row's first ``lengths[b]`` steps in reverse order; the padding stays after them."""
    steps = torch.arange(t.shape[1], device=t.device).unsqueeze(0)
    index = torch.where(steps < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - steps, steps)
    return t.gather(1, index.unsqueeze(-1).expand(-1, -1, t.shape[-1]))


def _call_unpacked(fn, kind, x, hx, params, has_bias, training, bidirectional, lengths, needs_sequences=True):
    """A right-padded batch through the unpacked kernel, read at each row's last token.

    Returns what ``_call_packed`` returns: outputs with zeros at padded steps (or None when
    not needed) and final states at the last real step (an LSTM's c is not available: NaN).
    """
    lengths = lengths.to(x.device)
    valid = (torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
    if not bool(torch.isfinite(x.sum())):  # NaN/inf at padded steps would reach gradients as 0 * inf
        x = torch.where(valid, x, 0.0)
    last = (lengths - 1).view(-1, 1, 1)
    per_direction = len(params) // (2 if bidirectional else 1)

    def one(x_dir, d):
        h0 = (hx[0][d:d + 1], hx[1][d:d + 1]) if kind == "lstm" else hx[d:d + 1]
        out, *_ = fn(x_dir, h0, params[d * per_direction:(d + 1) * per_direction], has_bias, 1, 0.0,
                     training, False, True)
        return out, out.gather(1, last.expand(-1, 1, out.shape[-1])).transpose(0, 1)

    out, h = one(x, 0)
    if bidirectional:
        out_b, h_b = one(_reverse_within(x, lengths), 1)
        h = torch.cat([h, h_b], dim=0)
        out = torch.cat([out, _reverse_within(out_b, lengths)], dim=-1) if needs_sequences else None
    if needs_sequences:
        out = out * valid.to(out.dtype)  # zeros at padded steps, as pad_packed_sequence gives
    else:
        out = None
    if kind == "lstm":
        return out, (h, torch.full_like(h, float("nan")))
    return out, h
