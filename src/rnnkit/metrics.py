"""Stateful Keras-compatible metrics on PyTorch tensors.

Every metric keeps a sample-weighted running mean over all samples seen
since the last ``reset_state()``: each sample contributes the mean of its
elementwise values (over time steps and features), so ``result()`` is the
exact epoch mean even when the last batch is smaller. Accumulators stay on
the input's device; only ``result()`` synchronises.
"""

import torch

from . import losses as _losses
from ._naming import unknown_name_error
from .losses import _as_tensor, squeeze_or_expand_to_same_rank


def _accumulator_dtype(device):
    return torch.float32 if device.type == "mps" else torch.float64


class Metric:
    """Base class: ``update_state(...)``, ``result() -> float``, ``reset_state()``."""

    def __init__(self, name=None):
        self.name = name or type(self).__name__

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        """Update the state and return the new result, as Keras metrics do."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class Mean(Metric):
    """Weighted running mean of values, e.g. the loss.

    For the epoch loss call ``update_state(batch_loss, sample_weight=batch_size)``
    so that a smaller last batch counts in proportion to its size.
    """

    def __init__(self, name="mean"):
        super().__init__(name=name)
        self.reset_state()

    def reset_state(self):
        self._total = None
        self._count = None

    @torch.no_grad()
    def update_state(self, values, sample_weight=None):
        values = _as_tensor(values).detach()
        if not values.is_floating_point():
            values = values.to(torch.get_default_dtype())
        if values.ndim == 0:
            values = values.reshape(1)
        if sample_weight is None:
            weights = torch.ones((), dtype=values.dtype, device=values.device)
        else:
            weights = _as_tensor(sample_weight, like=values, dtype=values.dtype).detach()
            while weights.ndim > values.ndim and weights.shape[-1] == 1:
                weights = weights.squeeze(-1)
            if weights.ndim > values.ndim:
                raise ValueError(
                    f"sample_weight of shape {tuple(weights.shape)} does not fit values of "
                    f"shape {tuple(values.shape)}."
                )
            weights = weights.reshape(tuple(weights.shape) + (1,) * (values.ndim - weights.ndim))
        dtype = _accumulator_dtype(values.device)
        values, weights = torch.broadcast_tensors(values.to(dtype), weights.to(dtype))
        if values.numel() == 0:
            return
        n = values.shape[0]
        total = (values * weights).reshape(n, -1).mean(dim=1).sum()
        count = weights.reshape(n, -1).mean(dim=1).sum()
        if self._total is None:
            self._total, self._count = total, count
        else:
            self._total = self._total + total
            self._count = self._count + count

    def result(self):
        if self._count is None:
            return 0.0
        count = float(self._count)
        return float(self._total) / count if count != 0 else 0.0


class MeanMetricWrapper(Mean):
    """Running mean of ``fn(y_true, y_pred, **kwargs)`` (elementwise or per-sample values)."""

    def __init__(self, fn, name=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "mean_metric_wrapper"))
        self._fn = fn
        self._fn_kwargs = kwargs

    @torch.no_grad()
    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(self._fn_kwargs)
        return config


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Elementwise 1.0 where ``(y_pred > threshold)`` equals ``y_true``."""
    y_pred = _as_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(torch.get_default_dtype())
    y_true = _as_tensor(y_true, like=y_pred, dtype=y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return torch.eq(y_true, (y_pred > threshold).to(y_true.dtype)).to(y_pred.dtype)


def _argmax(x):
    """``argmax`` over the last axis; boolean (one-hot) tensors count as 0/1."""
    return torch.argmax(x.to(torch.uint8) if x.dtype == torch.bool else x, dim=-1)


def categorical_accuracy(y_true, y_pred):
    """1.0 per sample/time step where the argmax of one-hot ``y_true`` (bool, int or float)
    matches ``y_pred``'s."""
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, like=y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "categorical_accuracy needs one-hot targets of y_pred's shape; received "
            f"y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}. For integer "
            "labels use sparse_categorical_accuracy."
        )
    out_dtype = y_pred.dtype if y_pred.is_floating_point() else torch.get_default_dtype()
    return torch.eq(_argmax(y_true), _argmax(y_pred)).to(out_dtype)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 per sample/time step where integer label ``y_true`` equals ``argmax(y_pred)``."""
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, like=y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    predicted = _argmax(y_pred)
    if y_true.is_floating_point():
        predicted = predicted.to(y_true.dtype)
    else:
        y_true = y_true.long()
    if y_true.shape != predicted.shape:
        raise ValueError(
            "Sparse labels must have shape y_pred.shape[:-1] (optionally with a trailing axis "
            f"of size 1); received y_true.shape={tuple(y_true.shape)}, "
            f"y_pred.shape={tuple(y_pred.shape)}."
        )
    out_dtype = y_pred.dtype if y_pred.is_floating_point() else torch.get_default_dtype()
    return torch.eq(y_true, predicted).to(out_dtype)


class MeanSquaredError(MeanMetricWrapper):
    """Running mean of squared errors."""

    def __init__(self, name="mean_squared_error"):
        super().__init__(_losses.mean_squared_error, name=name)


class MeanAbsoluteError(MeanMetricWrapper):
    """Running mean of absolute errors."""

    def __init__(self, name="mean_absolute_error"):
        super().__init__(_losses.mean_absolute_error, name=name)


class BinaryAccuracy(MeanMetricWrapper):
    """Fraction of elements whose thresholded prediction equals the 0/1 target."""

    def __init__(self, name="binary_accuracy", threshold=0.5):
        super().__init__(binary_accuracy, name=name, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(MeanMetricWrapper):
    """Fraction of samples (or time steps) whose argmax matches the one-hot target."""

    def __init__(self, name="categorical_accuracy"):
        super().__init__(categorical_accuracy, name=name)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """Fraction of samples (or time steps) whose argmax equals the integer label."""

    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(sparse_categorical_accuracy, name=name)


_CLASSES = {
    cls.__name__: cls
    for cls in (
        Mean,
        MeanSquaredError,
        MeanAbsoluteError,
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
    )
}

_NAMES = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    **_CLASSES,
}

_LOSS_FUNCTION_NAMES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)

_BINARY_LOSS_NAMES = ("binary_crossentropy", "bce", "BCE")


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else tuple(x)


def _is_binary_crossentropy(loss):
    if isinstance(loss, str):
        return loss in _BINARY_LOSS_NAMES
    return isinstance(loss, _losses.BinaryCrossentropy) or loss is _losses.binary_crossentropy


def _accuracy_class(loss, y_true, y_pred):
    """Pick the accuracy variant for ``'accuracy'`` as Keras 3 does, from the shapes alone:
    binary when ``y_pred``'s last dimension is 1; sparse categorical when ``y_true`` has a
    lower rank than ``y_pred`` or a last dimension of 1 (and ``y_pred`` a larger one); else
    categorical. Without shapes, a binary cross-entropy ``loss`` means binary accuracy."""
    if y_pred is None or y_true is None:
        if _is_binary_crossentropy(loss):
            return BinaryAccuracy
        raise ValueError(
            "Resolving metric 'accuracy' needs y_true and y_pred (or their shapes) unless "
            "the loss is binary cross-entropy; pass them to metrics.get(...) or name the "
            "metric explicitly, e.g. 'sparse_categorical_accuracy'."
        )
    true_shape, pred_shape = _shape(y_true), _shape(y_pred)
    if not true_shape or not pred_shape:
        raise ValueError(f"Cannot pick an accuracy for y_true of shape {true_shape} and y_pred of shape "
                         f"{pred_shape}: both need at least one axis.")
    if pred_shape[-1] == 1:
        return BinaryAccuracy
    if len(true_shape) < len(pred_shape) or true_shape[-1] == 1 and pred_shape[-1] > 1:
        return SparseCategoricalAccuracy
    return CategoricalAccuracy


def serialize(metric):
    """Return a JSON-able ``{"class_name", "config"}`` dict for built-in metric classes."""
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config):
    """Rebuild a metric from :func:`serialize` output."""
    class_name = config["class_name"]
    if class_name not in _CLASSES:
        raise unknown_name_error("metric class", class_name, _CLASSES)
    return _CLASSES[class_name].from_config(config.get("config", {}))


def get(identifier, loss=None, y_true=None, y_pred=None):
    """Resolve a metric name, instance, class or callable to a fresh :class:`Metric`.

    ``'accuracy'``/``'acc'`` is resolved from the shapes as Keras 3 does: binary
    accuracy when ``y_pred``'s last dimension is 1, sparse categorical when
    ``y_true`` has lower rank than ``y_pred`` or a last dimension of 1, else
    categorical (``loss`` only decides when no shapes are given: binary
    cross-entropy means binary accuracy). ``y_true``/``y_pred`` may be tensors
    or shapes. A metric given by name keeps that name (it is the key in the logs).
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            return _accuracy_class(loss, y_true, y_pred)(name=identifier)
        if identifier in _NAMES:
            return _NAMES[identifier](name=identifier)
        if identifier in _LOSS_FUNCTION_NAMES:
            return MeanMetricWrapper(getattr(_losses, identifier), name=identifier)
        raise unknown_name_error("metric", identifier, [*_NAMES, *_LOSS_FUNCTION_NAMES, "accuracy"])
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")
