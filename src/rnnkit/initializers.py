"""Weight initialisers with Keras 3's classes, names, defaults and fan computation.

    from rnnkit import initializers
    init = initializers.GlorotUniform(seed=1)
    w = init((64, 32))                                    # a new float32 tensor, as Keras
    Dense(8, kernel_initializer=initializers.Orthogonal(gain=2.0))
    Dense(8, kernel_initializer="he_normal")              # by name

Every initializer is also an in-place filler for rnnkit's layers: ``get(identifier)`` returns
``(name, fill)`` where ``fill(tensor, generator=None)`` fills ``tensor`` (``Layer.add_weight``
uses it). An initializer with a ``seed`` gives the same values at every call, as in Keras 3;
without one it draws from ``generator`` (or torch's global generator).

Names: ``constant``, ``zeros`` (``zero``), ``ones`` (``one``), ``random_normal`` (``normal``:
mean 0, stddev 0.05), ``random_uniform`` (``uniform``: -0.05..0.05), ``truncated_normal``,
``variance_scaling``, ``glorot_uniform``, ``glorot_normal``, ``he_normal``, ``he_uniform``,
``lecun_normal``, ``lecun_uniform``, ``orthogonal``, ``identity``; the class names work too.
Custom initializers: a subclass of :class:`Initializer`, a function ``fn(shape, dtype=None)``
returning a tensor (Keras's form), or a function ``fn(tensor, generator=None)`` filling the
tensor in place (told apart by their first argument's name, ``shape`` or ``tensor``).
"""
import inspect
import math

import numpy as np
import torch

from . import registry
from ._naming import snake_case, suggest
from .ops import _dtype

__all__ = ["Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "Initializer",
           "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "TruncatedNormal",
           "VarianceScaling", "Zeros", "deserialize", "get", "serialize"]

_TRUNCATED_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


def compute_fans(shape):
    """Keras's ``(fan_in, fan_out)``: a kernel (in, out) gives (in, out); a convolution kernel
    (..., in, out) multiplies both by its receptive field."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _seeded(seed, device):
    return None if seed is None else torch.Generator(device=device).manual_seed(int(seed))


class Initializer(registry.Configurable):
    """Base class. A subclass defines ``fill_(tensor, generator=None)`` (and ``get_config`` when it
    has arguments); calling the initializer as Keras does, ``init(shape, dtype=None)``, returns
    a new tensor filled by it.

        class Halves(Initializer):
            def fill_(self, tensor, generator=None):
                return tensor.fill_(0.5)
    """

    def __call__(self, shape, dtype=None):
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
        tensor = torch.empty(shape, dtype=_dtype(dtype, torch.float32))
        with torch.no_grad():
            return self.fill_(tensor)

    def fill_(self, tensor, generator=None):
        raise NotImplementedError(f"{type(self).__name__} must define fill_(tensor, generator=None).")


    def clone(self):
        return type(self).from_config(self.get_config())


class Constant(Initializer):
    """Every entry ``value``.

        Constant(0.1)((2, 2))       # tensor([[0.1, 0.1], [0.1, 0.1]])
    """

    def __init__(self, value=0.0):
        self.value = value

    def fill_(self, tensor, generator=None):
        return tensor.copy_(torch.as_tensor(np.asarray(self.value), dtype=tensor.dtype).expand_as(tensor))

    def get_config(self):
        return {"value": self.value}


class Zeros(Initializer):
    """Every entry 0."""

    def fill_(self, tensor, generator=None):
        return tensor.zero_()


class Ones(Initializer):
    """Every entry 1."""

    def fill_(self, tensor, generator=None):
        return tensor.fill_(1.0)


class _Random(Initializer):
    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an int or None, got {seed!r}.")
        self.seed = seed

    def _generator(self, tensor, generator):
        return generator if self.seed is None else _seeded(self.seed, tensor.device)

    def get_config(self):
        return {"seed": self.seed}


class RandomNormal(_Random):
    """Normal draws with ``mean`` and ``stddev``.

        RandomNormal(mean=0.0, stddev=0.05, seed=1)((3, 4))
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def fill_(self, tensor, generator=None):
        return tensor.normal_(self.mean, self.stddev, generator=self._generator(tensor, generator))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class RandomUniform(_Random):
    """Uniform draws in ``[minval, maxval)``.

        RandomUniform(-0.05, 0.05)((3, 4))
    """

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def fill_(self, tensor, generator=None):
        return tensor.uniform_(self.minval, self.maxval, generator=self._generator(tensor, generator))

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class TruncatedNormal(_Random):
    """Normal draws with ``mean`` and ``stddev``, redrawn until within two ``stddev`` of the mean.

        TruncatedNormal(stddev=0.02)((3, 4))
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def fill_(self, tensor, generator=None):
        m, s = self.mean, self.stddev
        return torch.nn.init.trunc_normal_(tensor, m, s, m - 2 * s, m + 2 * s,
                                           generator=self._generator(tensor, generator))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class VarianceScaling(_Random):
    """Draws scaled to the weight's fans, as Keras: variance ``scale / n`` with ``n`` the fan-in,
    fan-out or their mean (``mode``), from a ``"truncated_normal"`` (``"normal"``),
    ``"untruncated_normal"`` or ``"uniform"`` distribution.

        VarianceScaling(scale=2.0, mode="fan_in", distribution="uniform")((64, 32))
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}.")
        distribution = str(distribution).lower()
        distribution = "truncated_normal" if distribution == "normal" else distribution
        if mode not in self._MODES:
            raise ValueError(f"mode must be one of {self._MODES}, got {mode!r}.")
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {self._DISTRIBUTIONS} or 'normal', got {distribution!r}.")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def fill_(self, tensor, generator=None):
        fan_in, fan_out = compute_fans(tensor.shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        generator = self._generator(tensor, generator)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return tensor.uniform_(-limit, limit, generator=generator)
        if self.distribution == "untruncated_normal":
            return tensor.normal_(0.0, math.sqrt(variance), generator=generator)
        std = math.sqrt(variance) / _TRUNCATED_STD
        return torch.nn.init.trunc_normal_(tensor, 0.0, std, -2 * std, 2 * std, generator=generator)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, **super().get_config()}


class _PresetScaling(VarianceScaling):
    """VarianceScaling with fixed arguments (``_preset``): only the seed is free."""

    _preset = None

    def __init__(self, seed=None):
        super().__init__(*self._preset, seed=seed)

    def get_config(self):
        return {"seed": self.seed}


class GlorotUniform(_PresetScaling):
    """Uniform in ``±sqrt(6 / (fan_in + fan_out))``: Keras's default kernel initializer."""

    _preset = (1.0, "fan_avg", "uniform")


class GlorotNormal(_PresetScaling):
    """Truncated normal with stddev ``sqrt(2 / (fan_in + fan_out))``."""

    _preset = (1.0, "fan_avg", "truncated_normal")


class HeNormal(_PresetScaling):
    """Truncated normal with stddev ``sqrt(2 / fan_in)``."""

    _preset = (2.0, "fan_in", "truncated_normal")


class HeUniform(_PresetScaling):
    """Uniform in ``±sqrt(6 / fan_in)``."""

    _preset = (2.0, "fan_in", "uniform")


class LecunNormal(_PresetScaling):
    """Truncated normal with stddev ``sqrt(1 / fan_in)``."""

    _preset = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_PresetScaling):
    """Uniform in ``±sqrt(3 / fan_in)``."""

    _preset = (1.0, "fan_in", "uniform")


class Orthogonal(_Random):
    """An orthogonal matrix times ``gain`` (rows orthonormal if there are fewer rows than
    columns, else columns); a kernel of rank > 2 is treated as ``(prod(shape[:-1]), shape[-1])``.
    Keras's default recurrent kernel initializer.

        w = Orthogonal()((4, 4)); w @ w.T      # the identity
    """

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def fill_(self, tensor, generator=None):
        if tensor.dim() < 2:
            raise ValueError(f"Orthogonal needs a tensor of rank 2 or more, got shape {tuple(tensor.shape)}.")
        generator = self._generator(tensor, generator)
        if tensor.dim() == 2:
            return torch.nn.init.orthogonal_(tensor, gain=self.gain, generator=generator)
        flat = torch.empty(math.prod(tensor.shape[:-1]), tensor.shape[-1], dtype=tensor.dtype, device=tensor.device)
        torch.nn.init.orthogonal_(flat, gain=self.gain, generator=generator)
        return tensor.copy_(flat.reshape(tensor.shape))

    def get_config(self):
        return {"gain": self.gain, **super().get_config()}


class Identity(Initializer):
    """The identity matrix times ``gain`` (2-D weights only).

        Identity(gain=2.0)((2, 3))     # [[2, 0, 0], [0, 2, 0]]
    """

    def __init__(self, gain=1.0):
        self.gain = gain

    def fill_(self, tensor, generator=None):
        if tensor.dim() != 2:
            raise ValueError(f"Identity can only initialize 2-D weights, got shape {tuple(tensor.shape)}.")
        return tensor.copy_(self.gain * torch.eye(*tensor.shape, dtype=tensor.dtype, device=tensor.device))

    def get_config(self):
        return {"gain": self.gain}


# Keras's lower-case aliases of the classes.
constant, zeros, ones, identity, orthogonal = Constant, Zeros, Ones, Identity, Orthogonal
random_normal, random_uniform, truncated_normal, variance_scaling = (RandomNormal, RandomUniform, TruncatedNormal,
                                                                     VarianceScaling)
glorot_uniform, glorot_normal, he_normal, he_uniform, lecun_normal, lecun_uniform = (
    GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform)

_CLASSES = (Constant, Zeros, Ones, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling, GlorotUniform,
            GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform, Orthogonal, Identity)
_BY_NAME = {cls.__name__: cls for cls in _CLASSES}
_BY_NAME.update({snake_case(cls.__name__): cls for cls in _CLASSES})
_BY_NAME.update({"normal": RandomNormal, "uniform": RandomUniform, "zero": Zeros, "one": Ones})


def serialize(initializer):
    """A name stays a name; an :class:`Initializer` becomes ``{"class_name": ..., "config": ...}``
    (what a layer's ``get_config`` stores, and ``get``/``deserialize`` read back).

        serialize(Orthogonal(gain=2.0))    # {'class_name': 'Orthogonal', 'config': {'gain': 2.0, 'seed': None}}
    """
    if isinstance(initializer, str) or initializer is None:
        return initializer
    if isinstance(initializer, Initializer):
        return {"class_name": registry.get_registered_name(type(initializer)), "config": initializer.get_config()}
    name = getattr(initializer, "_registered_name", None)
    if name is None:
        raise ValueError(f"Cannot serialize the initializer {initializer!r}: register it with "
                         "@rnnkit.saving.register_keras_serializable() or use an Initializer subclass.")
    return name


def deserialize(config, custom_objects=None):
    """The initializer described by ``serialize``'s output.

        deserialize({"class_name": "Constant", "config": {"value": 3.0}})    # Constant(value=3.0)
    """
    if isinstance(config, str):
        return _lookup(config, custom_objects)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Expected an initializer name or a {{'class_name': ..., 'config': ...}} dict, "
                         f"got {config!r:.200}.")
    cls = _lookup(config["class_name"], custom_objects)
    if not inspect.isclass(cls):
        return cls
    return cls.from_config(dict(config.get("config") or {}))


def _lookup(name, custom_objects=None):
    """An initializer class (or registered function) by name: custom_objects, rnnkit's, registered ones."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    found = _BY_NAME.get(name) or _BY_NAME.get(str(name).lower())
    if found is None:
        try:
            found = registry.lookup(name, custom_objects, what="initializer")
        except ValueError:
            found = None
    if found is None or inspect.isclass(found) and not issubclass(found, Initializer):
        raise ValueError(f"Unknown initializer '{name}'.{suggest(str(name), _BY_NAME)} Known: "
                         f"{', '.join(sorted(k for k in _BY_NAME if k.islower()))}.")
    return found


def get(identifier):
    """Resolve an initializer to ``(name, fill)``, where ``fill(tensor, generator=None)`` fills a
    tensor in place.

    Args:
        identifier: a name (``"glorot_uniform"``, ``"GlorotUniform"``...), a
            ``{"class_name", "config"}`` dict, an :class:`Initializer` (or its class), an array
            of the weight's shape (copied in), or a function (see the module docstring).

        name, fill = get("orthogonal"); fill(torch.empty(4, 4))
    """
    if isinstance(identifier, (str, dict)):
        identifier = deserialize(identifier)
    if inspect.isclass(identifier) and issubclass(identifier, Initializer):
        identifier = identifier()
    if isinstance(identifier, Initializer):
        return snake_case(type(identifier).__name__), identifier.fill_
    if isinstance(identifier, (np.ndarray, torch.Tensor)):
        return "constant", _array_filler(identifier)
    if callable(identifier):
        name = getattr(identifier, "__name__", "custom")
        return name, _function_filler(identifier)
    raise ValueError(f"Could not interpret initializer identifier: {identifier!r}")


def _array_filler(array):
    def fill(tensor, generator=None):
        value = torch.as_tensor(np.asarray(array) if not isinstance(array, torch.Tensor) else array)
        if tuple(value.shape) != tuple(tensor.shape):
            raise ValueError(f"The initial value has shape {tuple(value.shape)}, but the weight has shape "
                             f"{tuple(tensor.shape)}.")
        return tensor.copy_(value)
    return fill


def _function_filler(fn):
    """A fill function from a Keras-style ``fn(shape, dtype=None)`` (returns a tensor) or an
    in-place ``fn(tensor, generator=None)``."""
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    if not params or params[0] != "shape":
        return fn

    def fill(tensor, generator=None):
        value = fn(tuple(tensor.shape), dtype=str(tensor.dtype).replace("torch.", ""))
        return tensor.copy_(torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value))
    return fill
