"""Weight constraints with Keras 3's classes and names: callables that take a weight tensor and
return the constrained tensor (the optimizer step applies them; wiring is the layer's).

    from rnnkit import constraints
    c = constraints.MaxNorm(max_value=2.0, axis=0)
    w = c(w)                                       # every column's L2 norm at most 2

Names: ``max_norm``, ``non_neg``, ``unit_norm``, ``min_max_norm`` (and the class names).
"""
import torch

from . import registry
from .backend import epsilon

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "deserialize", "get", "serialize"]


class Constraint(registry.Configurable):
    """Base class: ``constraint(w)`` returns the constrained weights.

        class Clip(Constraint):
            def __call__(self, w):
                return w.clamp(-1, 1)
    """

    def __call__(self, w):
        return w



def _norms(w, axis):
    return torch.sqrt(torch.sum(torch.square(w), dim=axis, keepdim=True))


class MaxNorm(Constraint):
    """Scale down the weights whose L2 norm along ``axis`` exceeds ``max_value``.

    Args:
        max_value: the largest norm allowed.
        axis: the axis (or axes) the norm is taken over: 0 for a Dense kernel (in, out)
            constrains each unit's incoming weights.

        MaxNorm(2.0)(torch.tensor([[3.0], [4.0]]))     # column norm 5 -> 2: [[1.2], [1.6]]
    """

    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        norms = _norms(w, self.axis)
        return w * (torch.clamp(norms, 0, self.max_value) / (epsilon() + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Set negative weights to 0.

        NonNeg()(torch.tensor([-1.0, 2.0]))            # tensor([0., 2.])
    """

    def __call__(self, w):
        return torch.clamp(w, min=0)


class UnitNorm(Constraint):
    """Divide the weights by their L2 norm along ``axis``.

        UnitNorm()(torch.tensor([[3.0], [4.0]]))       # [[0.6], [0.8]]
    """

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        return w / (epsilon() + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Move the L2 norms along ``axis`` into ``[min_value, max_value]``; ``rate`` < 1 moves them
    only that fraction of the way.

        MinMaxNorm(1.0, 2.0)(torch.tensor([[0.3], [0.4]]))   # norm 0.5 -> 1: [[0.6], [0.8]]
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = self.rate * torch.clamp(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (epsilon() + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm

_BY_NAME = {cls.__name__: cls for cls in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_BY_NAME.update({"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm})


def serialize(constraint):
    """``{"class_name": ..., "config": ...}`` for a :class:`Constraint` (None stays None)."""
    return registry.serialize_object(constraint)


def deserialize(config, custom_objects=None):
    """The constraint described by ``serialize``'s output (or a name)."""
    return registry.deserialize_object(config, _BY_NAME, Constraint, "constraint", custom_objects)


def get(identifier):
    """A constraint from a name, a config dict, a class, an instance or a function (None stays None).

        get("max_norm")                # MaxNorm(max_value=2, axis=0)
    """
    return registry.get_object(identifier, deserialize, "constraint")
