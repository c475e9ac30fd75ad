"""Attention, AdditiveAttention, LayerNormalization, BatchNormalization and the global 1-D poolings
against Keras 3 itself (torch backend): Keras's weights loaded with set_weights, same inputs and masks,
same outputs, output masks, moving statistics and output shapes."""
import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere in this process

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from keras_or_skip import import_keras  # noqa: E402

keras = import_keras()

from keras.src.backend import get_keras_mask, set_keras_mask  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit import layers as R  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

RTOL, ATOL = 1e-5, 1e-6
B, TQ, TV, D = 3, 4, 6, 5


def arrays(*shapes, seed=0):
    g = np.random.default_rng(seed)
    return [g.normal(size=s).astype("float32") for s in shapes]


def lengths_mask(lengths, steps):
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def np_(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else keras.ops.convert_to_numpy(x)


def t(x):
    return None if x is None else torch.tensor(x)


def randomize(k_layer, seed=0):
    """Give a built Keras layer random weights (Keras's defaults are often all ones)."""
    g = np.random.default_rng(seed)
    k_layer.set_weights([g.uniform(0.5, 1.5, size=w.shape).astype("float32") for w in k_layer.get_weights()])


# ----- Attention / AdditiveAttention ---------------------------------------------------------------
ATTENTION_CASES = [
    ("Attention", {}), ("Attention", {"use_scale": True}), ("Attention", {"score_mode": "concat"}),
    ("Attention", {"score_mode": "concat", "use_scale": True}), ("AdditiveAttention", {}),
    ("AdditiveAttention", {"use_scale": False}),
]


def attention_pair(name, kwargs, n_inputs, seed=0):
    k_layer = getattr(keras.layers, name)(**kwargs)
    shapes = [(B, TQ, D), (B, TV, D), (B, TV, D)][:n_inputs]
    k_layer.build(shapes)
    randomize(k_layer, seed)
    r_layer = getattr(R, name)(**kwargs)
    r_layer.build(shapes)
    r_layer.built = True
    r_layer.set_weights(k_layer.get_weights())
    return k_layer, r_layer


@pytest.mark.parametrize("name,kwargs", ATTENTION_CASES)
@pytest.mark.parametrize("n_inputs", [2, 3])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_keras(name, kwargs, n_inputs, masked, causal):
    k_layer, r_layer = attention_pair(name, kwargs, n_inputs)
    xs = arrays((B, TQ, D), (B, TV, D), (B, TV, D), seed=1)[:n_inputs]
    mask = [lengths_mask([4, 2, 1], TQ), lengths_mask([6, 3, 1], TV)] if masked else None
    k_out, k_scores = k_layer([t(x) for x in xs], mask=None if mask is None else [t(m) for m in mask],
                              return_attention_scores=True, use_causal_mask=causal)
    r_out, r_scores = r_layer([t(x) for x in xs], mask=None if mask is None else [t(m) for m in mask],
                              return_attention_scores=True, use_causal_mask=causal, training=False)
    np.testing.assert_allclose(np_(r_out), np_(k_out), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np_(r_scores), np_(k_scores), rtol=RTOL, atol=ATOL)
    plain = r_layer([t(x) for x in xs], mask=None if mask is None else [t(m) for m in mask],
                    use_causal_mask=causal, training=False)
    np.testing.assert_allclose(np_(plain), np_(k_out), rtol=RTOL, atol=ATOL)
    k_mask = k_layer.compute_mask([t(x) for x in xs], None if mask is None else [t(m) for m in mask])
    r_mask = r_layer.compute_mask([t(x) for x in xs], None if mask is None else [t(m) for m in mask])
    assert (r_mask is None) == (k_mask is None)
    if k_mask is not None:
        np.testing.assert_array_equal(np_(r_mask), np_(k_mask))


def test_attention_masks_ride_on_tensors_as_in_a_keras_model():
    """Keras's functional models hand Attention the masks attached to its inputs; so does rnnkit's call."""
    k_layer, r_layer = attention_pair("Attention", {"use_scale": True}, 2, seed=3)
    q, v = arrays((B, TQ, D), (B, TV, D), seed=4)
    qm, vm = lengths_mask([4, 0, 2], TQ), lengths_mask([1, 6, 3], TV)
    kq, kv = t(q), t(v)
    set_keras_mask(kq, t(qm))
    set_keras_mask(kv, t(vm))
    k_out = k_layer([kq, kv])
    rq, rv = t(q), t(v)
    rq._keras_mask, rv._keras_mask = t(qm), t(vm)
    r_out = r_layer([rq, rv], training=False)
    np.testing.assert_allclose(np_(r_out), np_(k_out), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(np_(r_layer.compute_mask([rq, rv], [t(qm), t(vm)])), np_(get_keras_mask(k_out)))


def test_attention_weights_shapes_and_config_match_keras():
    for name, kwargs in ATTENTION_CASES:
        k_layer, r_layer = attention_pair(name, kwargs, 2)
        assert [tuple(w.shape) for w in r_layer.weights] == [tuple(w.shape) for w in k_layer.weights]
        assert all(w.requires_grad for w in r_layer.weights)
        shapes = [(None, TQ, D), (None, TV, 7)]
        assert r_layer.compute_output_shape(shapes) == tuple(k_layer.compute_output_shape(shapes))
        config = r_layer.get_config()
        expected = {k: v for k, v in k_layer.get_config().items() if k in ("use_scale", "score_mode", "dropout")}
        assert {k: config[k] for k in expected} == expected
        assert ("score_mode" in config) == (name == "Attention")
        again = type(r_layer).from_config(config)
        assert again.get_config() == config


def test_attention_dropout_only_in_training():
    q, v = (torch.tensor(a) for a in arrays((B, TQ, D), (B, TV, D), seed=5))
    layer = R.Attention(dropout=0.5, seed=1)
    _, clean = layer([q, v], return_attention_scores=True, training=False)
    _, dropped = layer([q, v], return_attention_scores=True, training=True)
    kept = dropped != 0
    assert 0 < kept.float().mean() < 1
    torch.testing.assert_close(dropped[kept], clean[kept] * 2)  # survivors scaled by 1 / (1 - rate)


def test_attention_errors_name_the_layer():
    q = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"'att'.*\[query, value\]"):
        R.Attention(name="att")(q)
    with pytest.raises(ValueError, match=r"list of 4"):
        R.Attention()([q, q, q, q])
    with pytest.raises(ValueError, match=r"same last dimension"):
        R.Attention()([q, torch.zeros(2, 3, 5)])
    with pytest.raises(ValueError, match=r"mask must be a list"):
        R.Attention()([q, q], mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"score_mode must be 'dot' or 'concat'"):
        R.Attention(score_mode="general")


# ----- LayerNormalization ------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{}, {"axis": [1, 2]}, {"axis": [-2, -1]}, {"center": False},
                                    {"scale": False}, {"center": False, "scale": False}, {"epsilon": 1e-5}])
def test_layer_normalization_matches_keras(kwargs):
    (x,) = arrays((B, TV, D), seed=6)
    k_layer = keras.layers.LayerNormalization(**kwargs)
    k_layer.build((B, TV, D))
    if k_layer.weights:
        randomize(k_layer, 7)
    r_layer = R.LayerNormalization(**kwargs)
    r_layer.build((B, TV, D))
    r_layer.built = True
    r_layer.set_weights(k_layer.get_weights())
    np.testing.assert_allclose(np_(r_layer(t(x))), np_(k_layer(t(x))), rtol=RTOL, atol=ATOL)
    assert r_layer.compute_output_shape((None, TV, D)) == tuple(k_layer.compute_output_shape((None, TV, D)))
    m = t(lengths_mask([6, 2, 0], TV))
    assert torch.equal(r_layer.compute_mask(t(x), m), m)  # masks pass through, as Keras (supports_masking)
    assert R.LayerNormalization.from_config(r_layer.get_config()).get_config() == r_layer.get_config()


def test_layer_normalization_over_a_leading_axis_normalises_that_axis():
    # Keras 3.15 on torch fails here (it hands the torch kernel a non-trailing axis); rnnkit computes
    # what Keras computes on its other backends.
    (x,) = arrays((B, TV, D), seed=8)
    layer = R.LayerNormalization(axis=1, epsilon=1e-3)
    layer(t(x))
    gamma, beta = np.linspace(0.5, 1.5, TV).astype("float32"), np.linspace(-1, 1, TV).astype("float32")
    layer.set_weights([gamma, beta])
    mean, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-3) * gamma[None, :, None] + beta[None, :, None]
    np.testing.assert_allclose(np_(layer(t(x))), expected, rtol=1e-4, atol=1e-5)


# ----- BatchNormalization -------------------------------------------------------------------------------
def bn_pair(shape, seed=0, **kwargs):
    k_layer = keras.layers.BatchNormalization(**kwargs)
    k_layer.build(shape)
    g = np.random.default_rng(seed)
    weights = []
    for w in k_layer.weights:
        low, high = (0.5, 1.5) if "variance" in w.path or "gamma" in w.path else (-0.5, 0.5)
        weights.append(g.uniform(low, high, size=w.shape).astype("float32"))
    k_layer.set_weights(weights)
    r_layer = R.BatchNormalization(**kwargs)
    r_layer.build(shape)
    r_layer.built = True
    r_layer.set_weights(k_layer.get_weights())
    return k_layer, r_layer


@pytest.mark.parametrize("kwargs,shape", [({}, (8, D)), ({}, (B, TV, D)), ({"axis": 1}, (B, D, TV)),
                                          ({"center": False, "scale": False}, (B, TV, D)),
                                          ({"momentum": 0.9, "epsilon": 1e-5}, (8, D))])
def test_batch_normalization_inference_and_training_match_keras(kwargs, shape):
    k_layer, r_layer = bn_pair(shape, **kwargs)
    assert [w.requires_grad for w in r_layer.weights] == [w.trainable for w in k_layer.weights]
    assert [tuple(w.shape) for w in r_layer.weights] == [tuple(w.shape) for w in k_layer.weights]
    for step, x in enumerate(arrays(shape, shape, shape, seed=9)):
        x = x * (step + 1) + step  # batches with different statistics
        np.testing.assert_allclose(np_(r_layer(t(x), training=False)), np_(k_layer(t(x), training=False)),
                                   rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(np_(r_layer(t(x), training=True)), np_(k_layer(t(x), training=True)),
                                   rtol=RTOL, atol=1e-5)
        for r_w, k_w in zip(r_layer.get_weights(), k_layer.get_weights()):
            np.testing.assert_allclose(r_w, k_w, rtol=RTOL, atol=ATOL)
    none_shape = (None,) + shape[1:]
    assert r_layer.compute_output_shape(none_shape) == tuple(k_layer.compute_output_shape(none_shape))


def test_batch_normalization_masked_steps_stay_out_of_the_statistics_as_keras():
    k_layer, r_layer = bn_pair((B, TV, D), seed=1)
    mask = lengths_mask([6, 3, 1], TV)
    for step, x in enumerate(arrays((B, TV, D), (B, TV, D), seed=10)):
        x[~mask] = 100.0 + step  # padding that would wreck the statistics if it counted
        np.testing.assert_allclose(np_(r_layer(t(x), mask=t(mask), training=True)),
                                   np_(k_layer(t(x), mask=t(mask), training=True)), rtol=RTOL, atol=1e-5)
        for r_w, k_w in zip(r_layer.get_weights(), k_layer.get_weights()):
            np.testing.assert_allclose(r_w, k_w, rtol=RTOL, atol=ATOL)
    assert torch.equal(r_layer.compute_mask(t(x), t(mask)), t(mask))


def test_batch_normalization_not_trainable_uses_moving_statistics():
    k_layer, r_layer = bn_pair((8, D), seed=2)
    k_layer.trainable = False
    r_layer.trainable = False
    (x,) = arrays((8, D), seed=11)
    before = r_layer.get_weights()
    np.testing.assert_allclose(np_(r_layer(t(x), training=True)), np_(k_layer(t(x), training=True)),
                               rtol=RTOL, atol=ATOL)
    for a, b in zip(before, r_layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_batch_normalization_trains_in_a_model_like_keras():
    """fit() calls it in training mode and predict() in inference mode, as Keras."""
    (x,) = arrays((16, D), seed=12)
    x = x * 3 + 1
    y = np.zeros((16, 1), "float32")
    keras.utils.set_random_seed(0)
    k_model = keras.Sequential([keras.Input((D,)), keras.layers.BatchNormalization(), keras.layers.Dense(1)])
    r_model = rnnkit.Sequential([rnnkit.Input(shape=(D,)), R.BatchNormalization(), R.Dense(1)])
    r_model.set_weights(k_model.get_weights())
    k_model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    r_model.compile(optimizer=rnnkit.optimizers.SGD(0.0), loss="mse")
    k_model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    r_model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for r_w, k_w in zip(r_model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(r_w, k_w, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(r_model.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=RTOL, atol=1e-5)


def test_normalization_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"'bn'.*built for 5 features"):
        layer = R.BatchNormalization(name="bn")
        layer(torch.zeros(4, 5), training=False)
        layer(torch.zeros(4, 6), training=False)
    with pytest.raises(ValueError, match=r"mask must have the inputs' shape"):
        R.BatchNormalization()(torch.zeros(2, 3, 4), mask=torch.ones(2, 3, 4, dtype=torch.bool), training=True)
    with pytest.raises(ValueError, match=r"'ln'.*axis 3 is out of range"):
        R.LayerNormalization(axis=3, name="ln")(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"axis must be an int"):
        R.BatchNormalization(axis=[1, 2])


# ----- global poolings with masks -------------------------------------------------------------------------
POOL_MASKS = [None, lengths_mask([6, 3, 1], TV), lengths_mask([6, 0, 2], TV)]


@pytest.mark.parametrize("mask", POOL_MASKS)
@pytest.mark.parametrize("kwargs", [{}, {"keepdims": True}, {"data_format": "channels_first"},
                                    {"data_format": "channels_first", "keepdims": True}])
def test_global_average_pooling_matches_keras_masks_included(mask, kwargs):
    shape = (B, D, TV) if kwargs.get("data_format") == "channels_first" else (B, TV, D)
    (x,) = arrays(shape, seed=13)
    k_out = np_(keras.layers.GlobalAveragePooling1D(**kwargs)(t(x), mask=t(mask)))
    layer = R.GlobalAveragePooling1D(**kwargs)
    r_out = np_(layer(t(x), mask=t(mask)))
    empty = np.isnan(k_out)  # an all-masked row: NaN in Keras (0 / 0), zeros in rnnkit
    np.testing.assert_allclose(r_out[~empty], k_out[~empty], rtol=RTOL, atol=ATOL)
    assert (r_out[empty] == 0).all()
    assert layer.compute_mask(t(x), t(mask)) is None
    none_shape = (None,) + shape[1:]
    assert layer.compute_output_shape(none_shape) == \
        tuple(keras.layers.GlobalAveragePooling1D(**kwargs).compute_output_shape(none_shape))


@pytest.mark.parametrize("kwargs", [{}, {"keepdims": True}, {"data_format": "channels_first"}])
def test_global_max_pooling_matches_keras(kwargs):
    shape = (B, D, TV) if kwargs.get("data_format") == "channels_first" else (B, TV, D)
    (x,) = arrays(shape, seed=14)
    layer = R.GlobalMaxPooling1D(**kwargs)
    np.testing.assert_array_equal(np_(layer(t(x))), np_(keras.layers.GlobalMaxPooling1D(**kwargs)(t(x))))
    none_shape = (None,) + shape[1:]
    assert layer.compute_output_shape(none_shape) == \
        tuple(keras.layers.GlobalMaxPooling1D(**kwargs).compute_output_shape(none_shape))
    assert R.GlobalMaxPooling1D.from_config(layer.get_config()).get_config() == layer.get_config()


def test_global_poolings_after_a_masked_embedding_match_keras_models():
    """Keras 3.15's GlobalMaxPooling1D takes no mask, so padded steps count in the max; the
    average excludes them. rnnkit does the same in a model."""
    ids = np.array([[3, 1, 0, 0], [2, 2, 4, 0], [1, 0, 0, 0]])
    for pool in ("GlobalMaxPooling1D", "GlobalAveragePooling1D"):
        keras.utils.set_random_seed(0)
        k_model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(6, D, mask_zero=True),
                                    getattr(keras.layers, pool)()])
        r_model = rnnkit.Sequential([rnnkit.Input(shape=(4,), dtype="int32"), R.Embedding(6, D, mask_zero=True),
                                     getattr(R, pool)()])
        r_model.set_weights(k_model.get_weights())
        np.testing.assert_allclose(r_model.predict(ids, verbose=0), k_model.predict(ids, verbose=0),
                                   rtol=RTOL, atol=ATOL)
    table = k_model.get_weights()[0]
    np.testing.assert_allclose(np_(R.GlobalMaxPooling1D()(t(table[ids]))), table[ids].max(1), rtol=RTOL)


# ----- a functional encoder-decoder program with all of them -------------------------------------------
def test_functional_attention_model_with_masks_matches_keras():
    """Embedding(mask_zero) -> LSTM encoder/decoder -> Attention (masks riding on the tensors) ->
    Concatenate -> LayerNormalization -> BatchNormalization -> GlobalAveragePooling1D -> Dense."""
    src_ids = np.array([[4, 2, 7, 1, 0, 0], [3, 3, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    tgt_ids = np.array([[1, 2, 0, 0], [5, 0, 0, 0], [2, 2, 2, 2]])

    def build(lib, **dtype):
        src, tgt = lib.Input(shape=(6,), **dtype), lib.Input(shape=(4,), **dtype)
        L = lib.layers
        made = [L.Embedding(8, D, mask_zero=True), L.Embedding(8, D, mask_zero=True),
                L.LSTM(D, return_sequences=True), L.LSTM(D, return_sequences=True),
                L.AdditiveAttention(), L.Concatenate(), L.LayerNormalization(), L.BatchNormalization(),
                L.GlobalAveragePooling1D(), L.Dense(2)]
        enc = made[2](made[0](src))
        dec = made[3](made[1](tgt))
        context = made[4]([dec, enc])
        x = made[7](made[6](made[5]([dec, context])))
        return lib.Model([src, tgt], made[9](made[8](x))), made

    keras.utils.set_random_seed(0)
    k_model, k_layers = build(keras, dtype="int32")
    r_model, r_layers = build(rnnkit, dtype="int32")
    for k_layer, r_layer in zip(k_layers, r_layers):
        if isinstance(k_layer, (keras.layers.LayerNormalization, keras.layers.BatchNormalization,
                                keras.layers.AdditiveAttention)):
            randomize(k_layer, seed=len(k_layer.weights))  # not the ones/zeros they start with
        if k_layer.weights:
            r_layer.set_weights(k_layer.get_weights())
    k_out = np_(k_model([t(src_ids), t(tgt_ids)], training=False))
    r_out = np_(r_model([t(src_ids), t(tgt_ids)], training=False))
    np.testing.assert_allclose(r_out, k_out, rtol=1e-4, atol=1e-5)
