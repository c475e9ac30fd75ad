"""Keras's RNN layer (a cell run along the time axis) and SimpleRNN, LSTM and GRU, which are RNNs of their cell."""
import inspect
import logging

import torch

from .. import fused, registry
from .._naming import suggest
from ..recurrence import SEQUENCE_FUNCTIONS, SequenceOptions, scan
from .layer import _BASE_ARGS, Layer, check_flags
from .rnn_cells import (GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells, call_cell, check_cell, dropout_mask,
                        flat_states, initial_state, map_states, output_size)

log = logging.getLogger("rnnkit")


class RNN(Layer):
    """Run a cell along the time axis, as Keras's ``RNN``: (batch, time, features) -> outputs.

    Arguments:
        cell: a cell (``LSTMCell(32)``, or any layer with ``state_size`` and
            ``call(inputs, states)`` returning ``(output, new_states)``), or a list of cells,
            which become one ``StackedRNNCells``.
        return_sequences: return every step's output (batch, time, units), not only the last.
        return_state: also return the final states: ``[output, *states]``.
        go_backwards: process the sequence in reverse (outputs come in processing order).
        stateful: carry each batch's final states into the next batch (``reset_states()`` forgets).
        unroll: accepted for Keras compatibility; the loop is always a Python loop or a fused kernel.
        zero_output_for_mask: masked steps output zeros instead of repeating the last output.
        use_fused: "auto" (default): a built-in cell runs a fused kernel whenever one computes
            exactly this call; False: always step by step (the reference); True: the fused
            kernel or a ValueError saying why not.

    ``execution_path`` names the path the last call took (``"fused: native-c gru"``,
    ``"fused: aten lstm (oneDNN)"``, ``"reference: recurrent_dropout in training"``...), and
    ``execution_plan`` holds the plan with its reason (see ``rnnkit.fused.plan``). A built-in
    cell runs exactly as the matching layer: ``RNN(LSTMCell(32))`` is ``LSTM(32)``.

        rnn = RNN(LSTMCell(32), return_sequences=True)
        y = rnn(torch.randn(8, 20, 5))                   # (8, 20, 32)
        y, h, c = RNN(LSTMCell(32), return_state=True)(torch.randn(8, 20, 5))
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, use_fused="auto", **kwargs):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        check_cell(cell)
        if use_fused not in ("auto", True, False):
            raise ValueError(f"use_fused must be 'auto', True or False, got {use_fused!r}.")
        super().__init__(**kwargs)
        self.cell = cell
        self.kind = getattr(cell, "fused_kind", None)  # 'simple_rnn', 'lstm', 'gru'; None: steps through call()
        (self.return_sequences, self.return_state, self.go_backwards, self.stateful, self.unroll,
         self.zero_output_for_mask) = check_flags(
            type(self).__name__, return_sequences=return_sequences, return_state=return_state,
            go_backwards=go_backwards, stateful=stateful, unroll=unroll, zero_output_for_mask=zero_output_for_mask)
        self.use_fused = use_fused
        self.execution_path = self.execution_plan = None
        self.states = None
        self._fused_cache = {}

    @property
    def state_size(self):
        """One entry per state, as Keras: ``[units]``, ``[units, units]`` (LSTM), or the cells' sizes."""
        size = self.cell.state_size
        return list(size) if isinstance(size, (list, tuple)) else [size]

    # ----- building and calling ----------------------------------------------------------------
    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Layer '{self.name}' expects 3-D input (batch, time, features), "
                             f"got shape {tuple(input_shape)}.")
        if input_shape[-1] is None:
            raise ValueError(f"Layer '{self.name}' needs a known feature size, got {tuple(input_shape)}.")
        self._input_dim = input_shape[-1]
        if isinstance(self.cell, Layer):
            self.cell._ensure_built((input_shape[0], input_shape[-1]), self._device())

    def _check_inputs(self, inputs):
        self._check_rank(inputs, (3,), "a 3-D input (batch, time, features)")
        self._check_features(inputs, self._input_dim)
        if inputs.shape[1] == 0:
            raise ValueError(f"Layer '{self.name}' got sequences with no time steps (input shape "
                             f"{tuple(inputs.shape)}); a recurrent layer needs at least one step.")

    def forward(self, inputs, mask=None, training=None, initial_state=None):
        self._check_inputs(inputs)
        if not inputs.is_floating_point():
            inputs = inputs.float()
        training = self.training if training is None else training
        cell = self.cell
        states = self._initial_states(inputs, initial_state)
        options = self._options(cell, inputs, mask, training)
        plan = self._plan(cell, options, inputs)
        if plan.fused:
            outputs, final_states = fused.run(plan, inputs, states, cell.recurrence_weights(), options, training,
                                              cache=self._fused_cache)
        elif self.kind is not None:  # a built-in cell: its recurrence over the whole sequence at once
            outputs, final_states = SEQUENCE_FUNCTIONS[self.kind](inputs, states, cell.recurrence_weights(), options)
        else:
            outputs, final_states = self._step_through(inputs, states, options, training)
        final_states = list(final_states)
        if self.stateful:
            self.states = map_states(torch.Tensor.detach, final_states)
        if self.return_sequences:
            output = outputs
        else:  # the last output is the final h, which is all the fused path returns when it may
            output = final_states[0] if outputs is None else outputs[:, -1]
        if self.return_state:
            return [output, *final_states]
        return output

    def _plan(self, cell, options, inputs):
        """``fused.plan`` for this call; records it in ``execution_plan`` / ``execution_path``."""
        plan = fused.plan(cell, options, inputs, self.use_fused)
        if plan is not self.execution_plan:
            if self.use_fused is True and not plan.fused:
                raise ValueError(f"Layer '{self.name}' cannot use the fused kernel: {plan.reason}. "
                                 "Pass use_fused='auto' to fall back to the step-by-step reference.")
            log.debug("%s: %s (%s)", self.name, plan.path, plan.reason)
            self.execution_plan, self.execution_path = plan, plan.path
        return plan

    def _options(self, cell, inputs, mask, training):
        options = SequenceOptions(
            mask=_as_mask(mask, inputs, self.name),
            go_backwards=self.go_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
            needs_sequences=self.return_sequences or self.zero_output_for_mask,
            needs_final_cell=self.return_state or self.stateful,
        )
        if self.kind is not None:  # a built-in cell: its activations and this sequence's dropout masks
            options.activation, options.recurrent_activation = cell.activation, cell.recurrent_activation
            options.reset_after = getattr(cell, "reset_after", True)
            if training and cell.dropout > 0:
                options.input_dropout = self._dropout_mask(inputs.shape[0], inputs.shape[-1], cell.dropout, inputs)
            if training and cell.recurrent_dropout > 0:
                options.recurrent_dropout = self._dropout_mask(inputs.shape[0], cell.units, cell.recurrent_dropout,
                                                               inputs)
        return options

    def _dropout_mask(self, batch, width, rate, like):
        """One mask per sequence, reused at every step (Keras's recurrent dropout)."""
        return dropout_mask(batch, width, rate, like, self.cell.generator)

    def _step_through(self, inputs, states, options, training):
        """Keras's loop over the cell's own ``call`` (user cells, StackedRNNCells, subclassed cells)."""
        steps = (inputs.flip(1) if self.go_backwards else inputs).unbind(1)
        try:
            return scan(lambda x_t, s: call_cell(self.cell, x_t, s, training), steps, states, options)
        finally:
            if hasattr(self.cell, "reset_dropout_mask"):
                self.cell.reset_dropout_mask()

    # ----- states ----------------------------------------------------------------------------------
    def _initial_states(self, inputs, initial_state):
        batch = inputs.shape[0]
        if initial_state is not None:
            if isinstance(initial_state, torch.Tensor):
                initial_state = [initial_state]
            states = map_states(lambda s: torch.as_tensor(s, dtype=inputs.dtype, device=inputs.device),
                                list(initial_state))
            self._check_initial_state(states, batch)
            return states
        if self.stateful and self.states is not None:
            held = flat_states(self.states)[0].shape[0]
            if held != batch:
                raise ValueError(f"Stateful layer '{self.name}' holds states for batch size {held} but got a batch "
                                 f"of {batch}: use a fixed batch size or call reset_states().")
            return self.states
        return self.get_initial_state(batch, like=inputs)

    def _check_initial_state(self, states, batch):
        sizes = self.state_size
        if len(states) != len(sizes):
            raise ValueError(f"Layer '{self.name}' has {len(sizes)} state(s) but got {len(states)} initial_state "
                             f"tensors; pass one per state (state_size {sizes}).")
        for state, size in zip(states, sizes):
            if isinstance(size, int) and tuple(state.shape) != (batch, size):
                raise ValueError(f"Layer '{self.name}': initial_state must have shape {(batch, size)}, "
                                 f"got {tuple(state.shape)}.")

    def get_initial_state(self, batch_size, like=None):
        """The states a sequence starts from: zeros, or the cell's ``get_initial_state``.

        ``like``: a tensor whose device and dtype the states take (default float32 on the CPU).
        """
        like = torch.zeros(()) if like is None else like
        if self.kind is not None:  # a built-in cell: zeros for h (and an LSTM's c), one tensor
            return [like.new_zeros(batch_size, self.cell.units)] * (2 if self.kind == "lstm" else 1)
        states = initial_state(self.cell, batch_size, like)
        return list(states) if isinstance(states, (list, tuple)) else [states]

    def reset_states(self, states=None):
        """Forget (or set) the states a stateful layer carries between batches."""
        self.states = None if states is None else map_states(
            lambda s: torch.as_tensor(s, dtype=torch.float32), list(states))

    def reset_state(self, states=None):
        """Keras 3's name for :meth:`reset_states`."""
        self.reset_states(states)

    # ----- shapes, masks, config ---------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        """The output's shape; with ``return_state`` a list ``[output_shape, *state_shapes]`` (Keras 3's order)."""
        batch, size = input_shape[0], output_size(self.cell)
        shape = (batch, input_shape[1], size) if self.return_sequences else (batch, size)
        if self.return_state:
            return [shape] + [_state_shape(batch, s) for s in self.state_size]
        return shape

    def compute_mask(self, inputs, mask=None):
        """The output's mask (the input's with ``return_sequences``, else None); with ``return_state``
        a list with None for each state."""
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        mask = mask if self.return_sequences else None
        if self.return_state:
            return [mask] + [None] * len(self.state_size)
        return mask

    def _rnn_config(self):
        return {"return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask, "use_fused": self.use_fused}

    def get_config(self):
        return {**super().get_config(), "cell": registry.serialize(self.cell), **self._rnn_config()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cell = registry.deserialize(config.pop("cell"), custom_objects)
        return cls(cell, **config)


RecurrentLayer = RNN  # the name SimpleRNN, LSTM and GRU's base had before cells


def _state_shape(batch, size):
    if isinstance(size, int):
        return (batch, size)
    return [_state_shape(batch, s) for s in size]


def _from_cell(name):
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's ``{name}``.")


class _CellLayer(RNN):
    """An RNN of one built-in cell, taking the cell's arguments and RNN's in one argument list.

    Subclasses name the cell (``cell_class``); their signature (``help(LSTM)``) is the cell's
    arguments followed by RNN's, and the cell's attributes read through the layer
    (``layer.units``, ``layer.kernel``..., listed below the class). Weights are the cell's, in
    Keras's order.
    """

    cell_class = None
    cell_name = None  # Keras's name for the inner cell

    def __init__(self, units, **kwargs):
        cell_arguments = _arguments(self.cell_class)
        _reject_unknown(type(self), kwargs)
        cell_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in cell_arguments}
        cell = self.cell_class(units, name=self.cell_name, trainable=kwargs.get("trainable", True),
                               dtype=kwargs.get("dtype"), **cell_kwargs)
        super().__init__(cell, **kwargs)

    def get_config(self):
        """Keras's layout: the layer's name, the cell's arguments and RNN's, flat (no nested cell)."""
        cell = {key: value for key, value in self.cell.get_config().items()
                if key not in ("name", "trainable", "batch_input_shape")}
        return {**Layer.get_config(self), **cell, **self._rnn_config()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


for _name in ("units", "activation", "activation_name", "recurrent_activation", "recurrent_activation_name",
              "use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer", "kernel_regularizer",
              "recurrent_regularizer", "bias_regularizer", "kernel_constraint", "recurrent_constraint",
              "bias_constraint", "dropout", "recurrent_dropout", "seed", "kernel", "recurrent_kernel", "bias"):
    setattr(_CellLayer, _name, _from_cell(_name))


def _arguments(cls):
    return [name for name in inspect.signature(cls).parameters if name not in ("units", "kwargs")]


def _reject_unknown(cls, kwargs):
    """A TypeError naming the closest accepted argument, as Layer does for its own arguments."""
    accepted = set(_arguments(cls.cell_class)) | set(_arguments(RNN)) - {"cell"} | set(_BASE_ARGS) | {"units"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise TypeError(f"{cls.__name__}() got an unknown argument '{unknown[0]}'.{suggest(unknown[0], accepted)} "
                        f"Accepted arguments: {', '.join(sorted(accepted))}.")


def _signature(cell_class):
    """``units``, the cell's arguments, then RNN's (keyword-only), for help() and inspect."""
    cell = list(inspect.signature(cell_class).parameters.values())
    rnn = [p for p in inspect.signature(RNN).parameters.values() if p.name not in ("cell", "kwargs")]
    keyword_only = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in cell[1:-1] + rnn]
    return inspect.Signature([cell[0], *keyword_only, cell[-1]])


class SimpleRNN(_CellLayer):
    """Fully-connected RNN: h_t = tanh(x_t Wxh + h_{t-1} Whh + b); 32 units on 32 features
    hold 32*32 + 32*32 + 32 = 2,080 parameters.

    Arguments: ``SimpleRNNCell``'s (units, activation, use_bias, initializers, dropout,
    recurrent_dropout, seed), then ``RNN``'s (return_sequences, return_state, go_backwards,
    stateful, unroll, zero_output_for_mask, use_fused).

        y = SimpleRNN(32)(torch.randn(8, 20, 5))          # (8, 32)
    """

    cell_class, cell_name = SimpleRNNCell, "simple_rnn_cell"


class LSTM(_CellLayer):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), gates i, f, c, o as in Keras.

    Arguments: ``LSTMCell``'s (units, activation, recurrent_activation, use_bias,
    initializers, unit_forget_bias, dropout, recurrent_dropout, seed), then ``RNN``'s.
    States: h and c.

        y, h, c = LSTM(32, return_sequences=True, return_state=True)(torch.randn(8, 20, 5))
    """

    cell_class, cell_name = LSTMCell, "lstm_cell"
    unit_forget_bias = _from_cell("unit_forget_bias")


class GRU(_CellLayer):
    """Gated recurrent unit (Cho et al. 2014), gates z, r, h as in Keras; ``reset_after``
    picks the cuDNN-compatible variant (default, bias (2, 3*units)) or the original one.

    Arguments: ``GRUCell``'s (units, activation, recurrent_activation, use_bias,
    initializers, dropout, recurrent_dropout, reset_after, seed), then ``RNN``'s.

        y = GRU(32, reset_after=False)(torch.randn(8, 20, 5))
    """

    cell_class, cell_name = GRUCell, "gru_cell"
    reset_after = _from_cell("reset_after")


for _layer in (SimpleRNN, LSTM, GRU):
    _layer.__signature__ = _signature(_layer.cell_class)


def _as_mask(mask, inputs, name):
    if mask is None:
        return None
    mask = torch.as_tensor(mask, device=inputs.device)
    if tuple(mask.shape) != tuple(inputs.shape[:2]):
        raise ValueError(f"Layer '{name}': mask must have shape (batch, time) = {tuple(inputs.shape[:2])}, "
                         f"got {tuple(mask.shape)}.")
    return mask.bool()
