"""LayerNormalization and BatchNormalization with Keras 3's arguments, weights and arithmetic."""
import torch
import torch.nn.functional as F

from .layer import Layer, check_flags


def _axes_list(axis, what):
    if isinstance(axis, bool):
        raise ValueError(f"{what}: axis must be an int or a list of ints, got {axis!r}.")
    if isinstance(axis, int):
        return axis
    if isinstance(axis, (list, tuple)) and axis and all(isinstance(a, int) and not isinstance(a, bool)
                                                        for a in axis):
        return list(axis)
    raise ValueError(f"{what}: axis must be an int or a list of ints, got {axis!r}.")


class LayerNormalization(Layer):
    """Normalise each sample over ``axis`` to mean 0 and variance 1, then ``* gamma + beta``.

    Arguments:
        axis: the axis (or list of axes) to normalise over; default -1, the features.
        epsilon: added to the variance (default 1e-3, as Keras).
        center: learn an offset ``beta``.
        scale: learn a factor ``gamma``.
        beta_initializer, gamma_initializer: initialisers (default zeros / ones).

    ``LayerNormalization()``  # after an LSTM with return_sequences=True
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.axis = _axes_list(axis, "LayerNormalization")
        self.epsilon = float(epsilon)
        self.center, self.scale = check_flags(type(self).__name__, center=center, scale=scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer

    def _resolve_axes(self, rank):
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        for a in axes:
            if not -rank <= a < rank:
                raise ValueError(f"Layer '{self.name}' (LayerNormalization): axis {a} is out of range for "
                                 f"inputs of rank {rank} (axis={self.axis}).")
        return sorted({a % rank for a in axes})

    def build(self, input_shape):
        axes = self._resolve_axes(len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if None in shape:
            raise ValueError(f"Layer '{self.name}' (LayerNormalization) needs known sizes on axis {self.axis}, "
                             f"got input shape {tuple(input_shape)}.")
        if self.scale:
            self.add_weight("gamma", shape, self.gamma_initializer, device=self._device())
        if self.center:
            self.add_weight("beta", shape, self.beta_initializer, device=self._device())

    def forward(self, inputs, mask=None):
        rank = inputs.dim()
        axes = self._resolve_axes(rank)
        gamma = self.gamma if self.scale else None
        beta = self.beta if self.center else None
        dims = tuple(inputs.shape[a] for a in axes)
        expected = tuple((self.gamma if self.scale else self.beta).shape) if (self.scale or self.center) else dims
        if dims != expected:
            raise ValueError(f"Layer '{self.name}' (LayerNormalization) was built for sizes {expected} on axis "
                             f"{self.axis}, but got an input of shape {tuple(inputs.shape)}.")
        x = inputs if inputs.dtype in (torch.float32, torch.float64) else inputs.float()
        if axes == list(range(rank - len(axes), rank)):  # trailing axes: torch's kernel, as Keras on torch
            out = F.layer_norm(x, dims, gamma, beta, self.epsilon)
        else:
            # Keras's generic formula (its torch kernel path covers trailing axes only)
            mean = x.mean(dim=axes, keepdim=True)
            variance = x.square().mean(dim=axes, keepdim=True) - mean.square()
            shape = [1] * rank
            for a in axes:
                shape[a] = inputs.shape[a]
            inv = torch.rsqrt(variance + self.epsilon)
            if gamma is not None:
                inv = inv * gamma.reshape(shape)
            res = -mean * inv
            if beta is not None:
                res = res + beta.reshape(shape)
            out = x * inv + res
        return out.to(inputs.dtype) if inputs.is_floating_point() else out

    def compute_output_shape(self, input_shape):
        self._resolve_axes(len(input_shape))
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "beta_initializer": self.beta_initializer,
                "gamma_initializer": self.gamma_initializer}


class BatchNormalization(Layer):
    """Normalise features with batch statistics in training and moving averages of them otherwise.

    In training (``training=True`` and the layer trainable) the output uses the batch's mean and
    (biased) variance over every axis but ``axis`` -- steps where the mask is False left out -- and
    ``moving = moving * momentum + batch * (1 - momentum)``; in inference it uses the moving
    statistics. Weights, in Keras's order: gamma, beta, moving_mean, moving_variance (the last two
    non-trainable).

    Arguments:
        axis: the features axis (default -1).
        momentum: of the moving averages (default 0.99).
        epsilon: added to the variance (default 1e-3).
        center, scale: learn ``beta`` / ``gamma``.
        beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer:
            initialisers (default zeros, ones, zeros, ones).

    ``BatchNormalization()``
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"BatchNormalization: axis must be an int, got {axis!r}.")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center, self.scale = check_flags(type(self).__name__, center=center, scale=scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer

    def _check_axis(self, rank):
        if not -rank <= self.axis < rank:
            raise ValueError(f"Layer '{self.name}' (BatchNormalization): axis {self.axis} is out of range for "
                             f"inputs of rank {rank}.")
        return self.axis % rank

    def build(self, input_shape):
        axis = self._check_axis(len(input_shape))
        if input_shape[axis] is None:
            raise ValueError(f"Layer '{self.name}' (BatchNormalization) needs a known size on axis {self.axis}, "
                             f"got input shape {tuple(input_shape)}.")
        shape = (input_shape[axis],)
        self._input_dim = input_shape[axis]
        device = self._device()
        if self.scale:
            self.add_weight("gamma", shape, self.gamma_initializer, device=device)
        if self.center:
            self.add_weight("beta", shape, self.beta_initializer, device=device)
        self.add_weight("moving_mean", shape, self.moving_mean_initializer, trainable=False, device=device)
        self.add_weight("moving_variance", shape, self.moving_variance_initializer, trainable=False, device=device)

    def _moments(self, x, axis, mask):
        dims = [d for d in range(x.dim()) if d != axis]
        if mask is None:
            mean = x.mean(dim=dims, keepdim=True)
            variance = x.square().mean(dim=dims, keepdim=True) - mean.square()
        else:
            keep = mask.unsqueeze(-1).expand(x.shape)
            zero = torch.zeros((), dtype=x.dtype, device=x.device)
            count = keep.to(x.dtype).sum(dim=dims, keepdim=True) + 1e-7
            mean = torch.where(keep, x, zero).sum(dim=dims, keepdim=True) / count
            variance = torch.where(keep, x - mean, zero).square().sum(dim=dims, keepdim=True) / count
        return mean.reshape(-1), variance.reshape(-1)

    def forward(self, inputs, mask=None, training=None):
        axis = self._check_axis(inputs.dim())
        if inputs.shape[axis] != self._input_dim:
            raise ValueError(f"Layer '{self.name}' (BatchNormalization) was built for {self._input_dim} features "
                             f"on axis {self.axis}, but got an input of shape {tuple(inputs.shape)}.")
        if mask is not None:
            mask = torch.as_tensor(mask, device=inputs.device).bool()
            if tuple(mask.shape) != tuple(inputs.shape[:-1]):
                raise ValueError(f"Layer '{self.name}' (BatchNormalization): the mask must have the inputs' shape "
                                 f"without the last axis; got mask shape {tuple(mask.shape)} for inputs of shape "
                                 f"{tuple(inputs.shape)}.")
        training = self.training if training is None else training
        x = inputs if inputs.dtype in (torch.float32, torch.float64) else inputs.float()
        if training and self.trainable:
            mean, variance = self._moments(x, axis, mask)
            with torch.no_grad():
                self.moving_mean.copy_(self.moving_mean * self.momentum + mean.detach() * (1.0 - self.momentum))
                self.moving_variance.copy_(self.moving_variance * self.momentum
                                           + variance.detach() * (1.0 - self.momentum))
        else:
            mean, variance = self.moving_mean.to(x.dtype), self.moving_variance.to(x.dtype)
        shape = [1] * x.dim()
        shape[axis] = x.shape[axis]
        factor = torch.rsqrt(variance.reshape(shape) + self.epsilon)
        if self.scale:
            factor = factor * self.gamma.to(x.dtype).reshape(shape)
        out = (x - mean.reshape(shape)) * factor
        if self.center:
            out = out + self.beta.to(x.dtype).reshape(shape)
        return out.to(inputs.dtype) if inputs.is_floating_point() else out

    def compute_output_shape(self, input_shape):
        self._check_axis(len(input_shape))
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "beta_initializer": self.beta_initializer,
                "gamma_initializer": self.gamma_initializer,
                "moving_mean_initializer": self.moving_mean_initializer,
                "moving_variance_initializer": self.moving_variance_initializer}
