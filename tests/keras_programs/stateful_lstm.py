"""Stateful LSTMs over a long series cut into consecutive windows: ``Input(batch_size=4)``,
``stateful=True``, states carried from batch to batch and cleared with ``reset_states``.

Inference only: Keras 3.15 on torch cannot train a stateful RNN (the in-place state update
breaks autograd: "one of the variables needed for gradient computation has been modified by
an inplace operation"), so there is no Keras reference for training steps."""
import numpy as np

FEATURES, STEPS, BATCH = 3, 5, 4


def build(K):
    inputs = K.Input(shape=(STEPS, FEATURES), batch_size=BATCH)
    x = K.layers.LSTM(8, stateful=True, return_sequences=True, name="lstm_1")(inputs)
    x = K.layers.LSTM(8, stateful=True, name="lstm_2")(x)
    outputs = K.layers.Dense(1)(x)
    model = K.Model(inputs, outputs)
    return {"model": model}


def _windows(rng, count):
    series = rng.standard_normal((BATCH, count * STEPS, FEATURES)).astype("float32")
    return [series[:, i * STEPS:(i + 1) * STEPS] for i in range(count)]


def data(rng):
    return {"model": _windows(rng, 1)[0], "windows": _windows(rng, 3)}


def _reset(model):
    for name in ("lstm_1", "lstm_2"):
        model.get_layer(name).reset_states()


def run(models, inputs):
    model = models["model"]
    _reset(model)
    carried = [model.predict_on_batch(window) for window in inputs["windows"]]
    _reset(model)
    fresh = model.predict_on_batch(inputs["windows"][1])
    return {"carried": np.stack(carried), "after_reset": fresh}
