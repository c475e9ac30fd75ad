"""The RNN guide's ``MinimalRNNCell`` in ``layers.RNN``: one cell, and a list of cells
(``RNN([MinimalRNNCell(8), MinimalRNNCell(12)])``, stacked implicitly)."""
import numpy as np

FEATURES, STEPS, BATCH = 5, 8, 4


def build(K):
    class MinimalRNNCell(K.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="uniform",
                                          name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="uniform",
                                                    name="recurrent_kernel")

        def call(self, inputs, states):
            prev_output = states[0]
            h = inputs @ self.kernel
            output = h + prev_output @ self.recurrent_kernel
            return output, [output]

    inputs = K.Input((None, FEATURES))
    single = K.layers.RNN(MinimalRNNCell(8), return_sequences=True, name="single")(inputs)
    stacked = K.layers.RNN([MinimalRNNCell(8), MinimalRNNCell(12)], name="stacked")(inputs)
    summary = K.layers.Dense(1)(stacked)
    model = K.Model(inputs, [single, summary])
    return {"model": model}


def data(rng):
    return {"model": rng.uniform(-1, 1, (BATCH, STEPS, FEATURES)).astype("float32")}


def training(K):
    return {"loss": ["mse", "mse"], "steps": 3}


def train_data(rng):
    x = data(rng)["model"]
    return x, [0.1 * rng.standard_normal((BATCH, STEPS, 8)).astype("float32"),
               rng.standard_normal((BATCH, 1)).astype("float32")]
