"""``Sequential``: a plain stack of layers, each feeding the next -- the linear case of the functional graph."""
from torch import nn

from .. import registry
from ..layers import Embedding, InputLayer, Layer
from ..layers.symbolic import Graph, KerasTensor
from .model import Model


class Sequential(Model):
    """``Sequential([Embedding(10000, 32), SimpleRNN(32)])`` or ``model.add(layer)`` one by one.

    The model builds as soon as its input shape is known -- from ``Input(shape=...)``, a
    first layer's ``input_shape`` / ``batch_input_shape``, ``model.build(shape)`` -- else
    on the first batch it sees (until then ``summary()`` shows it unbuilt, as Keras 3 does).
    Built, it is a functional graph ``Input -> layer 1 -> ... -> layer n``, so
    ``model.input``, ``layer.output`` and cutting sub-models work as for ``Model(inputs, outputs)``.
    """

    _is_sequential = True

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self._layers = nn.ModuleList()
        self._chain = []  # symbolic tensors: the input, then each layer's output
        self._explicit_input = False
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self):
        return list(self._layers)

    def add(self, layer):
        """Append a layer (or an ``Input``) to the stack."""
        if isinstance(layer, KerasTensor):
            if not layer.node.is_input:
                raise ValueError("Sequential.add() takes layers; a symbolic tensor is allowed only as the first "
                                 "element, and only one made by rnnkit.Input(...).")
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._layers or self._chain:
                raise ValueError("Input(...) can only be the first element of a Sequential model.")
            self.batch_input_shape = layer.batch_input_shape
            self._chain = [layer.output]
            self._explicit_input = True
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add() takes rnnkit layers, got {type(layer).__name__}. "
                            "Wrap plain torch modules in a Model subclass instead.")
        if not self._layers and not self._chain and layer.batch_input_shape is not None:
            self.batch_input_shape = tuple(layer.batch_input_shape)
            self._chain = [_input_for(layer, self.batch_input_shape)]
        self._layers.append(layer)
        self._prepared_for = None
        if self._chain:
            try:
                self._chain.append(layer(self._chain[-1]))
            except Exception:
                self._layers = self._layers[:-1]
                raise
            self._set_graph()

    def pop(self):
        """Remove and return the last layer."""
        if not self._layers:
            raise ValueError("This Sequential model has no layers to pop.")
        layer = self._layers[-1]
        self._layers = self._layers[:-1]
        if len(self._chain) > 1:
            self._chain.pop()
            self._set_graph()
        self._prepared_for = None
        return layer

    def _set_graph(self):
        """The chain changed: the graph is made again when next needed (adding n layers one by one
        stays linear in n)."""
        self._graph_stale = True
        self.built = len(self._chain) >= 2
        if self.built:
            self._inputs_struct, self._outputs_struct = self._chain[0], self._chain[-1]

    @property
    def _graph(self):
        if self.__dict__.get("_graph_stale"):
            self.__dict__["_graph_stale"] = False
            chain = self.__dict__.get("_chain", [])
            self.__dict__["_graph_cache"] = Graph([chain[0]], [chain[-1]]) if len(chain) >= 2 else None
        return self.__dict__.get("_graph_cache")

    @_graph.setter
    def _graph(self, value):
        self.__dict__["_graph_cache"], self.__dict__["_graph_stale"] = value, False

    def build(self, input_shape=None):
        """Build every layer for ``input_shape`` (with None for the batch and unknown sizes)."""
        if input_shape is None:
            if not self._chain:
                raise ValueError("Sequential.build() needs an input shape, e.g. model.build((None, 120, 14)).")
            input_shape = self._chain[0].shape
        if not self._layers:
            raise ValueError("This Sequential model has no layers: add some with model.add(...).")
        chain = [_input_for(self._layers[0], tuple(input_shape))]
        for layer in self._layers:
            chain.append(layer(chain[-1]))
        self._chain = chain
        self._set_graph()

    def _ensure_built(self, input_shape, device=None):
        if not self.built:
            self._build_device = device
            self.build((None,) + tuple(input_shape[1:]))

    def forward(self, inputs, training=None, mask=None):
        if not self._layers:
            raise ValueError("This Sequential model has no layers: add some with model.add(...).")
        return super().forward(inputs, training=training, mask=mask)

    def get_config(self):
        config = {"name": self.name, "layers": [registry.serialize(layer) for layer in self._layers]}
        if self._explicit_input:
            config["input"] = self._chain[0].node.layer.get_config()
        elif self.built:
            config["build_input_shape"] = list(self._chain[0].shape)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        model = cls(name=config.get("name"))
        if "input" in config:
            model.add(InputLayer(**config["input"]))
        for spec in config["layers"]:
            model.add(registry.deserialize(spec, custom_objects))
        if not model.built and config.get("build_input_shape"):
            model.build(config["build_input_shape"])
        return model


def _input_for(first_layer, batch_shape):
    """The Input a stack starts from: token ids for an Embedding, strings for a TextVectorization,
    float32 otherwise."""
    dtype = ("int64" if isinstance(first_layer, Embedding)
             else "string" if type(first_layer).__name__ == "TextVectorization" else None)
    return InputLayer(batch_shape=batch_shape, dtype=dtype).output
