"""SimpleRNN, LSTM and GRU: Keras's arguments, weights and outputs over ``rnnkit.recurrence``."""
import logging

import torch

from .. import activations, fused
from ..recurrence import SEQUENCE_FUNCTIONS, SequenceOptions
from .layer import Layer

log = logging.getLogger("rnnkit")


class RecurrentLayer(Layer):
    """What SimpleRNN, LSTM and GRU share: weights (kernel, recurrent_kernel, bias),
    dropout masks, masking, states, and the choice between fused and reference paths.

    ``use_fused``: "auto" picks the fused kernel whenever it computes the same thing;
    False forces the step-by-step reference; True demands the fused path (error if it
    cannot). ``execution_path`` says which path the last call took and why.
    """

    kind = None
    gates = 1
    state_count = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False, seed=None,
                 use_fused="auto", zero_output_for_mask=False, **kwargs):
        super().__init__(**kwargs)
        if int(units) <= 0:
            raise ValueError(f"{type(self).__name__}: units must be a positive integer, got {units}.")
        for arg, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0 <= rate < 1:
                raise ValueError(f"{type(self).__name__}: {arg} must be in [0, 1), got {rate}.")
        if use_fused not in ("auto", True, False):
            raise ValueError(f"use_fused must be 'auto', True or False, got {use_fused!r}.")
        self.units = int(units)
        self.activation_name, self.activation = activations.get(activation)
        self.recurrent_activation_name, self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards, self.stateful, self.unroll = go_backwards, stateful, unroll
        self.seed = seed
        self.use_fused = use_fused
        self.zero_output_for_mask = zero_output_for_mask
        self.execution_path = None
        self.states = None
        self._fused_cache = {}
        self._generator = torch.Generator().manual_seed(seed) if seed is not None else None

    # ----- weights -----------------------------------------------------------------------------
    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Layer '{self.name}' expects 3-D input (batch, time, features), "
                             f"got shape {tuple(input_shape)}.")
        if input_shape[-1] is None:
            raise ValueError(f"Layer '{self.name}' needs a known feature size, got {tuple(input_shape)}.")
        self._input_dim = input_shape[-1]
        width = self.gates * self.units
        device = self._device()
        self.add_weight("kernel", (input_shape[-1], width), self.kernel_initializer, device=device)
        self.add_weight("recurrent_kernel", (self.units, width), self.recurrent_initializer, device=device)
        if self.use_bias:
            self._build_bias(device)

    def _build_bias(self, device):
        self.add_weight("bias", (self.gates * self.units,), self.bias_initializer, device=device)

    def _weights(self):
        return (self.kernel, self.recurrent_kernel, self.bias if self.use_bias else None)

    # ----- calling ----------------------------------------------------------------------------
    def forward(self, inputs, mask=None, training=None, initial_state=None):
        self._check_rank(inputs, (3,), "a 3-D input (batch, time, features)")
        self._check_features(inputs, self._input_dim)
        if inputs.shape[1] == 0:
            raise ValueError(f"Layer '{self.name}' got sequences with no time steps (input shape "
                             f"{tuple(inputs.shape)}); a recurrent layer needs at least one step.")
        if not inputs.is_floating_point():
            inputs = inputs.float()
        training = self.training if training is None else training
        states = self._initial_states(inputs, initial_state)
        options = self._options(inputs, mask, training)
        outputs, final_states = self._run(inputs, states, options, training)
        if self.stateful:
            self.states = [s.detach() for s in final_states]
        if self.return_sequences:
            output = outputs
        else:  # the last output is the final h, which is all the fused path returns when it may
            output = final_states[0] if outputs is None else outputs[:, -1]
        if self.return_state:
            return [output, *final_states]
        return output

    def _options(self, inputs, mask, training):
        options = SequenceOptions(
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            mask=_as_mask(mask, inputs, self.name),
            go_backwards=self.go_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
            reset_after=getattr(self, "reset_after", True),
            needs_sequences=self.return_sequences or self.zero_output_for_mask,
            needs_final_cell=self.return_state or self.stateful,
        )
        if training and self.dropout > 0:
            options.input_dropout = self._dropout_mask(inputs.shape[0], inputs.shape[-1], self.dropout, inputs)
        if training and self.recurrent_dropout > 0:
            options.recurrent_dropout = self._dropout_mask(inputs.shape[0], self.units, self.recurrent_dropout,
                                                           inputs)
        return options

    def _dropout_mask(self, batch, width, rate, like):
        """One mask per sequence, reused at every step (Keras's recurrent dropout)."""
        keep = torch.empty(batch, width).bernoulli_(1 - rate, generator=self._generator)
        return (keep / (1 - rate)).to(device=like.device, dtype=like.dtype)

    def fused_unsupported_reason(self, options):
        if self.use_fused is False:
            return "use_fused=False"
        return fused.unsupported_reason(self.kind, options, self.activation_name,
                                        self.recurrent_activation_name)

    def _run(self, inputs, states, options, training):
        reason = self.fused_unsupported_reason(options)
        if reason is not None and self.use_fused is True:
            raise ValueError(f"Layer '{self.name}' cannot use the fused kernel: {reason}.")
        path = "fused" if reason is None else f"reference ({reason})"
        if path != self.execution_path:
            log.debug("%s: %s path", self.name, path)
            self.execution_path = path
        if reason is None:
            return fused.run(self.kind, inputs, states, self._weights(), options, self.activation_name, training,
                             cache=self._fused_cache)
        return SEQUENCE_FUNCTIONS[self.kind](inputs, states, self._weights(), options)

    def _initial_states(self, inputs, initial_state):
        batch = inputs.shape[0]
        if initial_state is not None:
            if isinstance(initial_state, torch.Tensor):
                initial_state = [initial_state]
            initial_state = [torch.as_tensor(s, dtype=inputs.dtype, device=inputs.device) for s in initial_state]
            if len(initial_state) != self.state_count:
                raise ValueError(f"Layer '{self.name}' has {self.state_count} state(s) but got "
                                 f"{len(initial_state)} initial_state tensors.")
            for s in initial_state:
                if tuple(s.shape) != (batch, self.units):
                    raise ValueError(f"Layer '{self.name}': initial_state must have shape "
                                     f"{(batch, self.units)}, got {tuple(s.shape)}.")
            return tuple(initial_state)
        if self.stateful and self.states is not None:
            if self.states[0].shape[0] != batch:
                raise ValueError(
                    f"Stateful layer '{self.name}' holds states for batch size {self.states[0].shape[0]} "
                    f"but got a batch of {batch}: use a fixed batch size or call reset_states()."
                )
            return tuple(self.states)
        zeros = inputs.new_zeros(batch, self.units)
        return tuple(zeros for _ in range(self.state_count))

    def reset_states(self, states=None):
        """Forget (or set) the states a stateful layer carries between batches."""
        self.states = None if states is None else [torch.as_tensor(s, dtype=torch.float32) for s in states]

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def get_config(self):
        config = {**super().get_config(), "units": self.units, "activation": self.activation_name,
                  "use_bias": self.use_bias, "dropout": self.dropout,
                  "recurrent_dropout": self.recurrent_dropout, "return_sequences": self.return_sequences,
                  "return_state": self.return_state, "go_backwards": self.go_backwards,
                  "stateful": self.stateful, "seed": self.seed, "use_fused": self.use_fused}
        for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            if isinstance(getattr(self, key), str):
                config[key] = getattr(self, key)
        return config


class SimpleRNN(RecurrentLayer):
    """Fully-connected RNN: h_t = tanh(x_t Wxh + h_{t-1} Whh + b); 32 units on 32 features
    hold 32*32 + 32*32 + 32 = 2,080 parameters."""

    kind = "simple_rnn"

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, seed=None, use_fused="auto", **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, return_sequences=return_sequences,
                         return_state=return_state, go_backwards=go_backwards, stateful=stateful,
                         unroll=unroll, seed=seed, use_fused=use_fused, **kwargs)


class LSTM(RecurrentLayer):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), gates i, f, c, o as in Keras."""

    kind = "lstm"
    gates = 4
    state_count = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, seed=None, use_fused="auto", **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         dropout=dropout, recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll, seed=seed,
                         use_fused=use_fused, **kwargs)
        self.unit_forget_bias = unit_forget_bias

    def _build_bias(self, device):
        bias = self.add_weight("bias", (4 * self.units,), self.bias_initializer, device=device)
        if self.unit_forget_bias:
            with torch.no_grad():
                bias[self.units: 2 * self.units] = 1.0

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation_name,
                "unit_forget_bias": self.unit_forget_bias}


class GRU(RecurrentLayer):
    """Gated recurrent unit (Cho et al. 2014), gates z, r, h as in Keras; ``reset_after``
    picks the cuDNN-compatible variant (default, bias (2, 3*units)) or the original one."""

    kind = "gru"
    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False, reset_after=True,
                 seed=None, use_fused="auto", **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         dropout=dropout, recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll, seed=seed,
                         use_fused=use_fused, **kwargs)
        self.reset_after = reset_after

    def _build_bias(self, device):
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        self.add_weight("bias", shape, self.bias_initializer, device=device)

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation_name,
                "reset_after": self.reset_after}


def _as_mask(mask, inputs, name):
    if mask is None:
        return None
    mask = torch.as_tensor(mask, device=inputs.device)
    if tuple(mask.shape) != tuple(inputs.shape[:2]):
        raise ValueError(f"Layer '{name}': mask must have shape (batch, time) = {tuple(inputs.shape[:2])}, "
                         f"got {tuple(mask.shape)}.")
    return mask.bool()
