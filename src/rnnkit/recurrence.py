"""The recurrences, step by step: the lecture's equations, one step function per cell type.

A step maps this step's input projection and the states to ``(output, new_states)``::

    h, (h, c) = lstm_step(xw_t, (h, c), recurrent_kernel, options)

where ``xw_t = x_t W + b`` (:func:`project`). The cells (``rnnkit.layers.LSTMCell`` ...) run
one step at a time; the sequence functions run a whole batch-first sequence::

    outputs, final_states = lstm_sequence(x, initial_states, weights, options)

``x`` is (batch, time, features); ``weights`` are Keras's ``(kernel, recurrent_kernel,
bias)`` with kernel (features, k*units), recurrent_kernel (units, k*units) and gates
stacked along the last axis in Keras's order (LSTM i, f, c, o; GRU z, r, h).
``outputs`` is (batch, time, units) in processing order (reversed when ``go_backwards``).

This module is the reference: plain PyTorch ops, one loop iteration per time step, and
the definition the fused kernels in ``rnnkit.fused`` are tested against. The input
projection ``x_t @ W + b`` does not depend on the state, so the sequence functions compute
it for all steps at once and unbind the time axis once (indexing ``x[:, t]`` in the loop
would make autograd build a full-size zero gradient at every step).
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
    # Remembered by the fused-path check (rnnkit.fused.plan): 'right' / 'left' padding, or why neither;
    # and each row's number of real steps.
    mask_layout: Optional[str] = None
    mask_lengths: Optional[torch.Tensor] = None


# ----- one step ------------------------------------------------------------------------------------
def simple_rnn_step(xw_t, states, recurrent_kernel, options):
    """h_t = activation(x_t Wxh + b + h_{t-1} Whh); the output is h_t."""
    (h,) = states
    h = options.activation(xw_t + _drop(h, options) @ recurrent_kernel)
    return h, (h,)


def lstm_step(xw_t, states, recurrent_kernel, options):
    """LSTM with input (i), forget (f) and output (o) gates and a cell state c.

    i = σ(x Wi + h Ui + bi)   f = σ(x Wf + h Uf + bf)   o = σ(x Wo + h Uo + bo)
    c_t = f * c_{t-1} + i * tanh(x Wc + h Uc + bc)      h_t = o * tanh(c_t)
    """
    h, c = states
    act, gate = options.activation, options.recurrent_activation
    z = xw_t + _drop(h, options) @ recurrent_kernel
    z_i, z_f, z_c, z_o = z.chunk(4, dim=-1)
    i, f, o = gate(z_i), gate(z_f), gate(z_o)
    c = f * c + i * act(z_c)
    h = o * act(c)
    return h, (h, c)


def gru_step(xw_t, states, recurrent_kernel, options, recurrent_bias=None):
    """GRU with update (z) and reset (r) gates; Keras's two variants.

    reset_after=True (default, cuDNN's):  hh = tanh(x Wh + bh + r * (h Uh + b'h))
    reset_after=False (original paper):   hh = tanh(x Wh + bh + (r * h) Uh)
    h_t = z * h_{t-1} + (1 - z) * hh
    """
    (h,) = states
    U, units = recurrent_kernel, recurrent_kernel.shape[0]
    act, gate = options.activation, options.recurrent_activation
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


def gru_biases(bias, reset_after):
    """(input bias, recurrent bias or None): reset_after's bias is (2, 3*units), one row each."""
    if bias is not None and reset_after:
        return bias[0], bias[1]
    return bias, None


def project(x, kernel, bias, options):
    """x W + b (after input dropout) for one step (batch, features) or all steps (batch, time, features)."""
    if options.input_dropout is not None:
        x = x * (options.input_dropout if x.dim() == 2 else options.input_dropout.unsqueeze(1))
    xw = x @ kernel
    if bias is not None:
        xw = xw + bias
    return xw


def _drop(h, options):
    return h if options.recurrent_dropout is None else h * options.recurrent_dropout


# ----- whole sequences -----------------------------------------------------------------------------
def simple_rnn_sequence(x, states, weights, options):
    Wxh, Whh, b = weights
    return scan(lambda xw_t, s: simple_rnn_step(xw_t, s, Whh, options), _projected_steps(x, Wxh, b, options),
                states, options)


def lstm_sequence(x, states, weights, options):
    W, U, b = weights
    return scan(lambda xw_t, s: lstm_step(xw_t, s, U, options), _projected_steps(x, W, b, options), states, options)


def gru_sequence(x, states, weights, options):
    W, U, b = weights
    input_bias, recurrent_bias = gru_biases(b, options.reset_after)
    return scan(lambda xw_t, s: gru_step(xw_t, s, U, options, recurrent_bias),
                _projected_steps(x, W, input_bias, options), states, options)


def _projected_steps(x, kernel, bias, options):
    """x_t W + b for every step at once, in processing order, unbound along time."""
    xw = project(x, kernel, bias, options)
    if options.go_backwards:
        xw = xw.flip(1)
    return xw.unbind(1)


def scan(step, steps, states, options):
    """Apply ``step(input_t, states) -> (output, new_states)`` along time, as Keras's RNN loop.

    ``steps`` are the per-step inputs in processing order; ``options.mask`` is in input order
    (flipped here when ``go_backwards``). Masked steps keep the state (nested states too) and
    repeat the last output (zeros with ``zero_output_for_mask``, and before the first real step).
    Returns (outputs (batch, time, ...) in processing order, final states).
    """
    mask = options.mask
    if mask is not None:
        mask = (mask.flip(1) if options.go_backwards else mask).unbind(1)
    outputs = []
    previous = zeros = None
    for t, input_t in enumerate(steps):
        output, new_states = step(input_t, states)
        if mask is not None:
            if previous is None or options.zero_output_for_mask:
                zeros = torch.zeros_like(output) if zeros is None else zeros
                previous = zeros
            output = _keep_where(mask[t], output, previous)
            new_states = _keep_where(mask[t], new_states, states)
            previous = output
        outputs.append(output)
        states = new_states
    return torch.stack(outputs, dim=1), states


def _keep_where(keep, new, old):
    """``new`` where ``keep`` (batch,) is True, else ``old``; through nested lists/tuples of tensors."""
    if isinstance(new, torch.Tensor):
        return torch.where(keep.view(-1, *[1] * (new.dim() - 1)), new, old)
    return type(new)(_keep_where(keep, n, o) for n, o in zip(new, old))


SEQUENCE_FUNCTIONS = {"simple_rnn": simple_rnn_sequence, "lstm": lstm_sequence, "gru": gru_sequence}
