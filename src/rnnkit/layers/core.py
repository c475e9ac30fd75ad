"""Non-recurrent layers: Embedding, Dense, Dropout, SpatialDropout1D, Activation, Flatten, RepeatVector,
Conv1D, pooling."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from .. import activations, constraints, regularizers
from .layer import Layer, check_flags, check_int


_PENALTIES = ("kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint")


def _set_penalties(layer, kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint):
    layer.kernel_regularizer = regularizers.get(kernel_regularizer)
    layer.bias_regularizer = regularizers.get(bias_regularizer)
    layer.kernel_constraint = constraints.get(kernel_constraint)
    layer.bias_constraint = constraints.get(bias_constraint)


def _penalty_config(layer, *names):
    """The regularizers and constraints that are set, serialized (unset ones stay out of the config)."""
    config = {}
    for name in names:
        value = getattr(layer, name)
        if value is not None:
            module = regularizers if name.endswith("regularizer") else constraints
            config[name] = module.serialize(value)
    return config


class Embedding(Layer):
    """Integer tokens (batch, time) -> vectors (batch, time, output_dim); index 0 can mean padding."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", mask_zero=False,
                 input_length=None, embeddings_regularizer=None, embeddings_constraint=None, **kwargs):
        if input_length is not None and "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        super().__init__(**kwargs)
        self.input_dim = check_int("Embedding", "input_dim", input_dim)
        self.output_dim = check_int("Embedding", "output_dim", output_dim)
        self.embeddings_initializer = embeddings_initializer
        self.mask_zero, = check_flags("Embedding", mask_zero=mask_zero)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)

    def build(self, input_shape):
        self.add_weight("embeddings", (self.input_dim, self.output_dim), self.embeddings_initializer,
                        device=self._device(), regularizer=self.embeddings_regularizer,
                        constraint=self.embeddings_constraint)

    def forward(self, inputs):
        if inputs.is_floating_point():
            inputs = inputs.long()
        low, high = torch.aminmax(inputs) if inputs.numel() else (0, 0)
        if int(low) < 0 or int(high) >= self.input_dim:
            raise ValueError(
                f"Layer '{self.name}' got token ids in [{int(low)}, {int(high)}], "
                f"but input_dim={self.input_dim} allows only 0..{self.input_dim - 1}."
            )
        return F.embedding(inputs, self.embeddings)

    def compute_mask(self, inputs, mask=None):
        return inputs != 0 if self.mask_zero else None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "mask_zero": self.mask_zero,
                **_penalty_config(self, "embeddings_regularizer", "embeddings_constraint")}


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` on the last axis; kernel is (in, units) as in Keras."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        _set_penalties(self, kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint)
        self.units = check_int("Dense", "units", units)
        self.activation_name, self.activation = activations.get(activation)
        self.use_bias, = check_flags("Dense", use_bias=use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"Layer '{self.name}' needs a known last input dimension, got {input_shape}.")
        self._input_dim = input_shape[-1]
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer, device=self._device(),
                        regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, device=self._device(),
                            regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def forward(self, inputs):
        self._check_features(inputs, self._input_dim)
        return self.activation(F.linear(inputs, self.kernel.t(), self.bias if self.use_bias else None))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation_name,
                "use_bias": self.use_bias, **_penalty_config(self, *_PENALTIES)}


class Dropout(Layer):
    """Zero a fraction ``rate`` of inputs during training, scaling the rest by 1/(1-rate)."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be a number in [0, 1), got {rate!r:.60}.")
        self.rate, self.noise_shape, self.seed = float(rate), noise_shape, seed

    def forward(self, inputs, training=None):
        training = self.training if training is None else training
        if not training or self.rate == 0:
            return inputs
        if self.noise_shape is None:
            return F.dropout(inputs, self.rate, training=True)
        shape = [s if s is not None else d for s, d in zip(self.noise_shape, inputs.shape)]
        keep = torch.empty(shape, device=inputs.device).bernoulli_(1 - self.rate) / (1 - self.rate)
        return inputs * keep

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


class SpatialDropout1D(Dropout):
    """Dropout of whole feature channels: for each sample one keep/drop draw per feature, shared by
    every time step (Keras's ``noise_shape=(batch, 1, features)``). Input (batch, time, features)."""

    def __init__(self, rate, seed=None, **kwargs):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, seed=seed, **kwargs)

    def forward(self, inputs, training=None):
        training = self.training if training is None else training
        if not training or self.rate == 0:
            return inputs
        self._check_rank(inputs, (3,), "a 3-D input (batch, time, features)")
        keep = torch.empty((inputs.shape[0], 1, inputs.shape[2]), device=inputs.device, dtype=inputs.dtype)
        return inputs * (keep.bernoulli_(1 - self.rate) / (1 - self.rate))

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape", None)
        return config


class Activation(Layer):
    """Apply a named activation."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation_name, self.activation = activations.get(activation)

    def forward(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation_name}


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1*d2*...)."""

    def forward(self, inputs):
        return inputs.reshape(inputs.shape[0], -1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features): feeds one vector to every decoder step."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = check_int("RepeatVector", "n", n)

    def forward(self, inputs):
        self._check_rank(inputs, (2,), "a 2-D input (batch, features)")
        return inputs.unsqueeze(1).expand(-1, self.n, -1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Conv1D(Layer):
    """1-D convolution over time; kernel is (kernel_size, in, filters) as in Keras."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        _set_penalties(self, kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint)
        if padding not in ("valid", "same", "causal"):
            raise ValueError(f"Conv1D padding must be 'valid', 'same' or 'causal', got {padding!r}.")
        self.filters = check_int("Conv1D", "filters", filters)
        self.kernel_size = int(kernel_size[0] if isinstance(kernel_size, (tuple, list)) else kernel_size)
        self.strides = int(strides[0] if isinstance(strides, (tuple, list)) else strides)
        self.padding = padding
        self.dilation_rate = int(dilation_rate[0] if isinstance(dilation_rate, (tuple, list)) else dilation_rate)
        self.activation_name, self.activation = activations.get(activation)
        self.use_bias, = check_flags("Conv1D", use_bias=use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer

    def build(self, input_shape):
        self._input_dim = input_shape[-1]
        self.add_weight("kernel", (self.kernel_size, input_shape[-1], self.filters), self.kernel_initializer,
                        device=self._device(), regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, device=self._device(),
                            regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def forward(self, inputs):
        self._check_rank(inputs, (3,), "a 3-D input (batch, time, features)")
        self._check_features(inputs, self._input_dim)
        x = inputs.transpose(1, 2)
        span = self.dilation_rate * (self.kernel_size - 1)
        if self.padding == "causal":
            x = F.pad(x, (span, 0))
        elif self.padding == "same":
            x = F.pad(x, (span // 2, span - span // 2))
        y = F.conv1d(x, self.kernel.permute(2, 1, 0), self.bias if self.use_bias else None,
                     stride=self.strides, dilation=self.dilation_rate)
        return self.activation(y.transpose(1, 2))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        steps = input_shape[1]
        if steps is not None:
            if self.padding == "valid":
                steps -= self.dilation_rate * (self.kernel_size - 1)
            steps = (steps + self.strides - 1) // self.strides
        return (input_shape[0], steps, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "dilation_rate": self.dilation_rate,
                "activation": self.activation_name, "use_bias": self.use_bias, **_penalty_config(self, *_PENALTIES)}


class MaxPooling1D(Layer):
    """Max over windows of ``pool_size`` time steps."""

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)
        self.strides = int(strides or pool_size)
        self.padding = padding

    def forward(self, inputs):
        x = inputs.transpose(1, 2)
        if self.padding == "same":
            return F.max_pool1d(x, self.pool_size, self.strides, ceil_mode=True).transpose(1, 2)
        return F.max_pool1d(x, self.pool_size, self.strides).transpose(1, 2)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        steps = input_shape[1]
        if steps is not None:
            steps = (steps - self.pool_size) // self.strides + 1
        return (input_shape[0], steps, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


class _GlobalPooling1D(Layer):
    """What the two global 1-D poolings share: ``data_format``, ``keepdims``, shapes, config."""

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        data_format = "channels_last" if data_format is None else str(data_format).lower()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"{type(self).__name__}: data_format must be 'channels_last' or 'channels_first', "
                             f"got {data_format!r}.")
        self.data_format = data_format
        self.keepdims = bool(keepdims)

    @property
    def _steps_axis(self):
        return 1 if self.data_format == "channels_last" else 2

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Layer '{self.name}' expects a 3-D input (batch, time, features), "
                             f"got shape {tuple(input_shape)}.")
        channels = input_shape[2] if self.data_format == "channels_last" else input_shape[1]
        if not self.keepdims:
            return (input_shape[0], channels)
        if self.data_format == "channels_last":
            return (input_shape[0], 1, channels)
        return (input_shape[0], channels, 1)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over time: (batch, time, features) -> (batch, features), or (batch, 1, features) with
    ``keepdims=True``. With a mask the mean runs over the unmasked steps only, as in Keras 3; a
    sample whose steps are all masked gets zeros (Keras 3 gives NaN, 0 / 0, which would turn the
    loss of the whole batch into NaN for one empty text).

    Arguments:
        data_format: "channels_last" (default, time on axis 1) or "channels_first" (time on axis 2).
        keepdims: keep the time axis with length 1.

    ``GlobalAveragePooling1D()``
    """

    def forward(self, inputs, mask=None):
        self._check_rank(inputs, (3,), "a 3-D input (batch, time, features)")
        axis = self._steps_axis
        if mask is None:
            return inputs.mean(dim=axis, keepdim=self.keepdims)
        keep = torch.as_tensor(mask, device=inputs.device).bool().unsqueeze(2 if axis == 1 else 1)
        summed = torch.where(keep, inputs, torch.zeros((), dtype=inputs.dtype, device=inputs.device))
        count = keep.to(inputs.dtype).sum(dim=axis, keepdim=self.keepdims)
        # Keras divides by the count as it is and gives NaN for a sample with no unmasked step (an
        # empty text), which then poisons the loss of its whole batch; rnnkit gives zeros there.
        return summed.sum(dim=axis, keepdim=self.keepdims) / count.clamp_min(1.0)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over time: (batch, time, features) -> (batch, features), or (batch, 1, features) with
    ``keepdims=True``. As in Keras 3.15 this layer takes no mask: padded steps count in the max
    (Keras's GlobalMaxPooling1D has no mask argument), and the mask stops here.

    Arguments:
        data_format: "channels_last" (default, time on axis 1) or "channels_first" (time on axis 2).
        keepdims: keep the time axis with length 1.

    ``GlobalMaxPooling1D()``
    """

    def forward(self, inputs):
        self._check_rank(inputs, (3,), "a 3-D input (batch, time, features)")
        return inputs.amax(dim=self._steps_axis, keepdim=self.keepdims)
