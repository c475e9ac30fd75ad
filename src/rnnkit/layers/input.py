"""``Input``: declares the input shape of a model, as ``keras.Input`` does."""
from .layer import Layer


class InputLayer(Layer):
    """Identity layer that carries the model's input shape and dtype."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, **kwargs):
        if batch_shape is None:
            if shape is None:
                raise ValueError("Input needs shape= (without the batch axis), e.g. Input(shape=(5, 1)).")
            batch_shape = (batch_size,) + tuple(shape)
        super().__init__(name=name, batch_input_shape=tuple(batch_shape), dtype=dtype, **kwargs)

    @property
    def shape(self):
        return self.batch_input_shape

    def forward(self, inputs):
        return inputs

    def get_config(self):
        return {"name": self.name, "batch_shape": list(self.batch_input_shape), "dtype": self.dtype_policy}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None):
    """Declare a model input: ``Sequential([Input(shape=(5, 1)), LSTM(1)])``."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape)
