"""Layer wrappers: Bidirectional and TimeDistributed."""
import torch

from .. import fused
from .layer import Layer
from .recurrent import RecurrentLayer

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Run a recurrent layer forwards and a copy of it backwards, then merge the outputs.

    Weights are the forward layer's then the backward layer's, as in Keras. When both
    directions can use the fused kernel, they run as one bidirectional kernel call.
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if not isinstance(layer, RecurrentLayer):
            raise ValueError(f"Bidirectional wraps a SimpleRNN, LSTM or GRU layer, got {type(layer).__name__}.")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}.")
        if "batch_input_shape" not in kwargs and "input_shape" not in kwargs and layer.batch_input_shape:
            kwargs["batch_input_shape"] = layer.batch_input_shape
        super().__init__(**kwargs)
        config = layer.get_config()
        config.pop("batch_input_shape", None)
        if backward_layer is None:
            backward_layer = type(layer).from_config(
                {**config, "name": "backward_" + layer.name, "go_backwards": not layer.go_backwards})
        self.forward_layer = type(layer).from_config({**config, "name": "forward_" + layer.name})
        self.backward_layer = backward_layer
        for inner in (self.forward_layer, self.backward_layer):
            inner.zero_output_for_mask = inner.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.execution_path = None

    def build(self, input_shape):
        self.forward_layer._ensure_built(input_shape, self._device())
        self.backward_layer._ensure_built(input_shape, self._device())

    def forward(self, inputs, mask=None, training=None, initial_state=None):
        fw_layer, bw_layer = self.forward_layer, self.backward_layer
        training = self.training if training is None else training
        fw_states = bw_states = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fw_states, bw_states = list(initial_state[:half]), list(initial_state[half:])
        if not inputs.is_floating_point():
            inputs = inputs.float()
        reason = self._joint_unsupported_reason(training)
        if reason is None:
            options = fw_layer._options(inputs, mask, training)
            options.go_backwards = False
            reason = fw_layer.fused_unsupported_reason(options) or bw_layer.fused_unsupported_reason(options)
        if reason is None:
            self.execution_path = "fused (one bidirectional kernel call)"
            fw_out, bw_out, fw_final, bw_final = self._run_joint(inputs, options, mask, fw_states, bw_states,
                                                                 training)
        else:
            self.execution_path = f"per direction ({reason})"
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

    def _joint_unsupported_reason(self, training):
        """Why the two directions cannot share one kernel call, before any per-call work."""
        fw_layer, bw_layer = self.forward_layer, self.backward_layer
        if type(fw_layer) is not type(bw_layer) or fw_layer.go_backwards or not bw_layer.go_backwards:
            return "custom backward layer"
        if training and (fw_layer.dropout > 0 or bw_layer.dropout > 0):
            return "input dropout differs per direction in training"
        if fw_layer.stateful:
            return "stateful"
        return None

    def _run_joint(self, inputs, options, mask, fw_states, bw_states, training):
        fw_layer, bw_layer = self.forward_layer, self.backward_layer
        options.needs_sequences = self.return_sequences
        options.needs_final_cell = self.return_state
        fw_states = fw_layer._initial_states(inputs, fw_states)
        bw_states = bw_layer._initial_states(inputs, bw_states)
        fw_out, bw_out, fw_final, bw_final = fused.run(
            fw_layer.kind, inputs, fw_states, fw_layer._weights(), options, fw_layer.activation_name,
            training, backward=(bw_states, bw_layer._weights(), bw_layer._fused_cache), cache=fw_layer._fused_cache)
        if not self.return_sequences:
            fw_out = fw_final[0]
            bw_out = bw_final[0]
        return fw_out, bw_out, fw_final, bw_final

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

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            return tuple(shape[:-1]) + (shape[-1] * 2,)
        return shape

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def get_config(self):
        return {**super().get_config(), "merge_mode": self.merge_mode,
                "layer": {"class_name": type(self.forward_layer).__name__,
                          "config": {**self.forward_layer.get_config(),
                                     "name": self.forward_layer.name[len("forward_"):]}}}

    @classmethod
    def from_config(cls, config):
        from . import deserialize

        config = dict(config)
        layer = deserialize(config.pop("layer"))
        return cls(layer, **config)


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
        return {**super().get_config(),
                "layer": {"class_name": type(self.layer).__name__, "config": self.layer.get_config()}}

    @classmethod
    def from_config(cls, config):
        from . import deserialize

        config = dict(config)
        layer = deserialize(config.pop("layer"))
        return cls(layer, **config)
