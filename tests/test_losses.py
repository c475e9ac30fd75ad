import json

import numpy as np
import pytest
import torch

from rnnkit import losses

EPS = 1e-7


def t(x, dtype=torch.float64):
    return torch.tensor(np.asarray(x), dtype=dtype)


def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_mse_and_mae_rank_1_targets_are_not_broadcast():
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([[1.5], [1.0], [3.0], [6.0]])
    expected_mse = np.mean((y_true - y_pred[:, 0]) ** 2)
    expected_mae = np.mean(np.abs(y_true - y_pred[:, 0]))
    assert losses.MeanSquaredError()(t(y_true), t(y_pred)).item() == pytest.approx(expected_mse, abs=1e-15)
    assert losses.MeanAbsoluteError()(t(y_true), t(y_pred)).item() == pytest.approx(expected_mae, abs=1e-15)


def test_mse_mean_over_samples_time_steps_and_features():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 5, 2))
    loss = losses.get("mse")(t(y_true), t(y_pred))
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(np.mean((y_true - y_pred) ** 2), rel=1e-13)


def test_integer_targets_are_cast_to_prediction_dtype():
    loss = losses.MeanAbsoluteError()(torch.tensor([[1], [0]]), torch.tensor([[0.75], [0.5]]))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(0.375)


def test_incompatible_shapes_raise_instead_of_broadcasting():
    with pytest.raises(ValueError, match=r"y_true.shape=\(4, 3\).*y_pred.shape=\(4, 2\)"):
        losses.MeanSquaredError()(torch.zeros(4, 3), torch.zeros(4, 2))


def test_binary_crossentropy_clips_probabilities_like_keras():
    y_true = np.array([[1.0], [0.0], [1.0], [0.0], [1.0]])
    y_pred = np.array([[0.0], [1.0], [0.9], [0.2], [1.0]])
    p = np.clip(y_pred, EPS, 1 - EPS)
    expected = np.mean(-(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))
    loss = losses.BinaryCrossentropy()(t(y_true[:, 0]), t(y_pred))
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(loss.item())


def test_binary_crossentropy_from_logits_is_stable_and_matches_formula():
    logits = np.array([[50.0, -50.0], [0.3, -1.2], [-80.0, 4.0]])
    y_true = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    expected = np.mean(np.maximum(logits, 0) - logits * y_true + np.log1p(np.exp(-np.abs(logits))))
    x = t(logits).requires_grad_()
    loss = losses.BinaryCrossentropy(from_logits=True)(t(y_true), x)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    sigmoid = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(x.grad.numpy(), (sigmoid - y_true) / y_true.size, rtol=1e-10, atol=1e-300)


def test_binary_crossentropy_label_smoothing():
    y_true, y_pred = np.array([[1.0], [0.0]]), np.array([[0.8], [0.3]])
    smoothed = y_true * 0.8 + 0.1
    expected = np.mean(-(smoothed * np.log(y_pred) + (1 - smoothed) * np.log(1 - y_pred)))
    loss = losses.BinaryCrossentropy(label_smoothing=0.2)(t(y_true), t(y_pred))
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_categorical_crossentropy_normalizes_and_clips_probabilities():
    y_true = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    y_pred = np.array([[0.2, 0.6, 0.4], [0.0, 0.5, 0.5]])  # first row sums to 1.2
    p = np.clip(y_pred / y_pred.sum(-1, keepdims=True), EPS, 1 - EPS)
    expected = np.mean(-(y_true * np.log(p)).sum(-1))
    loss = losses.CategoricalCrossentropy()(t(y_true), t(y_pred))
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_categorical_crossentropy_from_logits_over_time_steps():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 4, 3)) * 5
    y_true = np.eye(3)[rng.integers(0, 3, size=(2, 4))]
    expected = np.mean(-(y_true * np_log_softmax(logits)).sum(-1))
    loss = losses.CategoricalCrossentropy(from_logits=True)(t(y_true), t(logits))
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_categorical_crossentropy_rejects_integer_labels_with_hint():
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        losses.CategoricalCrossentropy()(torch.tensor([0, 2]), torch.full((2, 3), 1 / 3))


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_shape", ["(N,)", "(N,1)", "float"])
def test_sparse_categorical_crossentropy_label_layouts(from_logits, label_shape):
    rng = np.random.default_rng(2)
    raw = rng.normal(size=(5, 4))
    y_pred = raw if from_logits else np.exp(np_log_softmax(raw))
    labels = np.array([0, 3, 1, 1, 2])
    expected = np.mean(-np_log_softmax(raw)[np.arange(5), labels])
    y_true = {
        "(N,)": torch.tensor(labels),
        "(N,1)": torch.tensor(labels[:, None]),
        "float": torch.tensor(labels, dtype=torch.float32),
    }[label_shape]
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)(y_true, t(y_pred))
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_sparse_categorical_crossentropy_per_time_step_labels():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 3, 4))
    labels = rng.integers(0, 4, size=(2, 3))
    log_p = np_log_softmax(logits)
    expected = np.mean(-np.take_along_axis(log_p, labels[..., None], -1))
    for y_true in (torch.tensor(labels), torch.tensor(labels[..., None])):
        loss = losses.get("sparse_categorical_crossentropy")(y_true, t(np.exp(log_p)))
        assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_sparse_labels_of_wrong_shape_raise():
    with pytest.raises(ValueError, match=r"y_pred.shape\[:-1\]"):
        losses.SparseCategoricalCrossentropy()(torch.zeros(2), torch.full((2, 3, 4), 0.25))


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    y_pred = torch.randn(3, 2, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[0, 3], [1, 2], [2, 2]])
    targets = torch.randn(3, 2, 4, dtype=torch.float64)
    loss_sparse = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert torch.autograd.gradcheck(lambda p: loss_sparse(labels, p), (y_pred,))
    assert torch.autograd.gradcheck(lambda p: losses.MeanSquaredError()(targets, p), (y_pred,))


def test_sample_weight_broadcasts_over_time_steps():
    y_true, y_pred = np.zeros((2, 3, 1)), np.array([[[1.0], [2.0], [3.0]], [[1.0], [1.0], [1.0]]])
    weights = np.array([2.0, 0.5])
    expected = np.sum((y_pred[..., 0] ** 2) * weights[:, None]) / 6
    loss = losses.MeanSquaredError()(t(y_true), t(y_pred), sample_weight=t(weights))
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_reductions():
    y_true, y_pred = t([[0.0], [0.0]]), t([[1.0], [3.0]])
    assert losses.MeanAbsoluteError(reduction="sum")(y_true, y_pred).item() == 4.0
    np.testing.assert_array_equal(losses.MeanAbsoluteError(reduction=None)(y_true, y_pred).numpy(), [1.0, 3.0])
    with pytest.raises(ValueError, match="Invalid reduction"):
        losses.MeanAbsoluteError(reduction="average")


def test_get_by_name_instance_and_callable():
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    assert isinstance(losses.get("mean_absolute_error"), losses.MeanAbsoluteError)
    assert isinstance(losses.get("binary_crossentropy"), losses.BinaryCrossentropy)
    assert isinstance(losses.get("categorical_crossentropy"), losses.CategoricalCrossentropy)
    instance = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert losses.get(instance) is instance

    def squared_log_error(y_true, y_pred):
        return torch.mean((torch.log1p(y_pred) - torch.log1p(y_true)) ** 2, dim=-1)

    wrapped = losses.get(squared_log_error)
    assert wrapped.name == "squared_log_error"
    y_true, y_pred = t([[1.0], [3.0]]), t([[2.0], [3.0]])
    assert wrapped(y_true, y_pred).item() == pytest.approx((np.log(3) - np.log(2)) ** 2 / 2)


def test_unknown_name_suggests_close_match():
    with pytest.raises(ValueError, match="Did you mean 'binary_crossentropy'"):
        losses.get("binary_crossentropyy")
    with pytest.raises(ValueError, match="Did you mean 'mse'"):
        losses.get("msee")


def test_config_round_trip_is_json_and_restores_arguments():
    loss = losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)
    config = json.loads(json.dumps(loss.get_config()))
    for restored in (losses.deserialize(config), losses.deserialize(losses.serialize(loss))):
        assert type(restored) is losses.BinaryCrossentropy
        assert restored.get_config() == loss.get_config()
        assert restored.from_logits is True
    restored = losses.deserialize(losses.SparseCategoricalCrossentropy().get_config())
    assert type(restored) is losses.SparseCategoricalCrossentropy


def test_custom_function_config_needs_custom_objects():
    def my_loss(y_true, y_pred):
        return torch.mean(y_pred - y_true, dim=-1)

    config = losses.get(my_loss).get_config()
    with pytest.raises(ValueError, match="custom_objects"):
        losses.deserialize(config)
    restored = losses.deserialize(config, custom_objects={"my_loss": my_loss})
    assert restored(t([[1.0]]), t([[3.0]])).item() == 2.0
