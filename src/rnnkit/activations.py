"""Activation functions by Keras name, also callable as in Keras: ``rnnkit.activations.tanh(x)``."""
import torch
import torch.nn.functional as F

from ._naming import suggest


def linear(x):
    return x


def hard_sigmoid(x):
    """Keras 3's hard sigmoid: relu6(x + 3) / 6."""
    return F.relu6(x + 3.0) / 6.0


def softmax(x, axis=-1):
    return torch.softmax(x, dim=axis)


def log_softmax(x, axis=-1):
    return torch.log_softmax(x, dim=axis)


tanh, sigmoid, relu, exponential = torch.tanh, torch.sigmoid, torch.relu, torch.exp
elu, selu, gelu, softplus, softsign, silu = F.elu, F.selu, F.gelu, F.softplus, F.softsign, F.silu
swish = silu

_ACTIVATIONS = {
    "linear": linear,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "silu": F.silu,
    "hard_sigmoid": hard_sigmoid,
    "exponential": torch.exp,
}


def get(identifier):
    """Return ``(name, fn)`` for a Keras activation name, None (linear) or a callable."""
    if identifier is None:
        return "linear", linear
    if callable(identifier):
        return getattr(identifier, "__name__", "custom"), identifier
    if isinstance(identifier, str) and identifier in _ACTIVATIONS:
        return identifier, _ACTIVATIONS[identifier]
    raise ValueError(f"Unknown activation '{identifier}'.{suggest(identifier, _ACTIVATIONS)} "
                     f"Known: {', '.join(sorted(_ACTIVATIONS))}.")
