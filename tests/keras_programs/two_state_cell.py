"""A user cell with two states of different sizes (``state_size = [units, memory]``) in
``layers.RNN(return_sequences=True, return_state=True)``, started from states given as
extra Inputs; a second model starts from zeros."""
import numpy as np

FEATURES, UNITS, MEMORY, STEPS, BATCH = 4, 8, 5, 6, 4


def build(K):
    class MemoryCell(K.layers.Layer):
        """h' = tanh(x W + h U + m V);  m' = m + sigmoid(h' R) - 0.5"""

        def __init__(self, units, memory, **kwargs):
            super().__init__(**kwargs)
            self.units, self.memory = units, memory
            self.state_size = [units, memory]
            self.output_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform",
                                          name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="orthogonal",
                                                    name="recurrent_kernel")
            self.memory_kernel = self.add_weight(shape=(self.memory, self.units), initializer="glorot_uniform",
                                                 name="memory_kernel")
            self.write_kernel = self.add_weight(shape=(self.units, self.memory), initializer="glorot_uniform",
                                                name="write_kernel")

        def call(self, inputs, states):
            h, m = states
            h_new = K.activations.tanh(inputs @ self.kernel + h @ self.recurrent_kernel + m @ self.memory_kernel)
            m_new = m + K.activations.sigmoid(h_new @ self.write_kernel) - 0.5
            return h_new, [h_new, m_new]

        def get_config(self):
            return {**super().get_config(), "units": self.units, "memory": self.memory}

    sequence = K.Input(shape=(None, FEATURES), name="sequence")
    h0 = K.Input(shape=(UNITS,), name="h0")
    m0 = K.Input(shape=(MEMORY,), name="m0")
    rnn = K.layers.RNN(MemoryCell(UNITS, MEMORY), return_sequences=True, return_state=True, name="memory_rnn")
    outputs, h, m = rnn(sequence, initial_state=[h0, m0])
    score = K.layers.Dense(1, name="score")(K.layers.concatenate([h, m]))
    model = K.Model([sequence, h0, m0], [outputs, score, m])
    outputs_from_zero, _, m_from_zero = rnn(sequence)
    from_zero = K.Model(sequence, [outputs_from_zero, m_from_zero])
    return {"model": model, "from_zero": from_zero}


def data(rng):
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    h0 = rng.uniform(-1, 1, (BATCH, UNITS)).astype("float32")
    m0 = rng.standard_normal((BATCH, MEMORY)).astype("float32")
    return {"model": [x, h0, m0], "from_zero": x}


def training(K):
    return {"loss": ["mse", "mse", "mse"], "loss_weights": [0.5, 1.0, 0.1], "steps": 3}


def train_data(rng):
    x = data(rng)["model"]
    return x, [0.5 * rng.standard_normal((BATCH, STEPS, UNITS)).astype("float32"),
               rng.standard_normal((BATCH, 1)).astype("float32"),
               rng.standard_normal((BATCH, MEMORY)).astype("float32")]
