"""Recurrent cells: one time step of SimpleRNN, LSTM and GRU, and a stack of cells.

A cell is what ``layers.RNN`` runs along the time axis. Keras's contract, which user
cells follow too: a ``state_size`` (an int, or a list with one entry per state; entries
may be lists themselves, for nested states) and ``call(inputs, states)`` mapping one
step's input (batch, features) and the list of states to ``(output, new_states)``::

    class MinimalRNNCell(rnnkit.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units, self.state_size = units, units

        def build(self, input_shape):
            self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), "glorot_uniform")

        def call(self, inputs, states):
            h = torch.tanh(inputs @ self.kernel + states[0])
            return h, [h]

    RNN(MinimalRNNCell(8))                 # steps through call()
    RNN(LSTMCell(32))                      # the same layer as LSTM(32), fused kernels included

The built-in cells hold Keras's weights (kernel, recurrent_kernel, bias: same shapes,
same order) and compute one step with the step functions of ``rnnkit.recurrence``, the
equations the fused kernels are tested against.
"""
import functools
import inspect

import torch
from torch import nn

from .. import activations, constraints, recurrence, registry, regularizers
from ..recurrence import SequenceOptions
from .layer import Layer, check_flags, check_int


class _KerasCell(Layer):
    """What SimpleRNNCell, LSTMCell and GRUCell share: Keras's weights, dropout and states.

    Dropout follows Keras's cells: inside one sequence every step uses the same masks
    (made on the first step in training, kept until ``reset_dropout_mask()``, which
    ``RNN`` calls after each sequence).
    """

    kind = None  # the recurrence of rnnkit.recurrence (and of the fused kernels) this cell computes
    fused_kind = None  # kind, while the class computes exactly the built-in step: a fused kernel may run it
    gates = 1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__:  # SimpleRNNCell, LSTMCell, GRUCell
            cls.fused_kind = cls.kind
        elif "call" in vars(cls):  # a subclass with its own step: RNN steps through it, never fused
            cls.fused_kind = None

    def __init__(self, units, *, activation, recurrent_activation, use_bias, kernel_initializer, recurrent_initializer,
                 bias_initializer, kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint,
                 recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed, **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.units = check_int(owner, "units", units)
        for arg, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
                raise ValueError(f"{owner}: {arg} must be a number in [0, 1), got {rate!r:.60}.")
        self.activation_name, self.activation = activations.get(activation)
        self.recurrent_activation_name, self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias, = check_flags(owner, use_bias=use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self._dropout_masks = None

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    # ----- weights ---------------------------------------------------------------------------------
    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"Cell '{self.name}' needs a known feature size, got input shape {tuple(input_shape)}.")
        device, width = self._device(), self.gates * self.units
        self.add_weight("kernel", (input_shape[-1], width), self.kernel_initializer, device=device,
                        regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.add_weight("recurrent_kernel", (self.units, width), self.recurrent_initializer, device=device,
                        regularizer=self.recurrent_regularizer, constraint=self.recurrent_constraint)
        if self.use_bias:
            self._add_bias(self._bias_shape(), device)
        else:
            self.register_parameter("bias", None)  # cell.bias is None, as in Keras
        self._input_dim = input_shape[-1]

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _add_bias(self, shape, device):
        return self.add_weight("bias", shape, self.bias_initializer, device=device, regularizer=self.bias_regularizer,
                               constraint=self.bias_constraint)

    def recurrence_weights(self):
        """(kernel, recurrent_kernel, bias or None): what ``rnnkit.recurrence`` and ``rnnkit.fused`` take."""
        return self.kernel, self.recurrent_kernel, self.bias

    # ----- one step --------------------------------------------------------------------------------
    def _step_options(self, inputs, h, training):
        """The activations and this sequence's dropout masks, for one step of ``call``."""
        training = self.training if training is None else training
        options = SequenceOptions(activation=self.activation, recurrent_activation=self.recurrent_activation,
                                  reset_after=getattr(self, "reset_after", True))
        if training and (self.dropout > 0 or self.recurrent_dropout > 0):
            if self._dropout_masks is None:
                self._dropout_masks = (
                    dropout_mask(inputs.shape[0], inputs.shape[-1], self.dropout, inputs, self.generator)
                    if self.dropout > 0 else None,
                    dropout_mask(h.shape[0], self.units, self.recurrent_dropout, h, self.generator)
                    if self.recurrent_dropout > 0 else None)
            options.input_dropout, options.recurrent_dropout = self._dropout_masks
        return options

    def reset_dropout_mask(self):
        """Forget the dropout masks of the sequence just run (Keras's name; RNN calls it after each call)."""
        self._dropout_masks = None

    reset_recurrent_dropout_mask = reset_dropout_mask

    def get_initial_state(self, batch_size=None):
        """Zeros for every state, as Keras's cells: ``[h]`` (LSTM: ``[h, c]``), each (batch_size, units)."""
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        like = self.kernel if self.built else torch.zeros(())
        return [like.new_zeros(batch_size, size) for size in sizes]

    # ----- config ----------------------------------------------------------------------------------
    def get_config(self):
        config = {**super().get_config(), "units": self.units, "activation": self.activation_name,
                  "use_bias": self.use_bias, "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                  "seed": self.seed}
        for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            if isinstance(getattr(self, key), str):
                config[key] = getattr(self, key)
        for key in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer"):  # only those set
            if getattr(self, key) is not None:
                config[key] = regularizers.serialize(getattr(self, key))
        for key in ("kernel_constraint", "recurrent_constraint", "bias_constraint"):
            if getattr(self, key) is not None:
                config[key] = constraints.serialize(getattr(self, key))
        return config

    def extra_repr(self):
        return f"name={self.name!r}, units={self.units}"


class SimpleRNNCell(_KerasCell):
    """One step of a fully-connected RNN: h_t = activation(x_t W + b + h_{t-1} U).

    Arguments (Keras's): units, activation ("tanh"), use_bias, kernel_initializer,
    recurrent_initializer, bias_initializer, the regularizers and constraints of kernel,
    recurrent_kernel and bias, dropout and recurrent_dropout (rates of the per-sequence masks
    on the inputs and on h), seed (of those masks).

        cell = SimpleRNNCell(4)
        h, [h] = cell(torch.randn(2, 3), [torch.zeros(2, 4)])
    """

    kind = "simple_rnn"

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation="sigmoid", use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         seed=seed, **kwargs)

    def call(self, inputs, states, training=None):
        """``(h, [h])`` for this step's ``inputs`` (batch, features) and ``states`` = ``[h_{t-1}]``."""
        states = _as_list(states)
        options = self._step_options(inputs, states[0], training)
        xw = recurrence.project(inputs, self.kernel, self.bias, options)
        h, new_states = recurrence.simple_rnn_step(xw, states, self.recurrent_kernel, options)
        return h, list(new_states)


class LSTMCell(_KerasCell):
    """One LSTM step (gates i, f, c, o as Keras; equations in ``rnnkit.recurrence.lstm_step``).

    Arguments (Keras's): units, activation ("tanh"), recurrent_activation ("sigmoid", the
    gates'), use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
    unit_forget_bias (start the forget gate's bias at 1), kernel_/recurrent_/bias_regularizer,
    kernel_/recurrent_/bias_constraint, dropout, recurrent_dropout, seed.
    States: ``[h, c]``.

        cell = LSTMCell(4)
        h, [h, c] = cell(torch.randn(2, 3), [torch.zeros(2, 4), torch.zeros(2, 4)])
    """

    kind = "lstm"
    gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         seed=seed, **kwargs)
        self.unit_forget_bias, = check_flags(type(self).__name__, unit_forget_bias=unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _add_bias(self, shape, device):
        bias = super()._add_bias(shape, device)
        if self.unit_forget_bias:
            with torch.no_grad():
                bias[self.units: 2 * self.units] = 1.0
        return bias

    def call(self, inputs, states, training=None):
        """``(h, [h, c])`` for this step's ``inputs`` (batch, features) and ``states`` = ``[h_{t-1}, c_{t-1}]``."""
        options = self._step_options(inputs, states[0], training)
        xw = recurrence.project(inputs, self.kernel, self.bias, options)
        h, new_states = recurrence.lstm_step(xw, states, self.recurrent_kernel, options)
        return h, list(new_states)

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation_name,
                "unit_forget_bias": self.unit_forget_bias}


class GRUCell(_KerasCell):
    """One GRU step (gates z, r, h as Keras; equations in ``rnnkit.recurrence.gru_step``).

    Arguments (Keras's): units, activation, recurrent_activation, use_bias, the three
    initializers, regularizers and constraints, dropout, recurrent_dropout, reset_after
    (True: the reset gate applies after the recurrent matrix product, cuDNN's variant, bias
    (2, 3*units); False: the original paper's, bias (3*units,)), seed. States: ``[h]``.

        cell = GRUCell(4)
        h, [h] = cell(torch.randn(2, 3), [torch.zeros(2, 4)])
    """

    kind = "gru"
    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
                 reset_after=True, seed=None, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         seed=seed, **kwargs)
        self.reset_after, = check_flags(type(self).__name__, reset_after=reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def call(self, inputs, states, training=None):
        """``(h, [h])`` for this step's ``inputs`` (batch, features) and ``states`` = ``[h_{t-1}]``."""
        states = _as_list(states)
        options = self._step_options(inputs, states[0], training)
        input_bias, recurrent_bias = recurrence.gru_biases(self.bias, self.reset_after)
        xw = recurrence.project(inputs, self.kernel, input_bias, options)
        h, new_states = recurrence.gru_step(xw, states, self.recurrent_kernel, options, recurrent_bias)
        return h, list(new_states)

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation_name,
                "reset_after": self.reset_after}


class StackedRNNCells(Layer):
    """Several cells as one: each step runs them in order, each cell's output the next one's input.

    ``state_size`` is the list of the cells' state sizes, the states are one entry per cell
    (a list for a cell with several states), as in Keras. ``RNN([cell1, cell2])`` builds one.

        cells = StackedRNNCells([LSTMCell(16), GRUCell(8)])
        out, [h1, c1], [h2] = RNN(cells, return_state=True)(torch.randn(4, 10, 3))
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = list(cells)
        if not cells:
            raise ValueError("StackedRNNCells needs at least one cell.")
        for cell in cells:
            check_cell(cell, "StackedRNNCells")
            if not isinstance(cell, nn.Module):
                raise ValueError(f"StackedRNNCells takes rnnkit layers as cells (so their weights are tracked), "
                                 f"got {type(cell).__name__}.")
        self.cells = nn.ModuleList(cells)

    @property
    def state_size(self):
        return [cell.state_size for cell in self.cells]

    @property
    def output_size(self):
        return output_size(self.cells[-1])

    def build(self, input_shape):
        for cell in self.cells:
            if isinstance(cell, Layer):
                cell._ensure_built(input_shape, self._device())
            input_shape = (input_shape[0], output_size(cell))

    def get_initial_state(self, batch_size=None):
        return [initial_state(cell, batch_size) for cell in self.cells]

    def call(self, inputs, states, training=None):
        new_states = []
        for cell, cell_states in zip(self.cells, states):
            several = isinstance(cell_states, (list, tuple))
            inputs, cell_states = call_cell(cell, inputs, list(cell_states) if several else [cell_states], training)
            new_states.append(cell_states if several or len(cell_states) != 1 else cell_states[0])
        return inputs, new_states

    def reset_dropout_mask(self):
        for cell in self.cells:
            if hasattr(cell, "reset_dropout_mask"):
                cell.reset_dropout_mask()

    def get_config(self):
        return {**super().get_config(), "cells": [registry.serialize(cell) for cell in self.cells]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cells = [registry.deserialize(spec, custom_objects) for spec in config.pop("cells")]
        return cls(cells, **config)


# ----- any cell --------------------------------------------------------------------------------------
def check_cell(cell, what="RNN"):
    """A ValueError unless ``cell`` follows the cell contract (``call`` and ``state_size``)."""
    if not callable(getattr(cell, "call", None)) or type(cell).call is getattr(Layer, "call", None):
        raise ValueError(f"{what} needs cells with a call(inputs, states) method returning (output, new_states); "
                         f"{type(cell).__name__} has none.")
    size = getattr(cell, "state_size", None)
    if not _is_size(size):
        raise ValueError(f"{what} needs cells with a state_size: an int, or a list of them (one per state), "
                         f"got {size!r} from {type(cell).__name__}. Set self.state_size in the cell's __init__.")


def _is_size(size):
    if isinstance(size, int):
        return size > 0
    return isinstance(size, (list, tuple)) and len(size) > 0 and all(_is_size(s) for s in size)


def output_size(cell):
    """The cell's ``output_size``, else its (first) state size, as Keras."""
    size = getattr(cell, "output_size", None)
    if size is None:
        size = cell.state_size
        while isinstance(size, (list, tuple)):
            size = size[0]
    return size


def initial_state(cell, batch_size, like=None):
    """The cell's ``get_initial_state(batch_size)`` if it has one, else zeros shaped by ``state_size``
    (nested like it). ``like``: a tensor whose device and dtype the states take."""
    make = getattr(cell, "get_initial_state", None)
    if make is not None:
        states = make(batch_size=batch_size)
    else:
        size = cell.state_size
        states = _zeros(size if isinstance(size, (list, tuple)) else [size], batch_size)
    if like is not None:
        states = map_states(lambda s: torch.as_tensor(s).to(device=like.device, dtype=like.dtype), states)
    return states


def _zeros(size, batch_size):
    if isinstance(size, int):
        return torch.zeros(batch_size, size)
    return [_zeros(s, batch_size) for s in size]


def call_cell(cell, inputs, states, training=None):
    """One step of any cell: ``(output, new_states)``, ``new_states`` always a list (Keras's contract).

    ``training`` is passed when the cell's ``call`` takes it. Layers are called through
    ``__call__`` (hooks, building), other objects through ``call``.
    """
    kwargs = {"training": training} if _takes_training(type(cell)) else {}
    output, new_states = (cell(inputs, states, **kwargs) if isinstance(cell, nn.Module)
                          else cell.call(inputs, states, **kwargs))
    return output, _as_list(new_states)


@functools.lru_cache(maxsize=None)
def _takes_training(cell_class):
    return "training" in inspect.signature(cell_class.call).parameters


def _as_list(states):
    return list(states) if isinstance(states, (list, tuple)) else [states]


def map_states(fn, states):
    """``fn`` applied to every tensor of a (nested) list of states, keeping the nesting."""
    if isinstance(states, (list, tuple)):
        return [map_states(fn, s) for s in states]
    return fn(states)


def flat_states(states):
    if isinstance(states, (list, tuple)):
        return [leaf for s in states for leaf in flat_states(s)]
    return [states]


def dropout_mask(batch, width, rate, like, generator=None):
    """A (batch, width) inverted-dropout mask (kept units scaled by 1/(1-rate)), ``like``'s device and dtype."""
    keep = torch.empty(batch, width).bernoulli_(1 - rate, generator=generator)
    return (keep / (1 - rate)).to(device=like.device, dtype=like.dtype)
