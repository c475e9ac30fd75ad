"""rnnkit against Keras 3 itself (torch backend): same models, Keras's weights, same outputs.

Skipped unless ``keras`` (3.x) is importable. Each model is built in both libraries, Keras's
``get_weights()`` is loaded with rnnkit's ``set_weights()`` (so the order and shapes of
the weight lists must agree), and predictions -- masked inputs included -- must agree to
float32 tolerance, on the fused path and on the forced step-by-step reference. A few
models also take identical training steps. Parameter counts match Keras's, including the
lecture's ``Embedding(10000, 32)`` + ``SimpleRNN(32)`` (320,000 and 2,080).
"""
import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere in this process

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from keras_or_skip import import_keras  # noqa: E402

keras = import_keras()

import rnnkit  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras's numpy-2 __array__ notices

B, T, F, VOCAB = 5, 9, 4, 50
RTOL, ATOL = 1e-4, 1e-5
RECURRENT = {"SimpleRNN", "LSTM", "GRU"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----- building the same model in both libraries -----------------------------------------------------
def _layer(lib, name, kwargs, use_fused):
    kwargs = dict(kwargs)
    if name == "Bidirectional":
        inner_name, inner_kwargs = kwargs.pop("layer")
        return lib.layers.Bidirectional(_layer(lib, inner_name, inner_kwargs, use_fused), **kwargs)
    if lib is rnnkit and name in RECURRENT:
        kwargs["use_fused"] = use_fused
    return getattr(lib.layers, name)(**kwargs)


def build_pair(input_shape, spec, use_fused="auto", dtype="float32"):
    """(keras_model, rnnkit_model) with rnnkit holding Keras's weights."""
    keras.utils.set_random_seed(0)
    k_model = keras.Sequential([keras.Input(input_shape, dtype=dtype)] +
                               [_layer(keras, name, kw, use_fused) for name, kw in spec])
    r_model = rnnkit.Sequential([rnnkit.Input(shape=input_shape, dtype=dtype)] +
                                [_layer(rnnkit, name, kw, use_fused) for name, kw in spec])
    k_weights = k_model.get_weights()
    assert [w.shape for w in k_weights] == [w.shape for w in r_model.get_weights()]
    # Keras initialises biases to zeros (LSTM's forget gate to ones): perturb every weight so
    # each bias term matters, then give both libraries the same values.
    rng = np.random.default_rng(1)
    k_weights = [(w + rng.normal(0, 0.3, w.shape)).astype(np.float32) for w in k_weights]
    k_model.set_weights(k_weights)
    r_model.set_weights(k_model.get_weights())
    return k_model, r_model


def float_inputs(seed=0):
    return np.random.default_rng(seed).standard_normal((B, T, F)).astype(np.float32)


def token_inputs(layout, seed=0):
    """int32 token ids (0 = padding): right ('post') or left ('pre') padded, or with holes."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, (B, T)).astype(np.int32)
    lengths = np.array([T, 6, 1, 4, 8])
    steps = np.arange(T)[None, :]
    if layout == "right":
        x[steps >= lengths[:, None]] = 0
    elif layout == "left":
        x[steps < (T - lengths)[:, None]] = 0
    elif layout == "holes":
        x[:, [2, 5]] = 0
        x[1, 7] = 0
    return x


def assert_predictions_agree(k_model, r_model, x):
    expected = np.asarray(k_model.predict_on_batch(x))
    got = r_model.predict_on_batch(x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def _sequence_layers(model):
    found = []
    for layer in model.layers:
        found += [layer.forward_layer, layer.backward_layer] if hasattr(layer, "forward_layer") else [layer]
    return [layer for layer in found if hasattr(layer, "execution_path")]


# ----- unmasked models -------------------------------------------------------------------------------
FLOAT_MODELS = {
    "simple_rnn": [("SimpleRNN", {"units": 6})],
    "simple_rnn_relu_sequences": [("SimpleRNN", {"units": 6, "activation": "relu", "return_sequences": True})],
    "lstm_dense": [("LSTM", {"units": 6}), ("Dense", {"units": 1})],
    "lstm_no_bias_backwards": [("LSTM", {"units": 6, "use_bias": False, "go_backwards": True,
                                         "return_sequences": True})],
    "lstm_hard_sigmoid": [("LSTM", {"units": 5, "recurrent_activation": "hard_sigmoid"})],
    "gru_reset_after": [("GRU", {"units": 6, "return_sequences": True})],
    "gru_reset_before": [("GRU", {"units": 6, "reset_after": False, "return_sequences": True})],
    "gru_stack_softmax": [("GRU", {"units": 6, "return_sequences": True}), ("GRU", {"units": 5}),
                          ("Dense", {"units": 3, "activation": "softmax"})],
    "lstm_stack_backwards": [("LSTM", {"units": 5, "return_sequences": True, "go_backwards": True}),
                             ("LSTM", {"units": 4})],
    "bidirectional_lstm_concat": [("Bidirectional", {"layer": ("LSTM", {"units": 5})}), ("Dense", {"units": 1})],
    "bidirectional_gru_sum_sequences": [("Bidirectional", {"layer": ("GRU", {"units": 5, "return_sequences": True}),
                                                           "merge_mode": "sum"})],
    "bidirectional_simple_rnn_ave": [("Bidirectional", {"layer": ("SimpleRNN", {"units": 5}),
                                                        "merge_mode": "ave"})],
    "bidirectional_lstm_mul_sequences": [("Bidirectional", {"layer": ("LSTM", {"units": 4, "return_sequences": True}),
                                                            "merge_mode": "mul"})],
    "bidirectional_gru_reset_before": [("Bidirectional", {"layer": ("GRU", {"units": 4, "reset_after": False})})],
    "bidirectional_stack": [("Bidirectional", {"layer": ("LSTM", {"units": 4, "return_sequences": True})}),
                            ("Bidirectional", {"layer": ("GRU", {"units": 3})}), ("Dense", {"units": 2})],
}


@pytest.mark.parametrize("use_fused", ["auto", False])
@pytest.mark.parametrize("name", list(FLOAT_MODELS))
def test_float_models_agree_with_keras(name, use_fused):
    k_model, r_model = build_pair((T, F), FLOAT_MODELS[name], use_fused)
    assert_predictions_agree(k_model, r_model, float_inputs())
    assert r_model.count_params() == k_model.count_params()
    paths = [layer.execution_path for layer in _sequence_layers(r_model) if layer.execution_path]
    if use_fused is False:
        assert all(p.startswith("reference") for p in paths), paths


def test_dense_only_model_agrees_with_keras():
    spec = [("Dense", {"units": 7, "activation": "tanh"}), ("Dense", {"units": 2, "activation": "sigmoid"})]
    k_model, r_model = build_pair((F,), spec)
    assert_predictions_agree(k_model, r_model, float_inputs()[:, 0])
    assert r_model.count_params() == k_model.count_params() == F * 7 + 7 + 7 * 2 + 2


def test_weight_order_matches_keras_names():
    """get_weights order: per layer kernel, recurrent_kernel, bias; Bidirectional forward then backward."""
    spec = [("Embedding", {"input_dim": VOCAB, "output_dim": 3}),
            ("Bidirectional", {"layer": ("GRU", {"units": 4})}), ("Dense", {"units": 1})]
    k_model, r_model = build_pair((T,), spec, dtype="int32")
    names = [w.path.split("/")[-1] for w in k_model.weights]
    assert names == ["embeddings", "kernel", "recurrent_kernel", "bias", "kernel", "recurrent_kernel", "bias",
                     "kernel", "bias"]
    assert [tuple(w.shape) for w in r_model.weights] == [tuple(w.shape) for w in k_model.weights]
    for mine, theirs in zip(r_model.get_weights(), k_model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


# ----- masked token models (Embedding(mask_zero=True)) ------------------------------------------------
TOKEN_MODELS = {
    "embedding_lstm_stack": [("Embedding", {"input_dim": VOCAB, "output_dim": 8, "mask_zero": True}),
                             ("LSTM", {"units": 6, "return_sequences": True}), ("LSTM", {"units": 4}),
                             ("Dense", {"units": 1, "activation": "sigmoid"})],
    "embedding_gru_sequences": [("Embedding", {"input_dim": VOCAB, "output_dim": 8, "mask_zero": True}),
                                ("GRU", {"units": 5, "return_sequences": True})],
    "embedding_gru_reset_before": [("Embedding", {"input_dim": VOCAB, "output_dim": 8, "mask_zero": True}),
                                   ("GRU", {"units": 5, "reset_after": False})],
    "embedding_simple_rnn": [("Embedding", {"input_dim": VOCAB, "output_dim": 8, "mask_zero": True}),
                             ("SimpleRNN", {"units": 6}), ("Dense", {"units": 1})],
    "embedding_lstm_backwards_sequences": [("Embedding", {"input_dim": VOCAB, "output_dim": 8, "mask_zero": True}),
                                           ("LSTM", {"units": 5, "go_backwards": True, "return_sequences": True})],
    "embedding_bidirectional_stack": [
        ("Embedding", {"input_dim": VOCAB, "output_dim": 8, "mask_zero": True}),
        ("Bidirectional", {"layer": ("LSTM", {"units": 4, "return_sequences": True})}),
        ("Bidirectional", {"layer": ("GRU", {"units": 3})}), ("Dense", {"units": 1, "activation": "sigmoid"})],
    "embedding_bidirectional_sequences_sum": [
        ("Embedding", {"input_dim": VOCAB, "output_dim": 8, "mask_zero": True}),
        ("Bidirectional", {"layer": ("SimpleRNN", {"units": 4, "return_sequences": True}), "merge_mode": "sum"})],
    "embedding_unmasked_lstm": [("Embedding", {"input_dim": VOCAB, "output_dim": 8}), ("LSTM", {"units": 6})],
}


@pytest.mark.parametrize("use_fused", ["auto", False])
@pytest.mark.parametrize("layout", ["right", "left", "holes"])
@pytest.mark.parametrize("name", list(TOKEN_MODELS))
def test_masked_token_models_agree_with_keras(name, layout, use_fused):
    k_model, r_model = build_pair((T,), TOKEN_MODELS[name], use_fused, dtype="int32")
    assert_predictions_agree(k_model, r_model, token_inputs(layout))
    assert r_model.count_params() == k_model.count_params()


# ----- training steps --------------------------------------------------------------------------------
TRAINING = {
    "lstm_dense_mse_rmsprop": ((T, F), "float32", FLOAT_MODELS["lstm_dense"], "mse", "rmsprop"),
    "gru_stack_adam": ((T, F), "float32", FLOAT_MODELS["gru_stack_softmax"], "categorical_crossentropy", "adam"),
    "masked_lstm_stack_rmsprop": ((T,), "int32", TOKEN_MODELS["embedding_lstm_stack"], "binary_crossentropy",
                                  "rmsprop"),
    "masked_bidirectional_adam": ((T,), "int32", TOKEN_MODELS["embedding_bidirectional_stack"],
                                  "binary_crossentropy", "adam"),
}


@pytest.mark.parametrize("name", list(TRAINING))
def test_training_steps_agree_with_keras(name):
    shape, dtype, spec, loss, optimizer = TRAINING[name]
    k_model, r_model = build_pair(shape, spec, dtype=dtype)
    rng = np.random.default_rng(5)
    x = token_inputs("right", seed=6) if dtype == "int32" else float_inputs(6)
    units = spec[-1][1]["units"]
    y = rng.random((B, units)).astype(np.float32)
    if loss == "categorical_crossentropy":
        y = np.eye(units, dtype=np.float32)[rng.integers(0, units, B)]
    elif loss == "binary_crossentropy":
        y = (y > 0.5).astype(np.float32)
    k_model.compile(optimizer=optimizer, loss=loss)
    r_model.compile(optimizer=optimizer, loss=loss)
    for _ in range(3):
        k_loss = float(np.asarray(k_model.train_on_batch(x, y)))
        r_loss = r_model.train_on_batch(x, y)
        assert r_loss == pytest.approx(k_loss, rel=1e-4, abs=1e-6)
    for mine, theirs in zip(r_model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
    assert_predictions_agree(k_model, r_model, x)


# ----- parameter counts and the lecture's summary ---------------------------------------------------
def test_lecture_summary_numbers():
    """Keras: Embedding(10000, 32) -> 320,000 parameters, SimpleRNN(32) -> 2,080."""
    k_model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(10000, 32),
                                keras.layers.SimpleRNN(32)])
    r_model = rnnkit.Sequential([rnnkit.Input((None,), dtype="int32"), rnnkit.layers.Embedding(10000, 32),
                                 rnnkit.layers.SimpleRNN(32)])
    assert [layer.count_params() for layer in k_model.layers] == [320_000, 2_080]
    assert [layer.count_params() for layer in r_model.layers] == [320_000, 2_080]
    lines = []
    r_model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for number in ("320,000", "2,080", "322,080"):
        assert number in text, text
    assert [w.shape for w in r_model.get_weights()] == [w.shape for w in k_model.get_weights()]


@pytest.mark.parametrize("name,spec,counts", [
    ("lstm", [("LSTM", {"units": 32})], [4 * (32 * 14 + 32 * 32 + 32)]),
    ("gru_after", [("GRU", {"units": 32})], [3 * (32 * 14 + 32 * 32 + 2 * 32)]),
    ("gru_before", [("GRU", {"units": 32, "reset_after": False})], [3 * (32 * 14 + 32 * 32 + 32)]),
    ("bidirectional", [("Bidirectional", {"layer": ("LSTM", {"units": 32})})], [2 * 4 * (32 * 14 + 32 * 32 + 32)]),
    ("stack", [("GRU", {"units": 32, "return_sequences": True}), ("GRU", {"units": 64}), ("Dense", {"units": 1})],
     [3 * (32 * 14 + 32 * 32 + 64), 3 * (64 * 32 + 64 * 64 + 128), 65]),
])
def test_parameter_counts_match_keras(name, spec, counts):
    k_model, r_model = build_pair((120, 14), spec)
    assert [layer.count_params() for layer in r_model.layers] == [layer.count_params() for layer in k_model.layers]
    assert [layer.count_params() for layer in r_model.layers] == counts


# ----- masked sequence outputs: padded steps count neither in the loss nor in the metrics ----------
@pytest.mark.parametrize("loss, metric", [("sparse_categorical_crossentropy", "accuracy"), ("mse", "mae")])
def test_masked_sequence_loss_and_metrics_agree_with_keras(loss, metric):
    head = VOCAB if loss.startswith("sparse") else 1
    spec = [("Embedding", {"input_dim": VOCAB, "output_dim": 8, "mask_zero": True}),
            ("LSTM", {"units": 6, "return_sequences": True}),
            ("Dense", {"units": head, "activation": "softmax" if head > 1 else None})]
    k_model, r_model = build_pair((T,), spec, dtype="int32")
    x = token_inputs("right", seed=7)
    rng = np.random.default_rng(8)
    y = rng.integers(0, VOCAB, (B, T)) if head > 1 else rng.standard_normal((B, T, 1)).astype(np.float32)
    k_model.compile(optimizer="rmsprop", loss=loss, metrics=[metric])
    r_model.compile(optimizer="rmsprop", loss=loss, metrics=[metric])
    k_eval = np.asarray(k_model.evaluate(x, y, verbose=0), dtype=np.float64)
    r_eval = np.asarray(r_model.evaluate(x, y, verbose=0), dtype=np.float64)
    np.testing.assert_allclose(r_eval, k_eval, rtol=1e-4, atol=1e-6)
    for _ in range(2):
        k_out = np.asarray(k_model.train_on_batch(x, y), dtype=np.float64)
        r_out = np.asarray(r_model.train_on_batch(x, y), dtype=np.float64)
        np.testing.assert_allclose(r_out, k_out, rtol=1e-4, atol=1e-6)
    for mine, theirs in zip(r_model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
    # the padded steps really are ignored: changing their targets changes nothing
    y_other = y.copy()
    y_other[x == 0] = 0 if head > 1 else 100.0
    np.testing.assert_allclose(np.asarray(r_model.evaluate(x, y_other, verbose=0)),
                               np.asarray(r_model.evaluate(x, y, verbose=0)), rtol=1e-6)
