"""``Sequential``: a plain stack of layers, each feeding the next (and passing its mask on)."""
import inspect

import torch

from torch import nn

from ..layers import InputLayer, Layer, deserialize, serialize
from ..layers.core import Embedding
from .model import Model
from .summary import format_summary


class Sequential(Model):
    """``Sequential([Embedding(10000, 32), SimpleRNN(32)])`` or ``model.add(layer)`` one by one.

    The model builds as soon as its input shape is known -- from ``Input(shape=...)``,
    a first layer's ``input_shape`` / ``batch_input_shape``, or an ``Embedding`` first
    layer (whose input is always (batch, time)) -- else on the first batch it sees.
    """

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self._layers = nn.ModuleList()
        self._input_layer = None
        self._shape = None
        self._input_shape = None
        self._call_args = []
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self):
        return list(self._layers)

    def add(self, layer):
        """Append a layer (or an ``Input``) to the stack."""
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("Input(...) can only be the first element of a Sequential model.")
            self._input_layer = layer
            self.batch_input_shape = layer.batch_input_shape
            self._shape = self._input_shape = tuple(layer.batch_input_shape)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add() takes rnnkit layers, got {type(layer).__name__}. "
                            "Wrap plain torch modules in a Model subclass instead.")
        if not self._layers and self._shape is None:
            if layer.batch_input_shape is not None:
                self.batch_input_shape = tuple(layer.batch_input_shape)
                self._shape = self.batch_input_shape
            elif isinstance(layer, Embedding):
                self._shape = (None, None)
            self._input_shape = self._shape
        self._layers.append(layer)
        self._prepared_for = None
        params = inspect.signature(layer.forward).parameters
        self._call_args.append(("mask" in params, "training" in params))
        if self._shape is not None:
            self._shape = self._build_layer(layer, self._shape)
            self.built = all(lay.built for lay in self._layers)

    def pop(self):
        layer = self._layers[-1]
        del self._layers[-1]
        self._call_args.pop()
        self._prepared_for = None
        return layer

    def _build_layer(self, layer, shape):
        layer._ensure_built(shape, self._device())
        return tuple(layer.compute_output_shape(shape))

    def build(self, input_shape=None):
        """Build every layer for ``input_shape`` (with None for the batch and unknown sizes)."""
        shape = tuple(input_shape) if input_shape is not None else self._shape
        if shape is None:
            raise ValueError("Sequential.build() needs an input shape, e.g. model.build((None, 120, 14)).")
        self._input_shape = shape
        for layer in self._layers:
            shape = self._build_layer(layer, shape)
        self.built = True

    def _ensure_built(self, input_shape, device=None):
        if not self.built:
            self._build_device = device
            self.build((None,) + tuple(input_shape[1:]))

    def forward(self, inputs, training=None, mask=None):
        if not self._layers:
            raise ValueError("This Sequential model has no layers: add some with model.add(...).")
        x = inputs
        for layer, (takes_mask, takes_training) in zip(self._layers, self._call_args):
            kwargs = {}
            if takes_mask:
                kwargs["mask"] = mask
            if takes_training and training is not None:
                kwargs["training"] = training
            y = layer(x, **kwargs)
            mask = layer.compute_mask(x, mask)
            x = y
        if mask is not None and isinstance(x, torch.Tensor):
            x._keras_mask = mask  # as Keras marks outputs: the loss and metrics skip padded steps
        return x

    def summary(self, line_length=65, print_fn=None):
        """Print the Keras-style table of layers, output shapes and parameter counts."""
        if not self.built:
            raise ValueError(f"Model '{self.name}' is not built yet, so its shapes and parameter counts are "
                             "unknown. Give the first layer input_shape=..., start with rnnkit.Input(shape=...), "
                             "call model.build((None, time, features)), or call the model on data.")
        rows = []
        shape = self._input_shape
        for layer in self._layers:
            shape = tuple(layer.compute_output_shape(shape))
            rows.append((f"{layer.name} ({type(layer).__name__})", shape, layer.count_params()))
        trainable = sum(w.numel() for w in self.trainable_weights)
        total = sum(w.numel() for w in self.weights)
        text = format_summary(self.name, rows, total, trainable, line_length)
        (print_fn or print)(text)

    def get_config(self):
        config = {"name": self.name, "layers": [serialize(layer) for layer in self._layers]}
        if self._input_layer is not None:
            config["input"] = self._input_layer.get_config()
        elif self.built and self._input_shape is not None:
            config["build_input_shape"] = list(self._input_shape)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        model = cls(name=config.get("name"))
        if "input" in config:
            model.add(InputLayer(**config["input"]))
        for spec in config["layers"]:
            model.add(deserialize(spec, custom_objects))
        if not model.built and config.get("build_input_shape"):
            model.build(config["build_input_shape"])
        return model
