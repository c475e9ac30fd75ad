"""Lambda, Reshape, Permute and Masking, as Keras 3 defines them (masks included)."""
import inspect
import math
import weakref

import torch

from .. import registry
from .layer import Layer

# Functions given to Lambda layers in this process, by the name their configs carry, so that
# ``Lambda.from_config(layer.get_config())`` works in memory without pickling anything.
_FUNCTIONS = weakref.WeakValueDictionary()
_UNWEAKABLE = {}  # builtins and other callables that take no weak reference


def _function_key(fn):
    """The name a Lambda config stores for ``fn`` (its registered name or ``__name__``, made unique
    among the live functions of this process)."""
    base = getattr(fn, "_registered_name", None) or getattr(fn, "__name__", None) or type(fn).__name__
    for n in range(0, 10 ** 6):
        key = base if n == 0 else f"{base}#{n}"
        known = _FUNCTIONS.get(key, _UNWEAKABLE.get(key))
        if known is fn:
            return key
        if known is None:
            try:
                _FUNCTIONS[key] = fn
            except TypeError:
                _UNWEAKABLE[key] = fn
            return key
    return base


def _resolve_function(layer_name, key, custom_objects, what):
    if callable(key):
        return key
    if not isinstance(key, str):
        raise ValueError(f"Lambda '{layer_name}': the config's {what} must be a function name, got {key!r}.")
    base = key.split("#")[0]
    custom_objects = custom_objects or {}
    for name in (key, base):
        if name in custom_objects:
            return custom_objects[name]
    known = _FUNCTIONS.get(key, _UNWEAKABLE.get(key))
    if known is not None:
        return known
    custom = getattr(registry, "_CUSTOM", {})
    for name in (key, base):
        if name in custom and callable(custom[name]):
            return custom[name]
    hint = (" It was a Python lambda; rnnkit saves only names, so use a named function or"
            if base == "<lambda>" else " Pass")
    raise ValueError(f"Lambda '{layer_name}' needs the Python function '{base}' for its {what}, which is not "
                     f"known in this process.{hint} custom_objects={{'{base}': your_function}} when loading.")


class Lambda(Layer):
    """Wrap a Python function of tensors as a layer.

    Arguments:
        function: called as ``function(inputs, **arguments)``; it also gets ``mask=`` and/or
            ``training=`` when its signature names them.
        output_shape: the output shape without the batch axis (a tuple, a list of tuples for
            several outputs), or a function ``input_shape -> output_shape`` (with batch axis);
            None infers it by running the function on dummy inputs.
        mask: None (the output has no mask, as Keras), a fixed mask, or a function
            ``(inputs, mask) -> mask``.
        arguments: dict of extra keyword arguments for ``function``.

    ``Lambda(lambda x: x[:, -1])``  # last time step
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise ValueError(f"Lambda: function must be callable, got {function!r}.")
        if arguments is not None and not isinstance(arguments, dict):
            raise ValueError(f"Lambda: arguments must be a dict of keyword arguments, got {arguments!r}.")
        if output_shape is not None and not callable(output_shape):
            output_shape = _as_shape_structure(output_shape)
        self.function = function
        self.arguments = dict(arguments or {})
        if mask is not None and not callable(mask):
            mask = torch.as_tensor(mask, dtype=torch.bool)
        self.mask = mask
        self._output_shape = output_shape
        params = _parameters(function)
        self._fn_expects_mask = "mask" in params
        self._fn_expects_training = "training" in params

    def forward(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if self._fn_expects_mask:
            kwargs["mask"] = mask
        if self._fn_expects_training:
            kwargs["training"] = self.training if training is None else training
        return self.function(inputs, **kwargs)

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            return super().compute_output_shape(input_shape)
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        batch = _first_dim(input_shape)
        if _is_shape(self._output_shape):
            return (batch,) + tuple(self._output_shape)
        return [(batch,) + tuple(s) for s in self._output_shape]

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def get_config(self):
        config = {**super().get_config(), "function": _function_key(self.function)}
        if self._output_shape is not None:
            if callable(self._output_shape):
                config["output_shape"] = _function_key(self._output_shape)
            elif _is_shape(self._output_shape):
                config["output_shape"] = list(self._output_shape)
            else:
                config["output_shape"] = [list(s) for s in self._output_shape]
        if self.mask is not None:
            config["mask"] = (_function_key(self.mask) if callable(self.mask)
                              else self.mask.cpu().tolist())
        config["arguments"] = dict(self.arguments)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        name = config.get("name", "lambda")
        config["function"] = _resolve_function(name, config["function"], custom_objects, "function")
        shape = config.get("output_shape")
        if isinstance(shape, str):
            config["output_shape"] = _resolve_function(name, shape, custom_objects, "output_shape")
        if isinstance(config.get("mask"), str):
            config["mask"] = _resolve_function(name, config["mask"], custom_objects, "mask")
        return cls(**config)


def _parameters(fn):
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}


def _is_shape(shape):
    return isinstance(shape, (tuple, list)) and all(d is None or isinstance(d, int) for d in shape)


def _as_shape_structure(shape):
    if isinstance(shape, int):
        return (shape,)
    if _is_shape(shape):
        return tuple(shape)
    if isinstance(shape, (list, tuple)) and all(_is_shape(s) for s in shape):
        return [tuple(s) for s in shape]
    raise ValueError(f"Lambda: output_shape must be a shape tuple (without the batch axis), a list of "
                     f"them, or a function; got {shape!r}.")


def _first_dim(shape):
    while isinstance(shape, (list, tuple)) and shape and not _is_shape(shape):
        shape = shape[0]
    return shape[0] if shape else None


class Reshape(Layer):
    """Reshape everything after the batch axis to ``target_shape`` (one entry may be -1).

    Arguments:
        target_shape: the new shape without the batch axis, e.g. ``(3, 4)`` or ``(-1, 2)``.

    ``Reshape((-1, 1))``  # (batch, 12) -> (batch, 12, 1)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if isinstance(target_shape, int):
            target_shape = (target_shape,)
        try:
            target_shape = tuple(int(d) for d in target_shape)
        except (TypeError, ValueError):
            raise ValueError(f"Reshape: target_shape must be a tuple of ints, got {target_shape!r}.") from None
        if any(d < -1 for d in target_shape) or target_shape.count(-1) > 1:
            raise ValueError(f"Reshape: each entry of target_shape must be a non-negative int, or -1 for one "
                             f"unknown size; got target_shape={target_shape}.")
        self.target_shape = target_shape

    def _resolve(self, input_shape):
        """target_shape with its -1 worked out from ``input_shape`` (without batch), as Keras."""
        target = self.target_shape
        if None in input_shape:
            return tuple(None if d == -1 else d for d in target)
        size = math.prod(input_shape)
        if -1 not in target:
            if size != math.prod(target):
                raise ValueError(f"Layer '{self.name}' (Reshape) cannot reshape inputs of shape (batch,) + "
                                 f"{tuple(input_shape)} ({size} values per sample) to target_shape={target} "
                                 f"({math.prod(target)} values).")
            return target
        known = math.prod(d for d in target if d != -1)
        if known == 0 or size % known:
            raise ValueError(f"Layer '{self.name}' (Reshape) cannot reshape inputs of shape (batch,) + "
                             f"{tuple(input_shape)} ({size} values per sample) to target_shape={target}: "
                             f"{size} is not divisible by {known}.")
        return tuple(size // known if d == -1 else d for d in target)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolve(tuple(input_shape[1:]))

    def forward(self, inputs):
        shape = self._resolve(tuple(inputs.shape[1:]))
        return inputs.reshape((inputs.shape[0],) + shape)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Reorder the axes after the batch axis; ``dims`` counts from 1.

    Arguments:
        dims: a permutation of ``1..rank-1``, e.g. ``(2, 1)`` swaps time and features.

    ``Permute((2, 1))``  # (batch, time, features) -> (batch, features, time)
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            dims = tuple(int(d) for d in dims)
        except (TypeError, ValueError):
            raise ValueError(f"Permute: dims must be a tuple of ints, got {dims!r}.") from None
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..{len(dims)} (axis 0, the batch, stays "
                             f"in place); got dims={dims}.")
        self.dims = dims

    def _check(self, rank):
        if rank != len(self.dims) + 1:
            raise ValueError(f"Layer '{self.name}' (Permute) with dims={self.dims} expects inputs of rank "
                             f"{len(self.dims) + 1}, got rank {rank}.")

    def compute_output_shape(self, input_shape):
        self._check(len(input_shape))
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def forward(self, inputs):
        self._check(inputs.dim())
        return inputs.permute((0,) + self.dims)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class Masking(Layer):
    """Mark time steps whose features all equal ``mask_value`` as padding (output mask
    ``any(x != mask_value, axis=-1)``) and zero them; later layers skip them.

    Arguments:
        mask_value: the padding value (default 0.0).

    ``Masking(mask_value=0.0)``
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        try:
            self.mask_value = float(mask_value)
        except (TypeError, ValueError):
            raise ValueError(f"Masking: mask_value must be a number, got {mask_value!r}.") from None

    def forward(self, inputs):
        keep = (inputs != self.mask_value).any(dim=-1, keepdim=True)
        return torch.where(keep, inputs, torch.zeros((), dtype=inputs.dtype, device=inputs.device))

    def compute_mask(self, inputs, mask=None):
        return (inputs != self.mask_value).any(dim=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
