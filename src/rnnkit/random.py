"""``rnnkit.random``: seeding and Keras's ``keras.random`` draws on torch tensors.

    rnnkit.random.set_random_seed(42)                  # Python, NumPy and torch at once
    noise = rnnkit.random.normal((4, 8), stddev=0.1)   # from torch's global generator
    same = rnnkit.random.uniform((3,), seed=7)         # an int seed gives the same draw every call

A ``seed`` is an int (a fresh generator seeded with it: the same values every call) or ``None``
(torch's global generator, which ``set_random_seed`` seeds). ``keras.random.SeedGenerator`` is
not provided.
"""
import random as _py_random

import numpy as np
import torch

from .ops import _dtype

__all__ = ["categorical", "dropout", "get_random_seed", "normal", "randint", "set_random_seed", "shuffle",
           "truncated_normal", "uniform"]

_GLOBAL_SEED = None


def set_random_seed(seed):
    """Seed Python's ``random``, NumPy's global generator and torch (``torch.manual_seed``), as
    ``keras.utils.set_random_seed`` does, so runs repeat exactly (on the same device).

    Args:
        seed: an int.

        rnnkit.utils.set_random_seed(1337)
    """
    global _GLOBAL_SEED
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r} "
                         f"(of type {type(seed).__name__})")
    _GLOBAL_SEED = int(seed)
    _py_random.seed(_GLOBAL_SEED)
    np.random.seed(_GLOBAL_SEED % 2**32)
    torch.manual_seed(_GLOBAL_SEED)


def get_random_seed():
    """The seed last given to :func:`set_random_seed`, or ``None``."""
    return _GLOBAL_SEED


def _generator(seed):
    if seed is None:
        return None
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int or None, got {seed!r}.")
    return torch.Generator().manual_seed(int(seed))


def _shape(shape):
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Draws from a normal distribution.

        rnnkit.random.normal((2, 3), mean=1.0, stddev=0.5, seed=0)
    """
    out = torch.empty(_shape(shape), dtype=_dtype(dtype, torch.float32))
    return out.normal_(mean, stddev, generator=_generator(seed))


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Draws from a uniform distribution on ``[minval, maxval)``.

        rnnkit.random.uniform((4,), minval=-1.0, maxval=1.0)
    """
    out = torch.empty(_shape(shape), dtype=_dtype(dtype, torch.float32))
    return out.uniform_(minval, maxval, generator=_generator(seed))


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Random integers in ``[minval, maxval)`` (int32 by default, as Keras).

        rnnkit.random.randint((5,), 0, 10, seed=1)
    """
    return torch.randint(int(minval), int(maxval), _shape(shape), generator=_generator(seed),
                         dtype=_dtype(dtype, torch.int32))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal draws redrawn until within two standard deviations of the mean, as Keras.

        rnnkit.random.truncated_normal((100,), stddev=0.05)
    """
    out = torch.empty(_shape(shape), dtype=_dtype(dtype, torch.float32))
    return torch.nn.init.trunc_normal_(out, mean, stddev, mean - 2 * stddev, mean + 2 * stddev,
                                       generator=_generator(seed))


def dropout(inputs, rate, noise_shape=None, seed=None):
    """Zero each entry with probability ``rate`` and scale the rest by ``1 / (1 - rate)``.

    Args:
        noise_shape: the shape of the drop mask, broadcast over ``inputs`` (e.g. ``(batch, 1,
            features)`` drops whole features for all steps).

        rnnkit.random.dropout(torch.ones(2, 4), rate=0.5, seed=0)
    """
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1), got {rate}.")
    inputs = torch.as_tensor(inputs)
    shape = inputs.shape if noise_shape is None else tuple(
        inputs.shape[i] if d is None else int(d) for i, d in enumerate(noise_shape))
    keep = torch.rand(shape, generator=_generator(seed)).to(inputs.device) >= rate
    return torch.where(keep, inputs / (1 - rate), torch.zeros((), dtype=inputs.dtype, device=inputs.device))


def shuffle(x, axis=0, seed=None):
    """``x`` with its entries along ``axis`` in a random order.

        rnnkit.random.shuffle(torch.arange(5), seed=0)
    """
    x = torch.as_tensor(x)
    order = torch.randperm(x.shape[axis], generator=_generator(seed)).to(x.device)
    return x.index_select(axis, order)


def categorical(logits, num_samples, dtype="int32", seed=None):
    """``num_samples`` class indices per row of ``logits`` (batch, classes), drawn from softmax(logits).

        rnnkit.random.categorical(torch.log(torch.tensor([[0.1, 0.9]])), 5, seed=0)
    """
    logits = torch.as_tensor(logits, dtype=torch.float32)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, int(num_samples), replacement=True,
                             generator=_generator(seed)).to(_dtype(dtype, torch.int32))
