"""Activation functions by Keras name."""
import difflib

import torch
import torch.nn.functional as F


def linear(x):
    return x


def hard_sigmoid(x):
    """Keras 3's hard sigmoid: relu6(x + 3) / 6."""
    return F.relu6(x + 3.0) / 6.0


_ACTIVATIONS = {
    "linear": linear,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
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
    close = difflib.get_close_matches(str(identifier), _ACTIVATIONS, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ValueError(
        f"Unknown activation '{identifier}'.{hint} Known: {', '.join(sorted(_ACTIVATIONS))}."
    )
