import numpy as np
import pytest
import torch

from rnnkit import losses, metrics


def t(x, dtype=torch.float64):
    return torch.tensor(np.asarray(x), dtype=dtype)


def test_mae_and_mse_are_exact_epoch_means_with_a_smaller_last_batch():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.normal(size=(5, 4, 1)), rng.normal(size=(5, 4, 1))
    mae, mse = metrics.MeanAbsoluteError(), metrics.MeanSquaredError()
    for start, stop in ((0, 3), (3, 5)):
        mae.update_state(t(y_true[start:stop]), t(y_pred[start:stop]))
        mse.update_state(t(y_true[start:stop]), t(y_pred[start:stop]))
    assert mae.result() == pytest.approx(np.mean(np.abs(y_true - y_pred)), rel=1e-12)
    assert mse.result() == pytest.approx(np.mean((y_true - y_pred) ** 2), rel=1e-12)
    assert isinstance(mae.result(), float)


def test_mean_weighted_by_batch_size():
    loss = metrics.Mean(name="loss")
    loss.update_state(torch.tensor(1.0), sample_weight=32)
    loss.update_state(torch.tensor(4.0), sample_weight=8)
    assert loss.result() == pytest.approx((1.0 * 32 + 4.0 * 8) / 40)
    loss.reset_state()
    assert loss.result() == 0.0
    loss.update_state(torch.tensor(2.5))
    assert loss.result() == 2.5


def test_sample_weight_per_sample():
    mae = metrics.MeanAbsoluteError()
    mae.update_state(t([[0.0], [0.0]]), t([[1.0], [3.0]]), sample_weight=t([3.0, 1.0]))
    assert mae.result() == pytest.approx((3 * 1 + 1 * 3) / 4)


def test_binary_accuracy_threshold_and_rank_1_targets():
    y_true = torch.tensor([1, 0, 1, 0])
    y_pred = t([[0.7], [0.6], [0.4], [0.1]])
    acc = metrics.BinaryAccuracy()
    acc.update_state(y_true, y_pred)
    assert acc.result() == pytest.approx(0.5)
    strict = metrics.BinaryAccuracy(threshold=0.65)
    strict.update_state(y_true, y_pred)
    assert strict.result() == pytest.approx(0.75)


def test_categorical_and_sparse_accuracy_over_time_steps():
    y_pred = t([[[0.1, 0.8, 0.1], [0.6, 0.3, 0.1]], [[0.2, 0.2, 0.6], [0.3, 0.4, 0.3]]])
    labels = np.array([[1, 1], [2, 0]])
    sparse, categorical = metrics.SparseCategoricalAccuracy(), metrics.CategoricalAccuracy()
    sparse.update_state(torch.tensor(labels), y_pred)
    categorical.update_state(t(np.eye(3)[labels]), y_pred)
    assert sparse.result() == pytest.approx(0.5)
    assert categorical.result() == pytest.approx(0.5)


def test_sparse_accuracy_accepts_column_and_float_labels():
    y_pred = t([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    for labels in (torch.tensor([[1], [1], [1]]), torch.tensor([1.0, 1.0, 1.0])):
        acc = metrics.SparseCategoricalAccuracy()
        acc.update_state(labels, y_pred)
        assert acc.result() == pytest.approx(2 / 3)


def test_updates_run_without_autograd():
    seen = []

    def spy(y_true, y_pred):
        seen.append(torch.is_grad_enabled())
        return torch.abs(y_true - y_pred)

    y_pred = torch.ones(2, 1, requires_grad=True)
    metric = metrics.get(spy)
    metric.update_state(torch.zeros(2, 1), y_pred * 2)
    assert seen == [False]
    assert metric.result() == pytest.approx(2.0)


@pytest.mark.parametrize(
    "y_true_shape, y_pred_shape, loss, expected",
    [
        ((8,), (8, 1), "mse", metrics.BinaryAccuracy),
        ((8, 1), (8, 1), None, metrics.BinaryAccuracy),
        # Keras 3 decides by the shapes alone, so multi-label outputs get categorical accuracy
        ((8, 3), (8, 3), losses.BinaryCrossentropy(), metrics.CategoricalAccuracy),
        ((8, 3), (8, 3), "binary_crossentropy", metrics.CategoricalAccuracy),
        ((8,), (8, 5), "sparse_categorical_crossentropy", metrics.SparseCategoricalAccuracy),
        ((8, 1), (8, 5), None, metrics.SparseCategoricalAccuracy),
        ((8, 10), (8, 10, 4), None, metrics.SparseCategoricalAccuracy),
        ((8, 5), (8, 5), "categorical_crossentropy", metrics.CategoricalAccuracy),
    ],
)
def test_accuracy_resolution(y_true_shape, y_pred_shape, loss, expected):
    metric = metrics.get("accuracy", loss=loss, y_true=torch.zeros(y_true_shape), y_pred=torch.zeros(y_pred_shape))
    assert type(metric) is expected
    assert metric.name == "accuracy"


def test_accuracy_alias_keeps_user_name_and_accepts_shapes():
    metric = metrics.get("acc", y_true=(4,), y_pred=(4, 3))
    assert type(metric) is metrics.SparseCategoricalAccuracy and metric.name == "acc"


def test_accuracy_without_shapes_needs_binary_loss():
    assert type(metrics.get("accuracy", loss="binary_crossentropy")) is metrics.BinaryAccuracy
    with pytest.raises(ValueError, match="needs y_true and y_pred"):
        metrics.get("accuracy", loss="mse")


def test_get_names_keep_the_given_name():
    mae = metrics.get("mae")
    assert type(mae) is metrics.MeanAbsoluteError and mae.name == "mae"
    assert metrics.get("mean_squared_error").name == "mean_squared_error"
    assert type(metrics.get("sparse_categorical_accuracy")) is metrics.SparseCategoricalAccuracy
    assert metrics.MeanAbsoluteError().name == "mean_absolute_error"
    instance = metrics.BinaryAccuracy(threshold=0.3)
    assert metrics.get(instance) is instance


def test_unknown_metric_name_suggests_close_match():
    with pytest.raises(ValueError, match="Did you mean 'categorical_accuracy'"):
        metrics.get("categorical_acuracy")


def test_metric_config_round_trip():
    metric = metrics.BinaryAccuracy(name="acc", threshold=0.3)
    restored = metrics.deserialize(metrics.serialize(metric))
    assert type(restored) is metrics.BinaryAccuracy
    assert restored.name == "acc" and restored.threshold == 0.3
