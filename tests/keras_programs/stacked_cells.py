"""``StackedRNNCells([LSTMCell, GRUCell, SimpleRNNCell])`` in ``layers.RNN`` with
``return_state`` (the LSTM cell's state comes back nested as [h, c]), next to
``RNN(LSTMCell)`` which must behave like ``LSTM``."""
import numpy as np

FEATURES, STEPS, BATCH = 6, 7, 5


def build(K):
    inputs = K.Input(shape=(STEPS, FEATURES))
    cells = [K.layers.LSTMCell(10), K.layers.GRUCell(8), K.layers.SimpleRNNCell(6)]
    stacked = K.layers.RNN(K.layers.StackedRNNCells(cells), return_sequences=True, return_state=True,
                           name="stacked")
    sequence, lstm_states, gru_state, rnn_state = stacked(inputs)
    lstm_h, lstm_c = lstm_states
    lstm_like = K.layers.RNN(K.layers.LSTMCell(6), name="rnn_lstm_cell")(sequence)
    head = K.layers.Dense(3, activation="softmax")(K.layers.concatenate([lstm_like, gru_state, rnn_state]))
    model = K.Model(inputs, head)
    states = K.Model(inputs, [lstm_h, lstm_c, gru_state, rnn_state, sequence])
    return {"model": model, "states": states}


def data(rng):
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    return {"model": x, "states": x}


def training(K):
    return {"loss": "categorical_crossentropy", "steps": 3}


def train_data(rng):
    x = data(rng)["model"]
    return x, np.eye(3, dtype="float32")[rng.integers(0, 3, BATCH)]
