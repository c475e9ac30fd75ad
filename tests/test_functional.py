"""The functional API's mechanics: several inputs and outputs in fit/evaluate/predict, History
names, saving graphs and custom layers, summary of graphs, cutting models from a trained one."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit import layers  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_names():
    rnnkit.utils.clear_session()
    rnnkit.utils.set_random_seed(0)


def two_in_two_out(lib):
    a = lib.Input(shape=(5, 3), name="a")
    b = lib.Input(shape=(4,), name="b")
    x = lib.layers.GRU(6, name="encoder")(a)
    x = lib.layers.Concatenate(name="merge")([x, b])
    score = lib.layers.Dense(1, activation="sigmoid", name="score")(x)
    kind = lib.layers.Dense(3, activation="softmax", name="kind")(x)
    return lib.Model([a, b], [score, kind], name="two_heads")


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = [rng.normal(size=(n, 5, 3)).astype("float32"), rng.normal(size=(n, 4)).astype("float32")]
    y = [(rng.random((n, 1)) > 0.5).astype("float32"), np.eye(3, dtype="float32")[rng.integers(0, 3, n)]]
    return x, y


def test_fit_with_lists_and_dicts_names_the_logs_as_keras():
    keras = pytest.importorskip("keras")
    x, y = data()
    histories = []
    for lib in (keras, rnnkit):
        model = two_in_two_out(lib)
        model.compile(optimizer="sgd", loss=["binary_crossentropy", "categorical_crossentropy"],
                      loss_weights=[1.0, 0.5], metrics=[["accuracy"], ["accuracy"]])
        histories.append(model.fit(x, y, epochs=1, batch_size=8, validation_split=0.25, verbose=0).history)
    assert sorted(histories[1]) == sorted(histories[0])

    model = two_in_two_out(rnnkit)
    model.compile(optimizer="sgd", loss={"score": "binary_crossentropy", "kind": "categorical_crossentropy"})
    logs = model.fit({"b": x[1], "a": x[0]}, {"kind": y[1], "score": y[0]}, epochs=1, verbose=0).history
    assert {"loss", "score_loss", "kind_loss"} <= set(logs)
    score, kind = model.predict(x, verbose=0)
    assert score.shape == (24, 1) and kind.shape == (24, 3)


def test_total_loss_is_the_weighted_sum_of_the_outputs_losses():
    x, y = data()
    model = two_in_two_out(rnnkit)
    model.compile(optimizer="sgd", loss=["binary_crossentropy", "categorical_crossentropy"], loss_weights=[1.0, 0.5])
    total, score_loss, kind_loss = model.evaluate(x, y, verbose=0)
    assert total == pytest.approx(score_loss + 0.5 * kind_loss, rel=1e-5)


def test_validation_split_splits_every_array():
    x, y = data(n=20)
    model = two_in_two_out(rnnkit)
    model.compile(optimizer="sgd", loss=["mse", "mse"])
    seen = []
    cb = rnnkit.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(logs))
    steps = []
    batch_cb = rnnkit.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: steps.append(batch))
    model.fit(x, y, epochs=1, batch_size=5, validation_split=0.2, verbose=0, callbacks=[cb, batch_cb])
    assert "val_loss" in seen[0] and len(steps) == 4  # 16 training samples of every array, batches of 5


def test_wrong_number_of_arrays_is_a_clear_error():
    x, y = data()
    model = two_in_two_out(rnnkit)
    model.compile(optimizer="sgd", loss=["mse", "mse"])
    with pytest.raises(ValueError, match="takes 2 input"):
        model.predict([x[0]], verbose=0)
    with pytest.raises(ValueError, match="has 2 outputs but was given 3 target arrays"):
        model.fit(x, y + [y[0]], verbose=0)
    with pytest.raises(ValueError, match="different numbers of samples"):
        model.fit([x[0][:10], x[1]], y, verbose=0)


def test_siamese_model_shares_weights_and_round_trips_through_save(tmp_path):
    left, right = rnnkit.Input(shape=(None, 2)), rnnkit.Input(shape=(None, 2))
    encoder = layers.LSTM(5, name="shared")
    similarity = layers.Dot(axes=1, normalize=True)([encoder(left), encoder(right)])
    model = rnnkit.Model([left, right], similarity)
    assert model.count_params() == encoder.count_params() == 4 * (2 * 5 + 5 * 5 + 5)
    x = np.random.default_rng(0).normal(size=(3, 6, 2)).astype("float32")
    np.testing.assert_allclose(model.predict([x, x], verbose=0), 1.0, rtol=1e-5)
    path = tmp_path / "siamese.rnnkit"
    model.save(path)
    loaded = rnnkit.load_model(path)
    y = x[::-1].copy()
    np.testing.assert_array_equal(loaded.predict([x, y], verbose=0), model.predict([x, y], verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_models_cut_from_a_trained_model_share_its_layers():
    inputs = rnnkit.Input(shape=(None, 3))
    hidden = layers.LSTM(4, return_sequences=True, name="lstm_a")(inputs)
    outputs = layers.Dense(1)(layers.LSTM(2)(hidden))
    model = rnnkit.Model(inputs, outputs)
    features = rnnkit.Model(model.input, model.get_layer("lstm_a").output)
    x = np.random.default_rng(1).normal(size=(2, 7, 3)).astype("float32")
    expected = model.get_layer("lstm_a")(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(features.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert features.layers[1] is model.layers[1]


def test_summary_of_a_graph_shows_connections_and_whole_names():
    model = two_in_two_out(rnnkit)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text
    assert "merge (Concatenate)" in text and "encoder[0][0], b[0][0]" in text
    wide = rnnkit.Sequential([rnnkit.Input(shape=(4, 2)),
                              layers.Bidirectional(layers.LSTM(3), name="a_rather_long_bidirectional_name")])
    lines = []
    wide.summary(print_fn=lines.append)
    assert any("a_rather_long_bidirectional_name (Bidirectional)" in line for line in lines)


class Scale(rnnkit.layers.Layer):
    """A Keras-style custom layer: build/call/add_weight, no compute_output_shape."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, inputs):
        return inputs[:, -1] * self.w * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_custom_layer_output_shape_is_inferred_and_the_model_loads_with_custom_objects(tmp_path):
    model = rnnkit.Sequential([rnnkit.Input(shape=(6, 3)), layers.GRU(4, return_sequences=True), Scale(2.0),
                               layers.Dense(1)])
    assert model.layers[1].output.shape == (None, 4)
    x = np.random.default_rng(2).normal(size=(3, 6, 3)).astype("float32")
    path = tmp_path / "custom.rnnkit"
    model.save(path)
    with pytest.raises(ValueError, match="Unknown layer class 'Scale'"):
        rnnkit.load_model(path)
    loaded = rnnkit.load_model(path, custom_objects={"Scale": Scale})
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


class TwoLayerModel(rnnkit.Model):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.rnn = layers.LSTM(units)
        self.head = layers.Dense(1)

    def call(self, inputs):
        return self.head(self.rnn(inputs))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_subclassed_model_is_rebuilt_before_its_weights_load(tmp_path):
    model = TwoLayerModel(units=3)
    x = np.random.default_rng(3).normal(size=(2, 5, 2)).astype("float32")
    expected = model.predict(x, verbose=0)
    path = tmp_path / "sub.rnnkit"
    model.save(path)
    rnnkit.saving.register_keras_serializable(package="tests")(TwoLayerModel)
    loaded = rnnkit.load_model(path)
    assert isinstance(loaded, TwoLayerModel) and loaded.units == 3
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)


def test_masks_travel_through_a_graph_into_the_loss():
    tokens = rnnkit.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(20, 4, mask_zero=True)(tokens)
    a = layers.LSTM(3, return_sequences=True)(x)
    b = layers.GRU(3, return_sequences=True)(x)
    out = layers.TimeDistributed(layers.Dense(1))(layers.concatenate([a, b]))
    model = rnnkit.Model(tokens, out)
    ids = np.array([[3, 4, 0, 0], [5, 6, 7, 0]])
    y = model(torch.tensor(ids))
    np.testing.assert_array_equal(y._keras_mask.numpy(), ids != 0)
    full = model.predict(ids, verbose=0)
    np.testing.assert_allclose(model.predict(ids[:, :3], verbose=0)[:, :2], full[:, :2], rtol=1e-5, atol=1e-6)


def test_plot_model_writes_a_png_of_the_graph(tmp_path):
    model = two_in_two_out(rnnkit)
    path = rnnkit.utils.plot_model(model, tmp_path / "model.png", show_shapes=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no graph to draw"):
        rnnkit.utils.plot_model(rnnkit.Sequential([layers.Dense(1)]), tmp_path / "unbuilt.png")


def test_a_model_that_takes_raw_strings_trains_predicts_and_round_trips(tmp_path):
    texts = np.array(["a good film", "a bad film", "good good", "bad plot", "fine acting", "terrible"] * 4)
    y = np.array([1, 0, 1, 0, 1, 0] * 4, "float32")
    vectorize = layers.TextVectorization(max_tokens=20, output_sequence_length=4)
    vectorize.adapt(texts)
    inputs = rnnkit.Input(shape=(1,), dtype="string")
    x = layers.LSTM(4)(layers.Embedding(20, 4, mask_zero=True)(vectorize(inputs)))
    model = rnnkit.Model(inputs, layers.Dense(1, activation="sigmoid")(x))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(texts, y, epochs=1, batch_size=4, verbose=0, validation_split=0.25)
    model.save(tmp_path / "text.rnnkit")
    probe = np.array(["a good plot"])
    np.testing.assert_array_equal(rnnkit.load_model(tmp_path / "text.rnnkit").predict(probe, verbose=0),
                                  model.predict(probe, verbose=0))
    numeric = rnnkit.Sequential([rnnkit.Input((3,)), layers.Dense(1)])
    with pytest.raises(ValueError, match="got text for input"):
        numeric.predict(texts[:3], verbose=0)


def test_fit_on_a_dataset_a_mapped_dataset_and_arrays_gives_the_same_weights():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 6, 3)).astype("float32")
    y = rng.normal(size=(40, 1)).astype("float32")
    sources = {
        "arrays": lambda: dict(x=x, y=y, batch_size=8),
        "dataset": lambda: dict(x=rnnkit.data.Dataset.from_tensor_slices((x, y)).batch(8)),
        "mapped": lambda: dict(x=rnnkit.data.Dataset.from_tensor_slices((x * 2, y)).map(
            lambda a, b: (a / 2, b)).batch(8)),
    }
    weights = {}
    for name, make in sources.items():
        rnnkit.utils.set_random_seed(0)
        model = rnnkit.Sequential([rnnkit.Input((6, 3)), layers.GRU(4), layers.Dense(1)])
        model.compile(optimizer=rnnkit.optimizers.SGD(0.1), loss="mse")
        model.fit(**make(), epochs=2, shuffle=False, verbose=0)
        weights[name] = model.get_weights()
    for name in ("dataset", "mapped"):
        for a, b in zip(weights[name], weights["arrays"]):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


class MinimalCell(rnnkit.layers.Layer):
    """Keras's MinimalRNNCell: a user cell with state_size and call(inputs, states)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel")

    def call(self, inputs, states):
        output = inputs @ self.kernel + states[0] @ self.recurrent_kernel
        return output, [output]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_rnn_with_built_in_user_and_stacked_cells_round_trips_through_save(tmp_path):
    inputs = rnnkit.Input(shape=(None, 3))
    x = layers.RNN(layers.LSTMCell(4), return_sequences=True)(inputs)
    x = layers.RNN(layers.StackedRNNCells([layers.GRUCell(3), MinimalCell(2)]), return_sequences=True)(x)
    outputs = layers.Bidirectional(layers.RNN(MinimalCell(2)))(x)
    model = rnnkit.Model(inputs, outputs)
    x = np.random.default_rng(6).normal(size=(2, 5, 3)).astype("float32")
    model.save(tmp_path / "cells.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "cells.rnnkit", custom_objects={"MinimalCell": MinimalCell})
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras_module_paths_are_rnnkit_own_functions():
    assert rnnkit.models.load_model is rnnkit.saving.load_model is rnnkit.load_model
    assert rnnkit.models.save_model is rnnkit.saving.save_model
    assert rnnkit.saving.register_keras_serializable is rnnkit.registry.register_keras_serializable
    assert rnnkit.Layer is rnnkit.layers.Layer
    assert rnnkit.utils.plot_model is rnnkit.utils.model_plot.plot_model


def test_regularizers_activity_penalties_and_constraints_train_as_keras():
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(0).normal(size=(16, 5, 3)).astype("float32")
    y = np.ones((16, 1), "float32")
    results, start = [], None
    for lib in (keras, rnnkit):
        model = lib.Sequential([
            lib.Input((5, 3)), lib.layers.Flatten(),
            lib.layers.Dense(4, kernel_regularizer=lib.regularizers.l2(0.1),
                             activity_regularizer=lib.regularizers.l1(0.01),
                             kernel_constraint=lib.constraints.max_norm(0.5)),
            lib.layers.Dense(1)])
        if start is None:
            start = model.get_weights()
        model.set_weights(start)
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse")
        losses = [model.evaluate(x, y, verbose=0), model.train_on_batch(x, y), model.train_on_batch(x, y)]
        results.append((model, losses))
    (k_model, k_losses), (r_model, r_losses) = results
    np.testing.assert_allclose(r_losses, k_losses, rtol=1e-5)
    for mine, theirs in zip(r_model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    assert np.linalg.norm(r_model.get_weights()[0], axis=0).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("weighting", ["sample_weight", "class_weight"])
def test_sample_and_class_weights_train_as_keras(weighting):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 5, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 24)]
    sw = rng.uniform(0.1, 2, 24).astype("float32")
    extra = {"sample_weight": sw} if weighting == "sample_weight" else {"class_weight": {0: 1.0, 1: 3.0, 2: 0.5}}
    results, start = [], None
    for lib in (keras, rnnkit):
        model = lib.Sequential([lib.Input((5, 3)), lib.layers.GRU(4), lib.layers.Dense(3, activation="softmax")])
        start = model.get_weights() if start is None else start
        model.set_weights(start)
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                            validation_data=(x[:8], y[:8], sw[:8]), **extra).history
        results.append((history, model.evaluate(x, y, sample_weight=sw, verbose=0), model.get_weights()))
    (k_hist, k_eval, k_weights), (r_hist, r_eval, r_weights) = results
    for key in k_hist:
        np.testing.assert_allclose(r_hist[key], k_hist[key], rtol=1e-5)
    np.testing.assert_allclose(r_eval, k_eval, rtol=1e-5)
    for mine, theirs in zip(r_weights, k_weights):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
