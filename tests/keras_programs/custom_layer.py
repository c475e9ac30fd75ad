"""Custom layers from the subclassing guide: ``build`` creates weights with ``add_weight``
(one of them non-trainable), ``call`` uses them; the layers sit around an LSTM."""
import numpy as np

FEATURES, STEPS, BATCH = 4, 7, 6


def build(K):
    class Linear(K.layers.Layer):
        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal",
                                     trainable=True, name="w")
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True, name="b")

        def call(self, inputs):
            return inputs @ self.w + self.b

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    class ScaledTanh(K.layers.Layer):
        """A frozen per-feature gain (created first) and a trainable offset."""

        def build(self, input_shape):
            self.gain = self.add_weight(shape=(input_shape[-1],), initializer="ones", trainable=False, name="gain")
            self.offset = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="offset")

        def call(self, inputs):
            return K.activations.tanh(inputs * self.gain + self.offset)

    inputs = K.Input(shape=(STEPS, FEATURES))
    x = Linear(8, name="projection")(inputs)
    x = ScaledTanh(name="scaled_tanh")(x)
    x = K.layers.LSTM(8)(x)
    outputs = Linear(2, name="head")(x)
    model = K.Model(inputs, outputs)
    return {"model": model}


def data(rng):
    return {"model": rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")}


def training(K):
    return {"loss": "mse", "steps": 3}


def train_data(rng):
    return data(rng)["model"], rng.standard_normal((BATCH, 2)).astype("float32")
