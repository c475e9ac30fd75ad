"""The Layer base class: a ``torch.nn.Module`` with Keras's building, naming and weights."""
import inspect

import numpy as np
import torch
from torch import nn

from .. import initializers
from .._naming import snake_case, suggest, unique_name

_BASE_ARGS = ("name", "input_shape", "batch_input_shape", "batch_size", "input_dim", "dtype", "trainable")


class Layer(nn.Module):
    """Base of every rnnkit layer.

    Weights are created lazily by ``build(input_shape)`` -- from ``input_shape`` /
    ``batch_input_shape`` when given, else from the first tensor the layer is called on --
    and kept in Keras's order so ``get_weights`` / ``set_weights`` match Keras exactly.
    """

    def __init__(self, *, name=None, input_shape=None, batch_input_shape=None, batch_size=None,
                 input_dim=None, dtype=None, trainable=True, **unknown):
        super().__init__()
        if unknown:
            self._reject(unknown)
        self.name = name or unique_name(snake_case(type(self).__name__))
        if batch_input_shape is not None:
            batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            batch_input_shape = (batch_size,) + tuple(input_shape)
        elif input_dim is not None:
            batch_input_shape = (batch_size, input_dim)
        self.batch_input_shape = batch_input_shape
        self.dtype_policy = dtype or "float32"
        self.trainable = trainable
        self.built = False
        self._weight_names = []
        self._input_dim = None

    def _reject(self, unknown):
        accepted = set(_BASE_ARGS)
        accepted.update(p for p in inspect.signature(type(self).__init__).parameters
                        if p not in ("self", "kwargs", "unknown"))
        key = sorted(unknown)[0]
        raise TypeError(
            f"{type(self).__name__}() got an unknown argument '{key}'.{suggest(key, accepted)} "
            f"Accepted arguments: {', '.join(sorted(accepted))}."
        )

    # ----- weights -------------------------------------------------------------------------
    def add_weight(self, name, shape, initializer="zeros", trainable=True, device=None):
        """Create a parameter filled by a Keras initialiser and register it under ``name``."""
        _, init = initializers.get(initializer)
        value = torch.empty(tuple(shape), dtype=torch.float32, device=device)
        with torch.no_grad():
            init(value)
        param = nn.Parameter(value, requires_grad=trainable and self.trainable)
        self.register_parameter(name, param)
        self._weight_names.append(name)
        return param

    @property
    def weights(self):
        """Own weights, in Keras order (sub-layers' weights follow their own order)."""
        own = [getattr(self, n) for n in self._weight_names]
        for child in self._sublayers():
            own.extend(child.weights)
        return own

    @property
    def trainable_weights(self):
        return [w for w in self.weights if w.requires_grad]

    @property
    def non_trainable_weights(self):
        return [w for w in self.weights if not w.requires_grad]

    def _sublayers(self):
        """Direct sub-layers, looking through containers such as ``nn.ModuleList``."""
        return _top_layers(self)

    def get_weights(self):
        """The weights as NumPy arrays, in Keras's order and layout."""
        return [w.detach().cpu().numpy().copy() for w in self.weights]

    def set_weights(self, weights):
        """Load NumPy arrays given in Keras's order and layout (e.g. from ``keras_layer.get_weights()``)."""
        if not self.built:
            raise ValueError(f"Layer '{self.name}' is not built yet, so it has no weights to set: "
                             "call it on an input or give it input_shape= first.")
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(f"Layer '{self.name}' expects {len(mine)} weight arrays "
                             f"{[tuple(w.shape) for w in mine]}, but got {len(weights)}.")
        for i, (param, value) in enumerate(zip(mine, weights)):
            value = np.asarray(value)
            if tuple(value.shape) != tuple(param.shape):
                raise ValueError(f"Layer '{self.name}' weight {i} has shape {tuple(param.shape)}, "
                                 f"but the given array has shape {tuple(value.shape)}.")
        with torch.no_grad():
            for param, value in zip(mine, weights):
                param.copy_(torch.as_tensor(np.asarray(value), dtype=param.dtype))

    def count_params(self):
        if not self.built:
            raise ValueError(f"Layer '{self.name}' is not built yet: give it input_shape= or call it on data.")
        return sum(w.numel() for w in self.weights)

    # ----- building and calling -----------------------------------------------------------------
    def build(self, input_shape):
        """Create weights for ``input_shape`` (a tuple with None for unknown sizes)."""
        self.built = True

    def _ensure_built(self, input_shape, device=None):
        if not self.built:
            self._build_device = device
            self.build(tuple(input_shape))
            self.built = True

    def _device(self):
        return getattr(self, "_build_device", None)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_mask(self, inputs, mask=None):
        """The mask to hand to the next layer; most layers pass it through unchanged."""
        return mask

    def _check_features(self, x, expected):
        if x.shape[-1] != expected:
            raise ValueError(
                f"Layer '{self.name}' was built for inputs with last dimension {expected}, "
                f"but got an input of shape {tuple(x.shape)}."
            )

    def _check_rank(self, x, ranks, what):
        if x.dim() not in ranks:
            raise ValueError(
                f"Layer '{self.name}' expects {what}, but got an input of shape {tuple(x.shape)} "
                f"(rank {x.dim()})."
            )

    def __call__(self, inputs, *args, **kwargs):
        if not isinstance(inputs, torch.Tensor):
            inputs = _to_tensor(inputs)
        if not self.built:
            self._ensure_built(tuple(inputs.shape), device=inputs.device)
        return super().__call__(inputs, *args, **kwargs)

    # ----- config ------------------------------------------------------------------------------
    def get_config(self):
        """Constructor arguments (JSON-able) from which ``from_config`` rebuilds the layer."""
        config = {"name": self.name, "trainable": self.trainable}
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = list(self.batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def extra_repr(self):
        return f"name={self.name!r}"


def _top_layers(module):
    found = []
    for child in module.children():
        found.extend([child] if isinstance(child, Layer) else _top_layers(child))
    return found


def _to_tensor(x):
    array = np.asarray(x)
    if array.dtype.kind in "iub":
        return torch.as_tensor(array, dtype=torch.long)
    return torch.as_tensor(array, dtype=torch.float32)
