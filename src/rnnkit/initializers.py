"""Weight initialisers with Keras's names, defaults and fan computation."""
import difflib
import math

import torch


def _fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(tensor, generator=None):
    fan_in, fan_out = _fans(tensor.shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return tensor.uniform_(-limit, limit, generator=generator)


def glorot_normal(tensor, generator=None):
    fan_in, fan_out = _fans(tensor.shape)
    std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
    return torch.nn.init.trunc_normal_(tensor, 0.0, std, -2 * std, 2 * std, generator=generator)


def he_uniform(tensor, generator=None):
    fan_in, _ = _fans(tensor.shape)
    limit = math.sqrt(6.0 / fan_in)
    return tensor.uniform_(-limit, limit, generator=generator)


def orthogonal(tensor, generator=None):
    """Keras's Orthogonal: rows (or columns, whichever are fewer) orthonormal."""
    return torch.nn.init.orthogonal_(tensor, generator=generator)


def zeros(tensor, generator=None):
    return tensor.zero_()


def ones(tensor, generator=None):
    return tensor.fill_(1.0)


def uniform(tensor, generator=None):
    """Keras's 'uniform' (RandomUniform(-0.05, 0.05)), the Embedding default."""
    return tensor.uniform_(-0.05, 0.05, generator=generator)


def normal(tensor, generator=None):
    """Keras's 'normal' (RandomNormal(0, 0.05))."""
    return tensor.normal_(0.0, 0.05, generator=generator)


_INITIALIZERS = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "orthogonal": orthogonal,
    "zeros": zeros,
    "ones": ones,
    "uniform": uniform,
    "random_uniform": uniform,
    "normal": normal,
    "random_normal": normal,
}


def get(identifier):
    """Return ``(name, fn)``; fn fills a tensor in place (``fn(tensor, generator)``)."""
    if callable(identifier):
        return getattr(identifier, "__name__", "custom"), identifier
    if isinstance(identifier, str) and identifier.lower() in _INITIALIZERS:
        return identifier.lower(), _INITIALIZERS[identifier.lower()]
    close = difflib.get_close_matches(str(identifier), _INITIALIZERS, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ValueError(
        f"Unknown initializer '{identifier}'.{hint} Known: {', '.join(sorted(_INITIALIZERS))}."
    )
