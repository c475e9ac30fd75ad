"""GlobalMaxPooling1D (mask-aware) and SpatialDropout1D against hand-computed numpy references."""
import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.layers import Embedding, GlobalMaxPooling1D, SpatialDropout1D, deserialize, serialize


def test_global_max_pooling_without_mask_is_the_max_over_time():
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    out = GlobalMaxPooling1D()(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), x.max(axis=1))
    kept = GlobalMaxPooling1D(keepdims=True)(torch.tensor(x))
    assert tuple(kept.shape) == (3, 1, 4)
    np.testing.assert_allclose(kept.numpy()[:, 0], x.max(axis=1))


def test_global_max_pooling_counts_every_step_as_keras_3_does():
    # Keras 3.15's GlobalMaxPooling1D takes no mask: padded steps count in the max
    x = np.array([[[1.0, -2.0], [3.0, -1.0], [9.0, 9.0]]], dtype="float32")
    with pytest.raises(TypeError):
        GlobalMaxPooling1D()(torch.tensor(x), mask=torch.tensor([[True, True, False]]))
    ids = np.array([[3, 1, 0, 0], [2, 2, 4, 0]])
    model = rnnkit.Sequential([Embedding(5, 3, mask_zero=True), GlobalMaxPooling1D()])
    out = model.predict(ids, verbose=0)
    table = model.layers[0].get_weights()[0]
    np.testing.assert_allclose(out, table[ids].max(axis=1), rtol=1e-6)
    assert model.layers[1].compute_output_shape((None, 4, 3)) == (None, 3)


def test_global_max_pooling_gradient_reaches_only_the_maximum():
    x = torch.tensor([[[1.0], [4.0], [7.0]]], requires_grad=True)
    GlobalMaxPooling1D()(x).sum().backward()
    assert x.grad.reshape(-1).tolist() == [0.0, 0.0, 1.0]


def test_global_max_pooling_config_round_trip_and_rank_check():
    layer = deserialize(serialize(GlobalMaxPooling1D(keepdims=True, name="gmp")))
    assert isinstance(layer, GlobalMaxPooling1D) and layer.keepdims and layer.name == "gmp"
    with pytest.raises(ValueError, match="3-D input"):
        GlobalMaxPooling1D()(torch.zeros(2, 3))


def test_spatial_dropout_drops_whole_channels_for_every_step():
    torch.manual_seed(0)
    x = torch.ones(8, 6, 10)
    layer = SpatialDropout1D(0.5)
    out = layer(x, training=True).numpy()
    # each (sample, feature) column is either all zeros or all 1/(1 - rate), the same at every step
    assert np.all(out == out[:, :1, :])
    assert set(np.unique(out)) <= {0.0, 2.0} and 0 < (out == 0).mean() < 1
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    layer.train()
    assert (layer(x).numpy() == 0).any()


def test_spatial_dropout_keeps_the_mask_config_and_checks_its_input():
    layer = deserialize(serialize(SpatialDropout1D(0.25, seed=3, name="sd")))
    assert isinstance(layer, SpatialDropout1D) and layer.rate == 0.25 and layer.seed == 3
    assert "noise_shape" not in layer.get_config()
    mask = torch.tensor([[True, False]])
    assert layer.compute_mask(torch.zeros(1, 2, 3), mask) is mask
    with pytest.raises(ValueError, match="3-D input"):
        layer(torch.zeros(2, 3), training=True)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        SpatialDropout1D(1.0)
