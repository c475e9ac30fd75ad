"""Weight regularizers with Keras 3's classes and names: ``regularizer(w)`` is the penalty
(a scalar tensor) that a layer adds to the loss for weight ``w``.

    from rnnkit import regularizers
    reg = regularizers.L1L2(l1=1e-5, l2=1e-4)
    penalty = reg(layer.kernel)                    # l1 * sum(|w|) + l2 * sum(w ** 2)

Names: ``l1``, ``l2``, ``l1_l2`` (also ``l1l2``) and the class names ``L1``, ``L2``, ``L1L2``.
"""
import math

import torch

from . import registry

__all__ = ["L1", "L1L2", "L2", "Regularizer", "deserialize", "get", "serialize"]


def _factor(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isinf(value) or math.isnan(value) \
            or value < 0:
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float. Received: {name}={value!r}")
    return float(value)


class Regularizer(registry.Configurable):
    """Base class: ``regularizer(w)`` returns the penalty for weight ``w``.

        class Smooth(Regularizer):
            def __call__(self, w):
                return 0.01 * torch.sum(torch.diff(w, dim=0) ** 2)
    """

    def __call__(self, x):
        return torch.zeros((), dtype=getattr(x, "dtype", torch.float32))



class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w ** 2)`` (a term with factor 0 is left out).

        L1L2(l1=0.1, l2=0.01)(torch.tensor([1.0, -2.0]))      # 0.1 * 3 + 0.01 * 5 = 0.35
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, x):
        penalty = torch.zeros((), dtype=x.dtype, device=x.device)
        if self.l1:
            penalty = penalty + self.l1 * torch.sum(torch.abs(x))
        if self.l2:
            penalty = penalty + self.l2 * torch.sum(torch.square(x))
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|w|)``.

        L1(0.01)(torch.tensor([1.0, -2.0]))                   # 0.03
    """

    def __init__(self, l1=0.01):
        self.l1 = _factor(0.01 if l1 is None else l1, "l1")

    def __call__(self, x):
        return self.l1 * torch.sum(torch.abs(x))

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(w ** 2)``.

        L2(0.01)(torch.tensor([1.0, -2.0]))                   # 0.05
    """

    def __init__(self, l2=0.01):
        self.l2 = _factor(0.01 if l2 is None else l2, "l2")

    def __call__(self, x):
        return self.l2 * torch.sum(torch.square(x))

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2

_BY_NAME = {"L1": L1, "L2": L2, "L1L2": L1L2, "l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}


def serialize(regularizer):
    """``{"class_name": ..., "config": ...}`` for a :class:`Regularizer` (None stays None)."""
    return registry.serialize_object(regularizer)


def deserialize(config, custom_objects=None):
    """The regularizer described by ``serialize``'s output (or a name)."""
    return registry.deserialize_object(config, _BY_NAME, Regularizer, "regularizer", custom_objects)


def get(identifier):
    """A regularizer from a name, a config dict, a class, an instance or a function (None stays None).

        get("l2")                     # L2(l2=0.01)
    """
    return registry.get_object(identifier, deserialize, "regularizer")
