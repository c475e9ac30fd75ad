"""Layer wrappers: Bidirectional and TimeDistributed."""
import torch

from .. import fused, registry
from .layer import Layer
from .recurrent import RNN

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Run a recurrent layer forwards and a copy of it backwards, then merge the outputs.

    Arguments:
        layer: any RNN (SimpleRNN, LSTM, GRU, or ``RNN(cell)`` with any cell). The two
            directions are fresh copies made from its config, as in Keras.
        merge_mode: "concat" (default), "sum", "mul", "ave", or None (both outputs, as a list).
        backward_layer: the reverse direction, when it should differ from a mirrored copy
            (it must process the sequence in the other direction).

    Called with ``initial_state``: the forward layer's states, then the backward layer's.
    With ``return_state`` the output is ``[output(s), *forward_states, *backward_states]``.
    Weights are the forward layer's then the backward layer's, as in Keras. When both
    directions can use the same fused kernel they run as one bidirectional kernel call
    (``execution_path`` says so, or why not).

        y = Bidirectional(LSTM(16, return_sequences=True))(torch.randn(8, 20, 5))   # (8, 20, 32)
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if not isinstance(layer, RNN):
            raise ValueError(f"Bidirectional wraps a recurrent layer (RNN, SimpleRNN, LSTM or GRU), "
                             f"got {type(layer).__name__}.")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}.")
        if "batch_input_shape" not in kwargs and "input_shape" not in kwargs and layer.batch_input_shape:
            kwargs["batch_input_shape"] = layer.batch_input_shape
        super().__init__(**kwargs)
        self.forward_layer = _fresh_copy(layer, name="forward_" + layer.name)
        if backward_layer is None:
            backward_layer = _fresh_copy(layer, name="backward_" + layer.name, go_backwards=not layer.go_backwards)
        _check_directions(self.forward_layer, backward_layer)
        self.backward_layer = backward_layer
        for inner in (self.forward_layer, self.backward_layer):
            inner.zero_output_for_mask = inner.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = layer.stateful
        self.execution_path = None

    def build(self, input_shape):
        self.forward_layer._ensure_built(input_shape, self._device())
        self.backward_layer._ensure_built(input_shape, self._device())

    def forward(self, inputs, mask=None, training=None, initial_state=None):
        fw_layer, bw_layer = self.forward_layer, self.backward_layer
        training = self.training if training is None else training
        fw_states, bw_states = self._split_initial_state(initial_state)
        if not inputs.is_floating_point():
            inputs = inputs.float()
        plan, options = self._joint_plan(inputs, mask, training)
        if plan.fused:
            self.execution_path = f"{plan.path}, both directions in one call"
            fw_out, bw_out, fw_final, bw_final = fused.run(
                plan, inputs, fw_layer._initial_states(inputs, fw_states), fw_layer.cell.recurrence_weights(),
                options, training, cache=fw_layer._fused_cache,
                backward=(bw_layer._initial_states(inputs, bw_states), bw_layer.cell.recurrence_weights(),
                          bw_layer._fused_cache))
            if not self.return_sequences:
                fw_out, bw_out = fw_final[0], bw_final[0]
        else:
            self.execution_path = f"per direction: {plan.reason}"
            fw = fw_layer(inputs, mask=mask, training=training, initial_state=fw_states)
            bw = bw_layer(inputs, mask=mask, training=training, initial_state=bw_states)
            fw_out, fw_final = (fw[0], fw[1:]) if self.return_state else (fw, [])
            bw_out, bw_final = (bw[0], bw[1:]) if self.return_state else (bw, [])
            if self.return_sequences:
                bw_out = bw_out.flip(1)
        output = self._merge(fw_out, bw_out)
        if self.return_state:
            merged = output if isinstance(output, list) else [output]
            return merged + list(fw_final) + list(bw_final)
        return output

    def _split_initial_state(self, initial_state):
        if initial_state is None:
            return None, None
        if isinstance(initial_state, torch.Tensor) or len(initial_state) % 2:
            count = 1 if isinstance(initial_state, torch.Tensor) else len(initial_state)
            raise ValueError(f"Bidirectional '{self.name}' takes initial_state as a list of the forward layer's "
                             f"states followed by the backward layer's (an even number), got {count} tensor(s).")
        half = len(initial_state) // 2
        return list(initial_state[:half]), list(initial_state[half:])

    def _joint_plan(self, inputs, mask, training):
        """(plan, options) for both directions in one bidirectional kernel call. When they cannot
        share one, a reference plan whose reason says why (each direction then plans its own call)."""
        fw_layer, bw_layer = self.forward_layer, self.backward_layer
        reason = self._joint_unsupported_reason(training)
        if reason is not None:
            return fused.reference_plan(reason), None
        fw_layer._check_inputs(inputs)
        options = fw_layer._options(fw_layer.cell, inputs, mask, training)
        options.go_backwards = False  # the kernel runs the reverse direction itself
        options.needs_sequences, options.needs_final_cell = self.return_sequences, self.return_state
        plan = fused.plan(fw_layer.cell, options, inputs, fw_layer.use_fused)
        if plan.fused:
            backward = fused.plan(bw_layer.cell, options, inputs, bw_layer.use_fused)
            if not backward.fused:
                return backward, None
            if backward != plan:
                return fused.reference_plan("the two directions need different kernels"), None
        return plan, options

    def _joint_unsupported_reason(self, training):
        """Why the two directions cannot share one kernel call, before any per-call work."""
        fw_layer, bw_layer = self.forward_layer, self.backward_layer
        if type(fw_layer) is not type(bw_layer) or fw_layer.go_backwards or not bw_layer.go_backwards:
            return "custom backward layer"
        if training and (getattr(fw_layer.cell, "dropout", 0) > 0 or getattr(bw_layer.cell, "dropout", 0) > 0):
            return "input dropout differs per direction in training"
        if fw_layer.stateful:
            return "stateful"
        return None

    def _merge(self, fw, bw):
        if self.merge_mode == "concat":
            return torch.cat([fw, bw], dim=-1)
        if self.merge_mode == "sum":
            return fw + bw
        if self.merge_mode == "mul":
            return fw * bw
        if self.merge_mode == "ave":
            return (fw + bw) / 2
        return [fw, bw]

    def reset_states(self, states=None):
        """Forget (or set: forward states then backward states) the states of a stateful pair."""
        fw_states, bw_states = self._split_initial_state(states)
        self.forward_layer.reset_states(fw_states)
        self.backward_layer.reset_states(bw_states)

    def compute_output_shape(self, input_shape):
        """The merged output's shape (a list of two with merge_mode=None); with ``return_state`` a list
        ``[output(s), *forward_state_shapes, *backward_state_shapes]`` (Keras 3's order)."""
        shape = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            shape, states = shape[0], list(shape[1:])
        if self.merge_mode == "concat":
            outputs = [tuple(shape[:-1]) + (shape[-1] * 2,)]
        elif self.merge_mode is None:
            outputs = [tuple(shape), tuple(shape)]
        else:
            outputs = [tuple(shape)]
        if self.return_state:
            return outputs + states + states
        return outputs if self.merge_mode is None else outputs[0]

    def compute_mask(self, inputs, mask=None):
        """One mask per output: the input's mask for sequence outputs, None for the last step and states."""
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        mask = mask if self.return_sequences else None
        masks = [mask, mask] if self.merge_mode is None else [mask]
        if self.return_state:
            return masks + [None] * (2 * len(self.forward_layer.state_size))
        return masks if self.merge_mode is None else mask

    def get_config(self):
        layer = registry.serialize(self.forward_layer)
        layer["config"]["name"] = self.forward_layer.name[len("forward_"):]
        return {**super().get_config(), "merge_mode": self.merge_mode, "layer": layer,
                "backward_layer": registry.serialize(self.backward_layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layer = registry.deserialize(config.pop("layer"), custom_objects)
        backward = config.pop("backward_layer", None)
        if backward is not None:
            config["backward_layer"] = registry.deserialize(backward, custom_objects)
        return cls(layer, **config)


def _fresh_copy(layer, **overrides):
    """A new, unbuilt layer from ``layer``'s config (no weights, no state), as Keras's Bidirectional
    makes its directions. The classes inside ``layer`` (a user cell) need not be registered."""
    config = {**layer.get_config(), **overrides}
    config.pop("batch_input_shape", None)
    classes = {type(m).__name__: type(m) for m in [layer, layer.cell, *layer.modules()]}
    try:
        return registry.deserialize({"class_name": type(layer).__name__, "config": config}, classes)
    except TypeError as error:
        raise ValueError(f"Bidirectional copies layer '{layer.name}' through get_config() / from_config(), which "
                         f"failed: {error}. A custom cell needs a get_config() that returns its constructor "
                         "arguments.") from error


def _check_directions(forward_layer, backward_layer):
    if not isinstance(backward_layer, RNN):
        raise ValueError(f"backward_layer must be a recurrent layer, got {type(backward_layer).__name__}.")
    if forward_layer.go_backwards == backward_layer.go_backwards:
        raise ValueError("backward_layer must process the sequence in the other direction: set its go_backwards "
                         f"to {not forward_layer.go_backwards}.")
    for attribute in ("return_sequences", "return_state", "stateful"):
        if getattr(forward_layer, attribute) != getattr(backward_layer, attribute):
            raise ValueError(f"The forward and backward layers must agree on {attribute}: got "
                             f"{getattr(forward_layer, attribute)} and {getattr(backward_layer, attribute)}.")


class TimeDistributed(Layer):
    """Apply a layer to every time step: (batch, time, ...) -> (batch, time, ...)."""

    def __init__(self, layer, **kwargs):
        if "batch_input_shape" not in kwargs and "input_shape" not in kwargs and layer.batch_input_shape:
            kwargs["batch_input_shape"] = layer.batch_input_shape
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed '{self.name}' needs input of rank >= 3, got {tuple(input_shape)}.")
        self.layer._ensure_built((None,) + tuple(input_shape[2:]), self._device())

    def forward(self, inputs, mask=None):
        self._check_rank(inputs, (3, 4, 5), "input of rank >= 3 (batch, time, ...)")
        batch, steps = inputs.shape[:2]
        y = self.layer(inputs.reshape(batch * steps, *inputs.shape[2:]))
        return y.reshape(batch, steps, *y.shape[1:])

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def get_config(self):
        return {**super().get_config(), "layer": registry.serialize(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layer = registry.deserialize(config.pop("layer"), custom_objects)
        return cls(layer, **config)
