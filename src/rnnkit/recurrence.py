"""The recurrences, step by step: the lecture's equations, one function per cell type.

Every function runs a whole batch-first sequence::

    outputs, final_states = lstm_sequence(x, initial_states, weights, options)

``x`` is (batch, time, features); ``weights`` are Keras's ``(kernel, recurrent_kernel,
bias)`` with kernel (features, k*units), recurrent_kernel (units, k*units) and gates
stacked along the last axis in Keras's order (LSTM i, f, c, o; GRU z, r, h).
``outputs`` is (batch, time, units) in processing order (reversed when ``go_backwards``).

This module is the reference: plain PyTorch ops, one loop iteration per time step, and
the definition the fused kernels in ``rnnkit.fused`` are tested against. The input
projection ``x_t @ W + b`` does not depend on the state, so it is computed for all steps
at once and the time axis is unbound once (indexing ``x[:, t]`` in the loop would make
autograd build a full-size zero gradient at every step).
"""
from dataclasses import dataclass
from typing import Callable, Optional

import torch


@dataclass
class SequenceOptions:
    """What changes the math of a recurrence besides its weights."""

    activation: Callable = torch.tanh
    recurrent_activation: Callable = torch.sigmoid
    mask: Optional[torch.Tensor] = None  # (batch, time) bool; False steps keep the state
    go_backwards: bool = False
    input_dropout: Optional[torch.Tensor] = None  # (batch, features), one mask per sequence
    recurrent_dropout: Optional[torch.Tensor] = None  # (batch, units), one mask per sequence
    zero_output_for_mask: bool = False  # masked steps output 0 instead of the previous output
    reset_after: bool = True  # GRU only
    # What the caller reads (the fused path skips the rest): the whole output sequence, and an
    # LSTM's final cell state. The reference path always computes both.
    needs_sequences: bool = True
    needs_final_cell: bool = True
    mask_layout: Optional[str] = None  # 'right' / 'left' padding, remembered by the fused-path check


def simple_rnn_sequence(x, states, weights, options):
    """h_t = activation(x_t Wxh + h_{t-1} Whh + b); the output is h_t."""
    Wxh, Whh, b = weights
    act = options.activation

    def step(xw_t, state):
        (h,) = state
        h = act(xw_t + _drop(h, options) @ Whh)
        return h, (h,)

    return _scan(step, _project(x, Wxh, b, options), states, options)


def lstm_sequence(x, states, weights, options):
    """LSTM with input (i), forget (f) and output (o) gates and a cell state c.

    i = σ(x Wi + h Ui + bi)   f = σ(x Wf + h Uf + bf)   o = σ(x Wo + h Uo + bo)
    c_t = f * c_{t-1} + i * tanh(x Wc + h Uc + bc)      h_t = o * tanh(c_t)
    """
    W, U, b = weights
    act, gate = options.activation, options.recurrent_activation

    def step(xw_t, state):
        h, c = state
        z = xw_t + _drop(h, options) @ U
        z_i, z_f, z_c, z_o = z.chunk(4, dim=-1)
        i, f, o = gate(z_i), gate(z_f), gate(z_o)
        c = f * c + i * act(z_c)
        h = o * act(c)
        return h, (h, c)

    return _scan(step, _project(x, W, b, options), states, options)


def gru_sequence(x, states, weights, options):
    """GRU with update (z) and reset (r) gates; Keras's two variants.

    reset_after=True (default, cuDNN's):  hh = tanh(x Wh + bh + r * (h Uh + b'h))
    reset_after=False (original paper):   hh = tanh(x Wh + bh + (r * h) Uh)
    h_t = z * h_{t-1} + (1 - z) * hh
    """
    W, U, b = weights
    units = U.shape[0]
    act, gate = options.activation, options.recurrent_activation
    input_bias, recurrent_bias = (b[0], b[1]) if (b is not None and options.reset_after) else (b, None)

    def step(xw_t, state):
        (h,) = state
        x_z, x_r, x_h = xw_t.chunk(3, dim=-1)
        h_dropped = _drop(h, options)
        if options.reset_after:
            hu = h_dropped @ U
            if recurrent_bias is not None:
                hu = hu + recurrent_bias
            h_z, h_r, h_h = hu.chunk(3, dim=-1)
            z, r = gate(x_z + h_z), gate(x_r + h_r)
            hh = act(x_h + r * h_h)
        else:
            h_z, h_r = (h_dropped @ U[:, : 2 * units]).chunk(2, dim=-1)
            z, r = gate(x_z + h_z), gate(x_r + h_r)
            hh = act(x_h + (r * h_dropped) @ U[:, 2 * units:])
        h = z * h + (1 - z) * hh
        return h, (h,)

    return _scan(step, _project(x, W, input_bias, options), states, options)


def _project(x, kernel, bias, options):
    """x_t W + b for every step at once, in processing order, unbound along time."""
    if options.input_dropout is not None:
        x = x * options.input_dropout.unsqueeze(1)
    xw = x @ kernel
    if bias is not None:
        xw = xw + bias
    if options.go_backwards:
        xw = xw.flip(1)
    return xw.unbind(1)


def _drop(h, options):
    return h if options.recurrent_dropout is None else h * options.recurrent_dropout


def _scan(step, xw_steps, states, options):
    """Apply ``step`` along time; masked steps keep the state and repeat the last output."""
    mask = options.mask
    if mask is not None:
        mask = (mask.flip(1) if options.go_backwards else mask).unbind(1)
    states = tuple(states)
    outputs = []
    previous = zeros = None
    for t, xw_t in enumerate(xw_steps):
        output, new_states = step(xw_t, states)
        if mask is not None:
            keep = mask[t].unsqueeze(-1)
            if previous is None or options.zero_output_for_mask:
                zeros = torch.zeros_like(output) if zeros is None else zeros
                previous = zeros
            output = torch.where(keep, output, previous)
            new_states = tuple(torch.where(keep, new, old) for new, old in zip(new_states, states))
            previous = output
        outputs.append(output)
        states = new_states
    return torch.stack(outputs, dim=1), states


SEQUENCE_FUNCTIONS = {"simple_rnn": simple_rnn_sequence, "lstm": lstm_sequence, "gru": gru_sequence}
