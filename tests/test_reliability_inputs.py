"""Library inputs: wrong arguments and odd arrays get a clear error (or an exact cast), never a silent misreading."""
import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.layers import GRU, LSTM, Attention, Bidirectional, Conv1D, Dense, Dropout, Embedding, Input
from rnnkit.layers import LayerNormalization, RepeatVector, SimpleRNN


def _model():
    torch.manual_seed(0)
    model = rnnkit.Sequential([Input((5, 3)), LSTM(4), Dense(1)])
    model.compile("adam", "mse")
    return model


X = np.random.default_rng(0).random((8, 5, 3), dtype=np.float32)
Y = np.zeros((8, 1), np.float32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_cast_to_float32(dtype):
    model = _model()
    expected = model.predict(X, verbose=0)
    half = torch.as_tensor(X).to(dtype)
    assert np.array_equal(model.predict(half, verbose=0), model.predict(half.float().numpy(), verbose=0))
    assert np.allclose(model.predict(half, verbose=0), expected, atol=1e-2)
    model.fit(half, torch.as_tensor(Y).to(dtype), epochs=1, verbose=0)
    assert np.isfinite(model.evaluate(half, Y, verbose=0))
    assert model.predict(X.astype(np.float16), verbose=0).dtype == np.float32


@pytest.mark.parametrize("call", ["fit", "predict", "evaluate"])
def test_scalar_inputs_are_refused(call):
    model = _model()
    args = {"fit": (np.float32(3.0), np.float32(1.0)), "predict": (np.float32(3.0),),
            "evaluate": (np.float32(3.0), np.float32(1.0))}[call]
    with pytest.raises(ValueError, match="x is a scalar; pass an array with one row per sample"):
        getattr(model, call)(*args, verbose=0)
    with pytest.raises(ValueError, match="is a scalar"):
        model.predict(torch.tensor(3.0), verbose=0)


def test_zero_size_dimensions_are_refused():
    model = _model()
    with pytest.raises(ValueError, match=r"x has shape \(8, 0, 3\): a dimension of size 0"):
        model.predict(np.zeros((8, 0, 3), np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"y has shape \(8, 0\)"):
        model.fit(X, np.zeros((8, 0), np.float32), verbose=0)
    with pytest.raises(ValueError, match="x is empty"):
        model.predict(np.zeros((0, 5, 3), np.float32), verbose=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"batch_size": -4}, "batch_size must be a positive integer"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer"),
    ({"batch_size": True}, "batch_size must be a positive integer"),
    ({"steps_per_epoch": 0}, "steps_per_epoch must be a positive integer"),
    ({"validation_steps": 0, "validation_data": (X, Y)}, "validation_steps must be a positive integer"),
    ({"validation_batch_size": 0, "validation_data": (X, Y)}, "validation_batch_size must be a positive integer"),
])
def test_fit_counts_must_be_positive_integers(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _model().fit(X, Y, verbose=0, **kwargs)


def test_predict_and_evaluate_counts_must_be_positive_integers():
    model = _model()
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.predict(X, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        model.evaluate(X, Y, steps=0, verbose=0)


@pytest.mark.parametrize("make, message", [
    (lambda: LSTM(4, return_sequences="no"), "LSTM: return_sequences must be True or False, got 'no'"),
    (lambda: GRU(4, go_backwards="no"), "GRU: go_backwards must be True or False"),
    (lambda: SimpleRNN(4, return_state=1), "SimpleRNN: return_state must be True or False"),
    (lambda: LSTM(4, stateful="yes"), "stateful must be True or False"),
    (lambda: LSTM(4, unit_forget_bias="no"), "unit_forget_bias must be True or False"),
    (lambda: GRU(4, reset_after="no"), "reset_after must be True or False"),
    (lambda: LSTM(4, use_bias=None), "use_bias must be True or False"),
    (lambda: LSTM(0), r"units must be an integer in \[1, "),
    (lambda: LSTM(-3), r"units must be an integer in \[1, "),
    (lambda: LSTM(4.5), "units must be an integer, got 4.5"),
    (lambda: LSTM("4"), "units must be an integer, got '4'"),
    (lambda: LSTM(4, dropout="0.5"), "dropout must be a number in"),
    (lambda: Dense(0), r"Dense: units must be an integer in \[1, "),
    (lambda: Dense(-1), r"Dense: units must be an integer in \[1, "),
    (lambda: Dense(True), "Dense: units must be an integer, got True"),
    (lambda: Dense(3, use_bias="no"), "Dense: use_bias must be True or False"),
    (lambda: Dense(3, trainable="no"), "Dense: trainable must be True or False"),
    (lambda: Embedding(0, 4), r"Embedding: input_dim must be an integer in \[1, "),
    (lambda: Embedding(10, 4, mask_zero="no"), "Embedding: mask_zero must be True or False"),
    (lambda: Conv1D(0, 3), r"Conv1D: filters must be an integer in \[1, "),
    (lambda: RepeatVector(0), r"RepeatVector: n must be an integer in \[1, "),
    (lambda: Dropout("0.5"), r"Dropout rate must be a number in \[0, 1\)"),
    (lambda: Attention(use_scale="no"), "Attention: use_scale must be True or False"),
    (lambda: LayerNormalization(center="no"), "LayerNormalization: center must be True or False"),
])
def test_layer_arguments_are_type_checked(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_valid_arguments_still_work():
    assert LSTM(np.int64(4), return_sequences=np.bool_(True)).return_sequences is True
    assert Bidirectional(GRU(3, return_sequences=True)).forward_layer.return_sequences is True
    assert Dense(np.int32(2)).units == 2
