"""Keras's own files both ways: Keras 3.15 saves, rnnkit loads (and the reverse), with identical
predictions; Keras 3 ``.weights.h5``; Keras 2 ``.h5`` models in the documented layout; damaged files."""
import json
import os
import zipfile

os.environ["KERAS_BACKEND"] = "torch"

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_or_skip import import_keras  # noqa: E402

keras = import_keras()

import rnnkit  # noqa: E402
from rnnkit.saving import ModelFileError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
RTOL, ATOL = 1e-5, 1e-6


def sequential(K):
    return K.Sequential([K.Input((7, 3)), K.layers.Conv1D(4, 3, padding="causal", activation="relu"),
                         K.layers.GRU(5, return_sequences=True, reset_after=False),
                         K.layers.SimpleRNN(4, return_sequences=True), K.layers.LSTM(3), K.layers.Dense(2)])


def functional(K):
    tokens = K.Input((None,), dtype="int32", name="tokens")
    x = K.layers.Embedding(30, 6, mask_zero=True)(tokens)
    x = K.layers.Bidirectional(K.layers.LSTM(4, return_sequences=True))(x)
    a = K.layers.GRU(5)(x)
    b = K.layers.GRU(3, reset_after=False)(x)
    out = K.layers.Dense(1, activation="sigmoid")(K.layers.concatenate([a, b]))
    return K.Model(tokens, out)


def inputs(kind, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "sequential":
        return rng.normal(size=(4, 7, 3)).astype("float32")
    x = rng.integers(1, 30, size=(4, 6)).astype("int32")
    x[1, 4:] = 0
    x[2, 2:] = 0
    return x


def perturbed(model):
    rng = np.random.default_rng(1)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype("float32") for w in model.get_weights()])
    return model


BUILDERS = {"sequential": sequential, "functional": functional}


@pytest.mark.parametrize("kind", BUILDERS)
def test_keras_saves_rnnkit_loads(kind, tmp_path):
    model = perturbed(BUILDERS[kind](keras))
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.keras")
    loaded = rnnkit.load_model(tmp_path / "m.keras")
    x = inputs(kind)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), keras.ops.convert_to_numpy(model(x)),
                               rtol=RTOL, atol=ATOL)
    assert loaded.optimizer is not None and type(loaded.optimizer).__name__ == "Adam"
    model.save_weights(tmp_path / "m.weights.h5")
    fresh = BUILDERS[kind](rnnkit)
    fresh.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_allclose(fresh.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", BUILDERS)
def test_rnnkit_saves_keras_loads(kind, tmp_path):
    model = perturbed(BUILDERS[kind](rnnkit))
    model.compile(optimizer="rmsprop", loss="mse")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = inputs(kind)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), model.predict(x, verbose=0),
                               rtol=RTOL, atol=ATOL)
    model.save_weights(tmp_path / "r.weights.h5")
    fresh = BUILDERS[kind](keras)
    fresh.load_weights(tmp_path / "r.weights.h5")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fresh(x)), model.predict(x, verbose=0),
                               rtol=RTOL, atol=ATOL)


def test_keras2_h5_model_written_in_the_documented_layout(tmp_path):
    """tf.keras 2.x's model.save('m.h5'): model_config JSON and model_weights/<layer>/<weight names>."""
    rng = np.random.default_rng(2)
    weights = {"lstm": [rng.normal(size=s).astype("float32") for s in ((3, 16), (4, 16), (16,))],
               "dense": [rng.normal(size=s).astype("float32") for s in ((4, 1), (1,))]}
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 5, 3], "dtype": "float32",
                                                "sparse": False, "ragged": False, "name": "lstm_input"}},
        {"class_name": "LSTM", "config": {"name": "lstm", "trainable": True, "dtype": "float32", "units": 4,
                                          "return_sequences": False, "implementation": 2, "time_major": False,
                                          "unit_forget_bias": True, "kernel_regularizer": None}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 1, "activation": "linear",
                                           "dtype": "float32"}}]}}
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [b"lstm_input", b"lstm", b"dense"]
        group.create_group("lstm_input").attrs["weight_names"] = []
        for layer, names in (("lstm", ["kernel:0", "recurrent_kernel:0", "bias:0"]), ("dense", ["kernel:0", "bias:0"])):
            g = group.create_group(layer)
            full = [f"{layer}/{'lstm_cell/' if layer == 'lstm' else ''}{n}" for n in names]
            g.attrs["weight_names"] = [n.encode() for n in full]
            for name, value in zip(full, weights[layer]):
                g.create_dataset(name, data=value)
    model = rnnkit.load_model(path)
    reference = rnnkit.Sequential([rnnkit.Input((5, 3)), rnnkit.layers.LSTM(4), rnnkit.layers.Dense(1)])
    reference.set_weights(weights["lstm"] + weights["dense"])
    x = rng.normal(size=(3, 5, 3)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), reference.predict(x, verbose=0))


def test_damaged_and_mislabelled_files_give_clear_errors(tmp_path):
    model = sequential(rnnkit)
    model.save(tmp_path / "good.keras")
    data = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a readable .keras archive"):
        rnnkit.load_model(tmp_path / "cut.keras")
    (tmp_path / "cut.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(ModelFileError, match="not a readable HDF5"):
        rnnkit.load_model(tmp_path / "cut.h5")
    model.save(tmp_path / "mine.rnnkit")
    os.replace(tmp_path / "mine.rnnkit", tmp_path / "mine.keras")
    with pytest.raises(ModelFileError, match="rnnkit model under a Keras name"):
        rnnkit.load_model(tmp_path / "mine.keras")
    os.replace(tmp_path / "good.keras", tmp_path / "theirs.rnnkit")
    with pytest.raises(ModelFileError, match="Keras .keras archive under another name"):
        rnnkit.load_model(tmp_path / "theirs.rnnkit")
    with zipfile.ZipFile(tmp_path / "odd.keras", "w") as zf:
        entry = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None, 3], "name": "i"}},
            {"class_name": "GaussianNoise", "config": {"name": "noise", "stddev": 0.1}}]}}
        zf.writestr("config.json", json.dumps(entry))
        zf.writestr("model.weights.h5", b"")
        zf.writestr("metadata.json", "{}")
    with pytest.raises(ModelFileError, match="'noise' is a Keras GaussianNoise, which rnnkit does not have"):
        rnnkit.load_model(tmp_path / "odd.keras")


def broad(K):
    """Masks made by Masking, states into an RNN(cell), both attentions, normalisations, merges, reshapes."""
    a, b = K.Input((7, 4), name="a"), K.Input((5, 4), name="b")
    seq, h, c = K.layers.LSTM(6, return_sequences=True, return_state=True)(K.layers.Masking(0.0)(a))
    dec = K.layers.RNN(K.layers.GRUCell(6), return_sequences=True)(b, initial_state=[h])
    x = K.layers.Concatenate()([dec, K.layers.Attention()([dec, seq]), K.layers.AdditiveAttention()([dec, seq])])
    x = K.layers.BatchNormalization()(K.layers.TimeDistributed(K.layers.Dense(5))(K.layers.LayerNormalization()(x)))
    p, q = K.layers.GlobalAveragePooling1D()(x), K.layers.GlobalMaxPooling1D()(x)
    flat = K.layers.Flatten()(K.layers.Reshape((5, 5))(K.layers.Permute((2, 1))(x)))
    out = K.layers.Dense(2)(K.layers.Concatenate()([K.layers.Subtract()([p, q]), K.layers.Dot(axes=1, normalize=True)(
        [p, q]), flat]))
    return K.Model([a, b], out)


def test_a_broad_functional_model_moves_both_ways(tmp_path):
    rng = np.random.default_rng(3)
    x = [rng.normal(size=(3, 7, 4)).astype("float32"), rng.normal(size=(3, 5, 4)).astype("float32")]
    x[0][1, 5:] = 0  # masked steps
    model = perturbed(broad(keras))
    model.save(tmp_path / "k.keras")
    mine = rnnkit.load_model(tmp_path / "k.keras")
    expected = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(mine.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
    mine.save(tmp_path / "r.keras")
    back = keras.saving.load_model(tmp_path / "r.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(back(x)), expected, rtol=1e-5, atol=1e-5)
