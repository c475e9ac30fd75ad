"""Sequential, summary, training, saving: the lecture's models and Keras's API contract."""
import os
import re
import zipfile

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.layers import (GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, Flatten, RepeatVector,
                           SimpleRNN, TimeDistributed)
from rnnkit.models import Sequential
from rnnkit.saving import ModelFileError


@pytest.fixture(autouse=True)
def fresh_names():
    rnnkit.utils.clear_session()
    rnnkit.utils.set_random_seed(0)


def summary_text(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def test_lecture_embedding_simple_rnn_summary():
    model = Sequential()
    model.add(Embedding(10000, 32))
    model.add(SimpleRNN(32))
    assert "0 (unbuilt)" in summary_text(model)  # Keras 3: no input shape yet, so no weights
    model.build((None, None))
    text = summary_text(model)
    assert "embedding (Embedding)        (None, None, 32)          320,000" in text
    assert "simple_rnn (SimpleRNN)       (None, 32)                2,080" in text
    assert "Total params: 322,080" in text
    assert "Trainable params: 322,080" in text
    assert "Non-trainable params: 0" in text
    assert model.count_params() == 322080 == 10000 * 32 + (32 * 32 + 32 * 32 + 32)


def test_lecture_stacked_simple_rnn_summary():
    model = Sequential()
    model.add(Embedding(10000, 32))
    for _ in range(4):
        model.add(SimpleRNN(32, return_sequences=True))
    model.add(SimpleRNN(32))
    model.build((None, None))
    text = summary_text(model)
    names = [f"simple_rnn{'' if i == 0 else f'_{i}'} (SimpleRNN)" for i in range(5)]
    for name in names:
        assert name in text
    assert text.count("(None, None, 32)") == 5  # embedding + four return_sequences layers
    assert "Total params: 330,400" in text


def test_lecture_lstm_batch_input_shape_summary():
    model = Sequential()
    model.add(LSTM(1, batch_input_shape=(None, 5, 1), return_sequences=True))
    model.add(LSTM(1, return_sequences=False))
    text = summary_text(model)
    assert "lstm (LSTM)                  (None, 5, 1)              12" in text
    assert "lstm_1 (LSTM)                (None, 1)                 12" in text
    assert model.count_params() == 24


@pytest.mark.parametrize("first", [
    lambda: [rnnkit.Input(shape=(5, 1))],
    lambda: [],
])
def test_input_and_input_shape_build_the_model(first):
    if first():
        model = Sequential(first() + [LSTM(1, return_sequences=True), LSTM(1)])
    else:
        model = Sequential([LSTM(1, input_shape=(5, 1), return_sequences=True), LSTM(1)])
    assert model.built
    assert model.count_params() == 24
    assert model.predict(np.zeros((3, 5, 1), "float32")).shape == (3, 1)


def test_lazy_build_from_first_batch_and_unbuilt_summary():
    model = Sequential([GRU(4), Dense(2)])
    text = summary_text(model)
    assert "gru (GRU)                    ?                         0 (unbuilt)" in text
    assert "Total params: 0" in text
    model.predict(np.zeros((2, 7, 3), "float32"))
    assert model.built and model.count_params() == (3 * 12 + 4 * 12 + 2 * 12) + (4 * 2 + 2)


def test_layers_are_torch_modules():
    model = Sequential([rnnkit.Input(shape=(None, 3)), LSTM(4), Dense(1)])
    assert isinstance(model, torch.nn.Module) and isinstance(model.layers[0], torch.nn.Module)
    names = [n for n, _ in model.named_parameters()]
    assert names == ["_layers.0.cell.kernel", "_layers.0.cell.recurrent_kernel", "_layers.0.cell.bias",
                     "_layers.1.kernel", "_layers.1.bias"]
    out = model(torch.randn(2, 6, 3))
    out.sum().backward()
    assert model.layers[0].kernel.grad is not None


def test_get_set_weights_round_trip_in_keras_order():
    a = Sequential([rnnkit.Input(shape=(None, 3)), Bidirectional(GRU(4, return_sequences=True)),
                    TimeDistributed(Dense(2))])
    b = Sequential([rnnkit.Input(shape=(None, 3)), Bidirectional(GRU(4, return_sequences=True)),
                    TimeDistributed(Dense(2))])
    shapes = [w.shape for w in a.get_weights()]
    assert shapes == [(3, 12), (4, 12), (2, 12), (3, 12), (4, 12), (2, 12), (8, 2), (2,)]
    b.set_weights(a.get_weights())
    x = np.random.randn(3, 5, 3).astype("float32")
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    with pytest.raises(ValueError, match="expects 6 weight arrays.*but got 8"):
        b.layers[0].set_weights(a.get_weights())
    bad = a.get_weights()
    bad[0] = bad[0][:2]
    with pytest.raises(ValueError, match=r"shape \(3, 12\)"):
        b.set_weights(bad)


def _task(n=512, steps=10):
    """Sum-of-sequence regression: learnable by a small RNN in a few epochs."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(n, steps, 1)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None] / steps ** 0.5
    return x, y


def test_learning_reaches_stated_loss():
    """A GRU learns a running sum: MSE below 0.02 (from ~1.0) within 30 epochs."""
    x, y = _task()
    model = Sequential([rnnkit.Input(shape=(10, 1)), GRU(16), Dense(1)])
    model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    start = model.evaluate(x, y, verbose=0)[0]
    history = model.fit(x, y, batch_size=32, epochs=30, verbose=0)
    assert start > 0.25
    assert history.history["loss"][-1] < 0.02
    assert set(history.history) == {"loss", "mae"}


def test_binary_accuracy_learning_with_masked_embeddings():
    """Embedding(mask_zero) + LSTM classifies whether token 7 occurs in a padded sequence."""
    rng = np.random.default_rng(1)
    x = rng.integers(1, 10, size=(600, 12))
    lengths = rng.integers(3, 13, size=600)
    for i, n in enumerate(lengths):
        x[i, n:] = 0
    y = np.array([7 in row[row > 0] for row in x], dtype="float32")
    model = Sequential([Embedding(10, 8, mask_zero=True), LSTM(16), Dense(1, activation="sigmoid")])
    model.compile(optimizer=rnnkit.optimizers.Adam(0.02), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=15, verbose=0, validation_split=0.2)
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.95
    assert model.layers[1].execution_path.startswith("fused")


def test_fit_accepts_arrays_tensors_dataloaders_and_generators():
    x, y = _task(128)
    model = Sequential([rnnkit.Input(shape=(10, 1)), SimpleRNN(4), Dense(1)])
    model.compile("sgd", "mse")
    model.fit(torch.from_numpy(x), torch.from_numpy(y), epochs=1, verbose=0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                         batch_size=16)
    history = model.fit(loader, epochs=2, verbose=0, validation_data=loader)
    assert len(history.history["val_loss"]) == 2

    def gen():
        while True:
            yield x[:16], y[:16]

    history = model.fit(gen(), steps_per_epoch=3, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_progress_bar_and_verbose_2(capsys):
    x, y = _task(64)
    model = Sequential([rnnkit.Input(shape=(10, 1)), SimpleRNN(4), Dense(1)])
    model.compile("rmsprop", "mse", metrics=["mae"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=1, validation_data=(x, y))
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "4/4 [==============================]" in out and "val_mae:" in out
    assert out.count("4/4 [") == 2  # one final line per epoch when not a terminal
    model.fit(x, y, batch_size=16, epochs=1, verbose=2)
    assert re.search(r"\d+(ms|us)/step - loss:", capsys.readouterr().out)  # Keras's unit follows the step time


def test_nan_in_fit_inputs_is_a_clear_error():
    x, y = _task(32)
    x[3, 4, 0] = np.nan
    model = Sequential([rnnkit.Input(shape=(10, 1)), SimpleRNN(4), Dense(1)])
    model.compile("rmsprop", "mse")
    with pytest.raises(ValueError, match=r"x contains 1 NaN .*index \(3, 4, 0\)"):
        model.fit(x, y, verbose=0)
    y2 = y.copy()
    y2[0] = np.inf
    with pytest.raises(ValueError, match="y contains 1 NaN or infinite"):
        model.fit(_task(32)[0], y2, verbose=0)


def test_non_finite_loss_stops_training_before_the_update():
    model = Sequential([rnnkit.Input(shape=(4, 2)), LSTM(3), Dense(1)])
    model.compile("rmsprop", "mse")
    x, y = np.ones((5, 4, 2), "float32"), np.ones((5, 1), "float32")
    model.train_on_batch(x, y)
    weights = model.get_weights()
    weights[-2][:] = np.inf  # the head's kernel: the prediction, and so the loss, is no longer finite
    model.set_weights(weights)
    steps = model.optimizer.iterations
    with pytest.raises(FloatingPointError, match="loss became"):
        model.train_on_batch(x, y)
    assert model.optimizer.iterations == steps
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_wrong_rank_and_feature_size_name_the_layer():
    model = Sequential([rnnkit.Input(shape=(10, 3)), LSTM(4, name="encoder"), Dense(1)])
    with pytest.raises(ValueError, match=r"'encoder'.*3-D input.*\(4, 10\)"):
        model.predict(np.zeros((4, 10), "float32"))
    with pytest.raises(ValueError, match=r"'encoder'.*last dimension 3.*\(4, 10, 5\)"):
        model.predict(np.zeros((4, 10, 5), "float32"))


def test_unknown_names_suggest_fixes():
    with pytest.raises(TypeError, match="(?i)did you mean 'return_sequences'"):
        LSTM(1, return_sequence=True)
    with pytest.raises(TypeError, match="(?i)did you mean 'batch_input_shape'"):
        LSTM(1, batch_input_shap=(None, 5, 1))
    model = Sequential([rnnkit.Input(shape=(2,)), Dense(1)])
    with pytest.raises(ValueError, match="(?i)did you mean 'rmsprop'"):
        model.compile("rmsprob", "mse")
    with pytest.raises(ValueError, match="(?i)did you mean"):
        model.compile("adam", "mean_squared_eror")
    with pytest.raises(ValueError, match="(?i)did you mean 'relu'"):
        Dense(2, activation="rellu")


def test_save_load_round_trip_identical_predictions(tmp_path):
    model = Sequential([Embedding(50, 8, mask_zero=True), Bidirectional(LSTM(6, return_sequences=True)),
                        GRU(5, reset_after=False), Dropout(0.2), Dense(3, activation="softmax")])
    model.compile(rnnkit.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).integers(0, 50, size=(40, 9))
    y = np.random.default_rng(1).integers(0, 3, size=40)
    model.fit(x, y, epochs=2, verbose=0)
    model.metadata = {"task": "test", "vocab": ["a", "b"]}
    path = tmp_path / "m.rnnkit"
    model.save(path)
    loaded = rnnkit.load_model(path)
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    assert loaded.metadata == {"task": "test", "vocab": ["a", "b"]}
    assert [type(la).__name__ for la in loaded.layers] == [type(la).__name__ for la in model.layers]
    # optimizer state restored: one more identical step on both gives identical weights
    rnnkit.utils.set_random_seed(5)  # same dropout masks in both steps
    model.train_on_batch(x[:8], y[:8])
    rnnkit.utils.set_random_seed(5)
    loaded.train_on_batch(x[:8], y[:8])
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_save_is_atomic_and_corrupt_files_are_rejected(tmp_path, monkeypatch):
    model = Sequential([rnnkit.Input(shape=(4, 2)), SimpleRNN(3), Dense(1)])
    path = tmp_path / "m.rnnkit"
    model.save(path)
    good = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)  # interrupted mid-write
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["m.rnnkit"]  # no temp file left behind

    truncated = tmp_path / "truncated.rnnkit"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelFileError, match="truncated or not a zip"):
        rnnkit.load_model(truncated)
    foreign = tmp_path / "foreign.rnnkit"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(ModelFileError, match="not an rnnkit model"):
        rnnkit.load_model(foreign)
    flipped = bytearray(good)
    start = good.find(b"model.safetensors") + 60
    flipped[start:start + 40] = bytes(40)
    damaged = tmp_path / "damaged.rnnkit"
    damaged.write_bytes(bytes(flipped))
    with pytest.raises(ModelFileError):
        rnnkit.load_model(damaged)
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    with pytest.raises(ModelFileError):
        rnnkit.load_model(text)


def test_save_weights_and_load_weights(tmp_path):
    a = Sequential([rnnkit.Input(shape=(4, 2)), LSTM(3), Dense(1)])
    b = Sequential([rnnkit.Input(shape=(4, 2)), LSTM(3), Dense(1)])
    a.save_weights(tmp_path / "w.safetensors")
    b.load_weights(tmp_path / "w.safetensors")
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    c = Sequential([rnnkit.Input(shape=(4, 2)), LSTM(4), Dense(1)])
    with pytest.raises(ModelFileError, match="shape"):
        c.load_weights(tmp_path / "w.safetensors")


def test_callbacks_early_stopping_checkpoint_and_csv(tmp_path):
    x, y = _task(128)
    model = Sequential([rnnkit.Input(shape=(10, 1)), GRU(8), Dense(1)])
    model.compile(rnnkit.optimizers.Adam(0.01), "mse", metrics=["mae"])
    ckpt = tmp_path / "best.rnnkit"
    history = model.fit(x, y, epochs=40, verbose=0, validation_data=(x[:32], y[:32] + 5.0),
                        callbacks=[rnnkit.callbacks.EarlyStopping(monitor="val_mae", patience=2,
                                                                  restore_best_weights=True),
                                   rnnkit.callbacks.ModelCheckpoint(str(ckpt), monitor="val_mae",
                                                                    save_best_only=True),
                                   rnnkit.callbacks.CSVLogger(str(tmp_path / "log.csv"))])
    epochs = len(history.history["loss"])
    assert epochs < 40
    best = min(history.history["val_mae"])
    assert rnnkit.load_model(ckpt).evaluate(x[:32], y[:32] + 5.0, verbose=0)[1] == pytest.approx(best, rel=1e-5)
    assert model.evaluate(x[:32], y[:32] + 5.0, verbose=0)[1] == pytest.approx(best, rel=1e-5)
    assert len((tmp_path / "log.csv").read_text().strip().splitlines()) == epochs + 1


def test_other_layers_shapes():
    model = Sequential([rnnkit.Input(shape=(6,)), RepeatVector(4), LSTM(3, return_sequences=True),
                        TimeDistributed(Dense(2)), Flatten()])
    text = summary_text(model)
    assert "(None, 4, 6)" in text and "(None, 4, 3)" in text and "(None, 4, 2)" in text and "(None, 8)" in text
    assert model.predict(np.zeros((2, 6), "float32")).shape == (2, 8)


def test_subclassed_model_trains_with_the_same_fit():
    class Tiny(rnnkit.Model):
        def __init__(self):
            super().__init__()
            self.rnn = GRU(8)
            self.head = Dense(1)

        def call(self, inputs, training=None):
            return self.head(self.rnn(inputs))

    x, y = _task(128)
    model = Tiny()
    model.compile(rnnkit.optimizers.Adam(0.01), "mse")
    history = model.fit(x, y, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert len(model.get_weights()) == 5


def test_return_state_and_initial_state_in_sequence_to_sequence():
    encoder = LSTM(6, return_state=True)
    decoder = LSTM(6, return_sequences=True)
    x = torch.randn(2, 5, 3)
    out, h, c = encoder(x)
    torch.testing.assert_close(out, h)
    y = decoder(torch.randn(2, 4, 3), initial_state=[h, c])
    assert y.shape == (2, 4, 6)


def test_same_seed_same_training():
    x, y = _task(64)

    def train():
        rnnkit.utils.set_random_seed(42)
        model = Sequential([rnnkit.Input(shape=(10, 1)), LSTM(4, dropout=0.2), Dense(1)])
        model.compile("adam", "mse")
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        return model.get_weights()

    for a, b in zip(train(), train()):
        np.testing.assert_array_equal(a, b)


def test_model_reset_states_resets_stateful_layers():
    model = Sequential([rnnkit.Input(shape=(3, 2), batch_size=4), LSTM(3, stateful=True), Dense(1)])
    x = np.random.randn(4, 3, 2).astype("float32")
    first = model.predict(x, batch_size=4)
    assert not np.allclose(model.predict(x, batch_size=4), first)
    model.reset_states()
    np.testing.assert_allclose(model.predict(x, batch_size=4), first, rtol=1e-6)
