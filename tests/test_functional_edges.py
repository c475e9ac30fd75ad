"""Edge cases of rnnkit's functional graphs, checked against what Keras 3.15 does.

rnnkit only (no Keras needed); the expected behaviour, noted at each test, was observed on
Keras 3.15.1 with the torch backend:

* a layer called on two tensors is one layer with one set of weights;
* a tensor may feed several layers, or the same merge layer twice;
* an Input that no output depends on is accepted silently (no error, no warning) and still
  expects its array: predict/fit need every input (rnnkit may warn, naming the input);
* an output that does not depend on the model's inputs raises ValueError ("Output ... is not
  connected to `inputs`") at ``Model(...)``; rnnkit's message must also name the tensor
  (its layer or the Input it really depends on);
* dict data is matched to inputs by name, whatever the key order, for dict and list inputs;
* a wrong number of input arrays (or a missing dict key) raises a ValueError that says how
  many inputs the model expects, or which key is missing; a wrong number of targets raises
  ValueError too.
"""
import re
import warnings

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import layers

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _dense(x, kernel, bias):
    return x @ kernel + bias


# ----- a layer called twice: one layer, one set of weights ------------------------------------------
def test_layer_called_twice_shares_weights():
    shared = layers.Dense(2, name="shared")
    left, right = rnnkit.Input((3,), name="left"), rnnkit.Input((3,), name="right")
    model = rnnkit.Model([left, right], [shared(left), shared(right)])
    assert [layer.name for layer in model.layers] == ["left", "right", "shared"]  # Keras lists it once
    assert len(model.weights) == 2 and model.count_params() == 8
    kernel, bias = (w.astype(np.float32) for w in (_rng().normal(size=(3, 2)), _rng(1).normal(size=2)))
    model.set_weights([kernel, bias])
    a, b = _rng(2).normal(size=(4, 3)).astype(np.float32), _rng(3).normal(size=(4, 3)).astype(np.float32)
    out_a, out_b = model.predict_on_batch([a, b])
    np.testing.assert_allclose(out_a, _dense(a, kernel, bias), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_b, _dense(b, kernel, bias), rtol=1e-5, atol=1e-6)


def test_shared_layer_is_trained_through_both_calls():
    shared = layers.Dense(1, use_bias=False, name="shared")
    left, right = rnnkit.Input((2,)), rnnkit.Input((2,))
    model = rnnkit.Model([left, right], layers.add([shared(left), shared(right)]))
    model.set_weights([np.zeros((2, 1), np.float32)])
    model.compile(optimizer=rnnkit.optimizers.SGD(learning_rate=0.1), loss="mse")
    a = np.array([[1.0, 0.0]], np.float32)
    b = np.array([[0.0, 2.0]], np.float32)
    model.train_on_batch([a, b], np.array([[1.0]], np.float32))
    # y = (a + b) w, loss = (y - 1)^2, dloss/dw = 2 (y - 1)(a + b) = -2 [1, 2]; w = 0.1 * 2 * [1, 2]
    np.testing.assert_allclose(model.get_weights()[0][:, 0], [0.2, 0.4], rtol=1e-5)


def test_functional_model_called_on_new_inputs_shares_weights():
    inner_in = rnnkit.Input((5, 3))
    inner = rnnkit.Model(inner_in, layers.LSTM(4)(inner_in), name="inner")
    outer_in = rnnkit.Input((5, 3))
    outer = rnnkit.Model(outer_in, layers.Dense(1)(inner(outer_in)))
    assert outer.count_params() == inner.count_params() + 5
    x = _rng().normal(size=(2, 5, 3)).astype(np.float32)
    features = inner.predict_on_batch(x)
    kernel, bias = outer.get_weights()[-2:]
    np.testing.assert_allclose(outer.predict_on_batch(x), _dense(features, kernel, bias), rtol=1e-5, atol=1e-6)


# ----- a tensor used twice -----------------------------------------------------------------------------
def test_tensor_used_twice_in_one_merge():
    x = rnnkit.Input((3,))
    model = rnnkit.Model(x, layers.add([x, x]))
    data = _rng().normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict_on_batch(data), 2 * data, rtol=1e-6)


def test_tensor_feeding_two_layers():
    tokens = rnnkit.Input((6,), dtype="int32")
    embedded = layers.Embedding(20, 4, mask_zero=True)(tokens)
    lstm = layers.LSTM(3)(embedded)
    gru = layers.GRU(2)(embedded)
    model = rnnkit.Model(tokens, layers.concatenate([lstm, gru, lstm]))
    x = _rng().integers(1, 20, (3, 6)).astype(np.int32)
    x[1, 4:] = 0
    out = model.predict_on_batch(x)
    assert out.shape == (3, 8)
    np.testing.assert_array_equal(out[:, :3], out[:, 5:])
    only_lstm = rnnkit.Model(tokens, lstm)
    np.testing.assert_allclose(out[:, :3], only_lstm.predict_on_batch(x), rtol=1e-6)


# ----- an unused Input: accepted silently, still expects its array --------------------------------------
def test_unused_input_is_accepted_and_still_expected():
    a, b = rnnkit.Input((3,), name="a"), rnnkit.Input((2,), name="b")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = rnnkit.Model([a, b], layers.Dense(2, name="dense")(a))
    # Keras 3.15 neither raises nor warns; a warning is allowed, but then it must name the input
    for warning in caught:
        assert "'b'" in str(warning.message) or '"b"' in str(warning.message), str(warning.message)
    assert [layer.name for layer in model.layers] == ["a", "b", "dense"]
    assert model.count_params() == 8
    xa, xb = np.ones((2, 3), np.float32), np.ones((2, 2), np.float32)
    assert model.predict_on_batch([xa, xb]).shape == (2, 2)
    assert model.predict_on_batch({"b": xb, "a": xa}).shape == (2, 2)
    with pytest.raises(ValueError, match=r"(?s)\b2\b.*input"):  # Keras: expects 2 ... input(s) ... received 1
        model.predict_on_batch([xa])
    with pytest.raises(ValueError, match=r"\bb\b"):  # Keras: Missing data for input "b"
        model.predict_on_batch({"a": xa})


# ----- an output not connected to the inputs -----------------------------------------------------------
def test_disconnected_output_is_a_clear_error():
    a = rnnkit.Input((3,), name="a")
    orphan = rnnkit.Input((3,), name="orphan_input")
    out = layers.Dense(2, name="orphan_dense")(layers.concatenate([a, orphan]))
    with pytest.raises(ValueError, match=r"(?i)not connected|disconnected") as error:
        rnnkit.Model(a, out)
    message = str(error.value)
    assert "orphan_dense" in message or "orphan_input" in message, message


def test_second_output_disconnected_is_a_clear_error():
    a, b = rnnkit.Input((3,), name="a"), rnnkit.Input((3,), name="b")
    ok = layers.Dense(1, name="fine")(a)
    orphan = layers.Dense(1, name="orphan_dense")(rnnkit.Input((4,), name="orphan_input"))
    with pytest.raises(ValueError, match=r"(?i)not connected|disconnected") as error:
        rnnkit.Model([a, b], [ok, orphan])
    message = str(error.value)
    assert "orphan_dense" in message or "orphan_input" in message, message


# ----- dict inputs in another order --------------------------------------------------------------------
def _two_input_graph():
    x1, x2 = rnnkit.Input((3,), name="x1"), rnnkit.Input((2,), name="x2")
    projected = layers.Dense(3, name="project")(x2)
    return x1, x2, layers.concatenate([x1, projected])


def _two_input_data():
    rng = _rng(4)
    return rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)


@pytest.mark.parametrize("declared", ["dict", "list"])
def test_inputs_matched_by_name_in_any_key_order(declared):
    x1, x2, out = _two_input_graph()
    model = rnnkit.Model({"x1": x1, "x2": x2} if declared == "dict" else [x1, x2], out)
    a, b = _two_input_data()
    kernel, bias = model.get_weights()
    expected = np.concatenate([a, _dense(b, kernel, bias)], axis=1)
    np.testing.assert_allclose(model.predict_on_batch({"x1": a, "x2": b}), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch({"x2": b, "x1": a}), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict({"x2": b, "x1": a}, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_dict_data_in_another_order_trains_the_same():
    histories = []
    for order in (("x1", "x2"), ("x2", "x1")):
        torch.manual_seed(0)
        x1, x2, out = _two_input_graph()
        model = rnnkit.Model([x1, x2], layers.Dense(1, name="head")(out))
        model.set_weights([np.full(w.shape, 0.1, np.float32) for w in model.get_weights()])
        model.compile(optimizer=rnnkit.optimizers.SGD(learning_rate=0.1), loss="mse")
        a, b = _two_input_data()
        data = {"x1": a, "x2": b}
        history = model.fit({key: data[key] for key in order}, np.ones((4, 1), np.float32), batch_size=2,
                            epochs=2, shuffle=False, verbose=0)
        histories.append((history.history["loss"], model.get_weights()))
    np.testing.assert_allclose(histories[0][0], histories[1][0], rtol=1e-6)
    for first, second in zip(histories[0][1], histories[1][1]):
        np.testing.assert_allclose(first, second, rtol=1e-6)


# ----- the wrong number of arrays --------------------------------------------------------------------
def _compiled_two_input_model():
    x1, x2, out = _two_input_graph()
    model = rnnkit.Model([x1, x2], out)
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.mark.parametrize("count", [1, 3])
def test_fit_with_wrong_number_of_input_arrays(count):
    model = _compiled_two_input_model()
    arrays = [np.ones((4, 3), np.float32), np.ones((4, 2), np.float32), np.ones((4, 2), np.float32)][:count]
    with pytest.raises(ValueError) as error:
        model.fit(arrays, np.ones((4, 6), np.float32), verbose=0)
    message = str(error.value)
    # Keras: 'expects 2 named input(s) with keys ['x1', 'x2'], but it received 1 input tensors'
    assert re.search(r"\b2\b", message) and re.search(rf"\b{count}\b", message) and "input" in message.lower(), \
        message


def test_fit_with_a_single_array_for_two_inputs():
    model = _compiled_two_input_model()
    with pytest.raises(ValueError, match=r"(?s)\b2\b.*input|input.*\b2\b"):
        model.fit(np.ones((4, 3), np.float32), np.ones((4, 6), np.float32), verbose=0)


def test_fit_with_a_missing_dict_key_names_it():
    model = _compiled_two_input_model()
    with pytest.raises(ValueError, match="x2"):  # Keras: Missing data for input "x2"
        model.fit({"x1": np.ones((4, 3), np.float32)}, np.ones((4, 6), np.float32), verbose=0)


def test_fit_with_wrong_number_of_targets():
    x1, x2, out = _two_input_graph()
    model = rnnkit.Model([x1, x2], [layers.Dense(1, name="o1")(out), layers.Dense(2, name="o2")(out)])
    model.compile(optimizer="sgd", loss=["mse", "mse"])
    a, b = _two_input_data()
    with pytest.raises(ValueError):  # Keras: y_true and y_pred have different structures
        model.fit([a, b], [np.ones((4, 1), np.float32)], verbose=0)
