"""``Input``: a model's symbolic input, as ``keras.Input``."""
from .._naming import unique_name
from .layer import Layer
from .symbolic import KerasTensor, Node


class InputLayer(Layer):
    """The layer behind ``Input``: holds the input's shape and dtype; its one node is the input tensor."""

    _is_input_layer = True

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, sparse=None,
                 **kwargs):
        if batch_shape is None:
            if shape is None:
                raise ValueError("Input needs shape= (without the batch axis), e.g. Input(shape=(5, 1)).")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        if sparse:
            raise ValueError("rnnkit has no sparse tensors: leave sparse=None/False.")
        super().__init__(name=name or _input_name(), batch_input_shape=tuple(batch_shape), dtype=dtype, **kwargs)
        self.built = True
        tensor = KerasTensor(self.batch_input_shape, self.dtype_policy, name=self.name, history=(self, 0, 0))
        self._inbound_nodes.append(Node(self, (), {}, tensor))

    @property
    def shape(self):
        return self.batch_input_shape

    def forward(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {"name": self.name, "batch_shape": list(self.batch_input_shape), "dtype": self.dtype_policy}


def _input_name():
    return unique_name("input_layer")


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, sparse=None):
    """A symbolic model input (a ``KerasTensor``), as ``keras.Input``.

    Arguments:
        shape: the shape of one sample, without the batch axis; ``None`` for a size that
            varies (``(None, 8)``: sequences of any length with 8 features).
        batch_size: a fixed batch size (stateful RNNs need one).
        dtype: ``"float32"`` (default), ``"int32"`` for token ids, ...
        name: the input's name (the key of a dict passed to ``fit``/``predict``).
        batch_shape: the full shape with the batch axis, instead of shape and batch_size.

        inputs = rnnkit.Input(shape=(None,), dtype="int32")
        x = rnnkit.layers.Embedding(1000, 32)(inputs)
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape,
                       sparse=sparse)
    return layer.output
