"""Keras-compatible loss functions and classes on PyTorch tensors.

The functions (``mean_squared_error`` ...) return one loss per sample (the
last axis reduced, as in Keras); the classes apply Keras's reduction on top,
by default ``"sum_over_batch_size"``: the mean over every remaining element,
i.e. over all samples and time steps. Probabilities are clipped to
``[EPSILON, 1 - EPSILON]`` exactly as Keras's torch backend does, and
``from_logits=True`` uses torch's numerically stable kernels.
"""

import torch

from . import registry
import torch.nn.functional as F

from ._naming import unknown_name_error

EPSILON = 1e-7
"""Keras's ``backend.epsilon()``: the probability clipping bound."""

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)




def _as_tensor(x, like=None, dtype=None):
    """Convert array-likes to a tensor on ``like``'s device (no copy when possible)."""
    device = like.device if like is not None else None
    if isinstance(x, torch.Tensor):
        return x.to(device=device or x.device, dtype=dtype or x.dtype)
    return torch.as_tensor(x, device=device, dtype=dtype)


def _float_pair(y_true, y_pred):
    """Return ``(y_true, y_pred)`` as float tensors, ``y_true`` in ``y_pred``'s dtype."""
    y_pred = _as_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(torch.get_default_dtype())
    return _as_tensor(y_true, like=y_pred, dtype=y_pred.dtype), y_pred


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Make ranks equal when they differ by a trailing axis of size 1 (Keras's rule).

    This is what lets ``y_true`` of shape ``(N,)`` meet ``y_pred`` of shape
    ``(N, 1)`` as ``(N, 1)`` instead of broadcasting to ``(N, N)``.
    """
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2.unsqueeze(-1)
        else:
            x1 = x1.squeeze(-1)
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1.unsqueeze(-1)
        else:
            x2 = x2.squeeze(-1)
    return x1, x2


def _aligned(y_true, y_pred):
    """Float, rank-aligned, same-shape ``(y_true, y_pred)`` with at least 2 dims.

    Unlike Keras, a remaining shape mismatch raises instead of broadcasting,
    because broadcasting targets against predictions is almost always a bug.
    """
    y_true, y_pred = _float_pair(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred shapes are incompatible: y_true.shape={tuple(y_true.shape)}, "
            f"y_pred.shape={tuple(y_pred.shape)}."
        )
    if y_pred.ndim < 2:
        y_true, y_pred = y_true.reshape(-1, 1), y_pred.reshape(-1, 1)
    return y_true, y_pred


def mean_squared_error(y_true, y_pred):
    """Per-sample mean of squared errors over the last axis."""
    y_true, y_pred = _aligned(y_true, y_pred)
    return torch.mean(torch.square(y_true - y_pred), dim=-1)


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean of absolute errors over the last axis."""
    y_true, y_pred = _aligned(y_true, y_pred)
    return torch.mean(torch.abs(y_true - y_pred), dim=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample binary cross-entropy, averaged over ``axis``."""
    y_true, y_pred = _aligned(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        bce = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    else:
        p = torch.clamp(y_pred, EPSILON, 1.0 - EPSILON)
        bce = -(y_true * torch.log(p) + (1.0 - y_true) * torch.log1p(-p))
    return torch.mean(bce, dim=axis)


def _class_log_probs(y_pred, from_logits):
    """Log-probabilities along the last axis, Keras-style for probability inputs."""
    if from_logits:
        return F.log_softmax(y_pred, dim=-1)
    p = y_pred / torch.sum(y_pred, dim=-1, keepdim=True)
    return torch.log(torch.clamp(p, EPSILON, 1.0 - EPSILON))


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample cross-entropy against one-hot (or soft) targets along ``axis``."""
    y_true, y_pred = _float_pair(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "categorical_crossentropy needs y_true and y_pred of the same shape (one-hot "
            f"targets); received y_true.shape={tuple(y_true.shape)}, "
            f"y_pred.shape={tuple(y_pred.shape)}. For integer labels use "
            "sparse_categorical_crossentropy."
        )
    y_true, y_pred = y_true.movedim(axis, -1), y_pred.movedim(axis, -1)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_pred.shape[-1]
    if from_logits:
        n_classes = y_pred.shape[-1]
        ce = F.cross_entropy(
            y_pred.reshape(-1, n_classes), y_true.reshape(-1, n_classes), reduction="none"
        )
        return ce.reshape(y_pred.shape[:-1])
    return -torch.sum(y_true * _class_log_probs(y_pred, False), dim=-1)


def _sparse_labels(y_true, y_pred):
    """Integer labels shaped like ``y_pred.shape[:-1]`` (drops a trailing size-1 axis)."""
    y_true = _as_tensor(y_true, like=y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(
            "Sparse labels must have shape y_pred.shape[:-1] (optionally with a trailing "
            f"axis of size 1); received y_true.shape={tuple(y_true.shape)}, "
            f"y_pred.shape={tuple(y_pred.shape)}."
        )
    return y_true.long()


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-sample cross-entropy against integer class labels (int or float dtype)."""
    y_pred = _as_tensor(y_pred)
    labels = _sparse_labels(y_true, y_pred)
    if from_logits:
        n_classes = y_pred.shape[-1]
        ce = F.cross_entropy(y_pred.reshape(-1, n_classes), labels.reshape(-1), reduction="none")
        return ce.reshape(labels.shape)
    log_p = _class_log_probs(y_pred, False)
    return -torch.gather(log_p, -1, labels.unsqueeze(-1)).squeeze(-1)


def _align_weight(sample_weight, values):
    """Shape ``sample_weight`` to broadcast over per-sample ``values`` from the left."""
    w = _as_tensor(sample_weight, like=values, dtype=values.dtype)
    while w.ndim > values.ndim and w.shape[-1] == 1:
        w = w.squeeze(-1)
    if w.ndim > values.ndim:
        raise ValueError(
            f"sample_weight of shape {tuple(w.shape)} has more dimensions than the "
            f"per-sample losses of shape {tuple(values.shape)}."
        )
    if w.ndim > 0:
        w = w.reshape(tuple(w.shape) + (1,) * (values.ndim - w.ndim))
    return w


def reduce_values(values, sample_weight=None, reduction="sum_over_batch_size"):
    """Apply ``sample_weight`` then Keras's ``reduction`` to per-sample losses."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"Invalid reduction {reduction!r}; expected one of {REDUCTIONS}.")
    weights = None
    if sample_weight is not None:
        weights = _align_weight(sample_weight, values)
        values = values * weights
    if reduction in (None, "none"):
        return values
    if weights is None and reduction == "sum_over_batch_size" and values.numel():
        return values.mean()
    total = torch.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and weights is not None:
        divisor = torch.sum(torch.broadcast_to(weights, values.shape))
    else:
        divisor = torch.tensor(values.numel(), dtype=total.dtype, device=total.device)
    return torch.where(divisor != 0, total / divisor, torch.zeros_like(total))


def mask_weights(mask, reduction, dtype=torch.float32):
    """Sample weights from an output mask, as Keras applies a ``mask_zero`` mask to the loss:
    padded positions weigh 0 and, for a mean, real ones ``total / valid``, so the mean is
    taken over the real positions only."""
    weights = mask.to(dtype)
    if reduction in ("sum_over_batch_size", "mean"):
        weights = weights * (weights.numel() / (weights.sum() + 1e-7))
    return weights


class Loss(registry.Configurable):
    """Base class: ``loss(y_true, y_pred, sample_weight=None)`` returns the reduced loss."""

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if reduction not in REDUCTIONS:
            raise ValueError(f"Invalid reduction {reduction!r}; expected one of {REDUCTIONS}.")
        self.name = name or type(self).__name__
        self.reduction = reduction

    def __call__(self, y_true, y_pred, sample_weight=None):
        return reduce_values(self.call(y_true, y_pred), sample_weight, self.reduction)

    def call(self, y_true, y_pred):
        """Return per-sample losses; subclasses implement this."""
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}



class LossFunctionWrapper(Loss):
    """Turn a per-sample function ``fn(y_true, y_pred, **kwargs)`` into a :class:`Loss`."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", None), reduction=reduction)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(self._fn_kwargs)
        if type(self) is LossFunctionWrapper:
            config["fn"] = getattr(self.fn, "__name__", repr(self.fn))
        return config

    @classmethod
    def from_config(cls, config):
        if cls is LossFunctionWrapper:
            config = dict(config)
            fn_name = config.pop("fn")
            if fn_name not in _FUNCTIONS:
                raise ValueError(
                    f"Cannot restore the custom loss function {fn_name!r}: pass it via "
                    "custom_objects={name: function}."
                )
            return cls(_FUNCTIONS[fn_name], **config)
        return cls(**config)


class MeanSquaredError(LossFunctionWrapper):
    """Mean of squared errors."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(mean_squared_error, reduction=reduction, name=name)


class MeanAbsoluteError(LossFunctionWrapper):
    """Mean of absolute errors."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error"):
        super().__init__(mean_absolute_error, reduction=reduction, name=name)


class BinaryCrossentropy(LossFunctionWrapper):
    """Binary cross-entropy for 0/1 targets against probabilities or logits."""

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="binary_crossentropy",
    ):
        super().__init__(
            binary_crossentropy,
            reduction=reduction,
            name=name,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


class CategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy for one-hot targets against probabilities or logits."""

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
    ):
        super().__init__(
            categorical_crossentropy,
            reduction=reduction,
            name=name,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy for integer labels against probabilities or logits."""

    def __init__(
        self,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy",
    ):
        super().__init__(
            sparse_categorical_crossentropy,
            reduction=reduction,
            name=name,
            from_logits=from_logits,
        )
        self.from_logits = from_logits


_FUNCTIONS = {
    "mean_squared_error": mean_squared_error,
    "mean_absolute_error": mean_absolute_error,
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
}

_CLASSES = {
    cls.__name__: cls
    for cls in (
        MeanSquaredError,
        MeanAbsoluteError,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
    )
}

_NAMES = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    **_CLASSES,
}


def serialize(loss):
    """Return a JSON-able ``{"class_name", "config"}`` dict that :func:`deserialize` restores."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config, custom_objects=None):
    """Rebuild a loss from :func:`serialize` output, a bare ``get_config()`` dict, or a name.

    A bare config is matched to its class by its ``"name"`` entry, which only
    works for the default names; prefer :func:`serialize` for storage.
    """
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        return get(config)
    if "class_name" in config:
        class_name, inner = config["class_name"], config.get("config", {})
    elif "fn" in config:
        class_name, inner = "LossFunctionWrapper", config
    else:
        class_name, inner = config.get("name"), config
    if class_name in custom_objects:
        obj = custom_objects[class_name]
        return obj.from_config(inner) if isinstance(obj, type) else LossFunctionWrapper(
            obj, **{k: v for k, v in inner.items() if k != "fn"}
        )
    if class_name == "LossFunctionWrapper":
        fn_name = inner.get("fn")
        if fn_name in custom_objects:
            rest = {k: v for k, v in inner.items() if k != "fn"}
            return LossFunctionWrapper(custom_objects[fn_name], **rest)
        return LossFunctionWrapper.from_config(inner)
    if class_name not in _NAMES:
        raise unknown_name_error("loss", class_name, _NAMES)
    return _NAMES[class_name].from_config(inner)


def get(identifier):
    """Resolve a loss name, :class:`Loss` instance, config dict or callable to a :class:`Loss`.

    Plain callables must return per-sample (or already reduced) losses and are
    wrapped in :class:`LossFunctionWrapper`; ``None`` returns ``None``.
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _NAMES:
            raise unknown_name_error("loss", identifier, _NAMES)
        return _NAMES[identifier]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}")
