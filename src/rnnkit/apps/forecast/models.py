"""The forecasting models, by name, after Deep Learning with Python (chapters 6 and 10).

Every model maps a window ``(sequence_length, features)`` of normalised inputs to one
normalised target value.
"""

from ... import Input, Sequential
from ..._naming import closest
from ...layers import (GRU, LSTM, Bidirectional, Conv1D, Dense, Dropout, Flatten, MaxPooling1D,
                       SimpleRNN)
from .. import UsageError


def _gru(shape):
    return [GRU(32)]


def _lstm(shape):
    return [LSTM(32)]


def _simplernn(shape):
    return [SimpleRNN(32)]


def _stacked_gru(shape):
    # DLwP 2nd ed. 10.2.5: two GRU layers with recurrent dropout, then dropout.
    return [GRU(32, recurrent_dropout=0.5, return_sequences=True), GRU(32, recurrent_dropout=0.5),
            Dropout(0.5)]


def _gru_dropout(shape):
    # DLwP 1st ed. 6.3.6 (GRU with dropout and recurrent dropout) plus 2nd ed.'s Dropout(0.5).
    return [GRU(32, dropout=0.2, recurrent_dropout=0.25), Dropout(0.5)]


def _bidirectional_gru(shape):
    return [Bidirectional(GRU(16))]


def _conv1d_gru(shape):
    # DLwP 1st ed. 6.4.5: a convolutional front end shortens the sequence before the GRU.
    steps = shape[0]
    kernel = 5 if steps >= 20 else 2
    pool = 3 if steps >= 30 else 1
    layers = [Conv1D(32, kernel, activation="relu")]
    if pool > 1:
        layers.append(MaxPooling1D(pool))
    if (steps - kernel + 1) // pool - kernel + 1 >= 2:
        layers.append(Conv1D(32, kernel, activation="relu"))
    layers.append(GRU(32, dropout=0.1, recurrent_dropout=0.5))
    return layers


def _dense(shape):
    return [Flatten(), Dense(16, activation="relu")]


MODELS = {
    "gru": (_gru, "GRU(32)"),
    "lstm": (_lstm, "LSTM(32)"),
    "simplernn": (_simplernn, "SimpleRNN(32)"),
    "stacked-gru": (_stacked_gru, "GRU(32, recurrent_dropout=0.5) x2, Dropout(0.5)"),
    "gru-dropout": (_gru_dropout, "GRU(32, dropout=0.2, recurrent_dropout=0.25), Dropout(0.5)"),
    "bidirectional-gru": (_bidirectional_gru, "Bidirectional(GRU(16))"),
    "conv1d-gru": (_conv1d_gru, "Conv1D(32, 5) MaxPooling1D(3) Conv1D(32, 5) GRU(32, dropout)"),
}
BASELINE_MODELS = {"dense": (_dense, "Flatten, Dense(16, relu)")}
DEFAULT_MODELS = ("gru",)


def resolve_names(values):
    """``--model`` values (repeatable, comma-separated, or ``all``) -> ordered model names."""
    names = []
    for value in values or DEFAULT_MODELS:
        for name in str(value).split(","):
            name = name.strip().lower().replace("_", "-")
            if not name:
                continue
            if name == "all":
                names.extend(MODELS)
                continue
            if name not in MODELS:
                match = closest(name, list(MODELS) + ["all"])
                hint = f"; did you mean '{match}'?" if match else "."
                raise UsageError(f"Unknown model '{name}'{hint} Choose from: {', '.join(MODELS)}, all.")
            names.append(name)
    return list(dict.fromkeys(names))


def build(name, input_shape):
    """A fresh ``Sequential`` for ``name`` (a model or the dense baseline), ending in Dense(1)."""
    factory = (MODELS.get(name) or BASELINE_MODELS[name])[0]
    model = Sequential([Input(shape=tuple(input_shape)), *factory(input_shape), Dense(1)], name=name.replace("-", "_"))
    return model


def describe(name):
    return (MODELS.get(name) or BASELINE_MODELS[name])[1]
