"""Every loss and metric takes boolean, integer and float targets (and one-hot ones where Keras
does), and 'accuracy' picks its variant from the shapes as Keras 3 does."""
import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import losses, metrics

PROBS = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
LABELS = np.array([0, 2, 0, 0])
ONE_HOT = np.eye(3)[LABELS]
P_BINARY = torch.tensor([[0.9], [0.2], [0.6], [0.4]])
Y_BINARY = np.array([[1], [0], [0], [0]])


def as_kinds(array):
    """The same targets as bool, int and float NumPy arrays and torch tensors."""
    return [array.astype(bool), array.astype(np.int64), array.astype(np.int32), array.astype(np.float32),
            torch.as_tensor(array.astype(bool)), torch.as_tensor(array.astype(np.int64))]


@pytest.mark.parametrize("fn", [losses.binary_crossentropy, losses.mean_squared_error, losses.mean_absolute_error,
                                metrics.binary_accuracy])
def test_binary_targets_of_every_dtype(fn):
    expected = fn(torch.as_tensor(Y_BINARY, dtype=torch.float32), P_BINARY)
    for y in as_kinds(Y_BINARY) + as_kinds(Y_BINARY[:, 0]):
        torch.testing.assert_close(fn(y, P_BINARY), expected)


@pytest.mark.parametrize("fn", [losses.categorical_crossentropy, metrics.categorical_accuracy])
def test_one_hot_targets_of_every_dtype(fn):
    expected = fn(torch.as_tensor(ONE_HOT, dtype=torch.float32), PROBS)
    for y in as_kinds(ONE_HOT):
        torch.testing.assert_close(fn(y, PROBS), expected)


@pytest.mark.parametrize("fn", [losses.sparse_categorical_crossentropy, metrics.sparse_categorical_accuracy])
def test_integer_labels_of_every_dtype(fn):
    expected = fn(torch.as_tensor(LABELS), PROBS)
    for y in [LABELS, LABELS.astype(np.int32), LABELS.astype(np.float32), LABELS[:, None], torch.as_tensor(LABELS)]:
        torch.testing.assert_close(fn(y, PROBS), expected)
    assert fn(np.array([True, False]), torch.tensor([[0.2, 0.8], [0.9, 0.1]])).shape == (2,)


def test_boolean_one_hot_accuracy_in_training():
    """The reported crash: argmax() does not support bool input."""
    rnnkit.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(16, 5, 2)).astype("float32")
    y = np.eye(3, dtype=bool)[np.arange(16) % 3]
    model = rnnkit.Sequential([rnnkit.layers.SimpleRNN(4), rnnkit.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert 0.0 <= history.history["accuracy"][0] <= 1.0
    acc = metrics.get("accuracy", y_true=y, y_pred=(16, 3))
    assert type(acc) is metrics.CategoricalAccuracy


def test_classes_take_the_same_targets():
    for loss in (losses.BinaryCrossentropy(), losses.MeanSquaredError()):
        assert float(loss(Y_BINARY.astype(bool), P_BINARY)) == pytest.approx(float(loss(Y_BINARY * 1.0, P_BINARY)))
    assert float(losses.CategoricalCrossentropy()(ONE_HOT.astype(bool), PROBS)) == pytest.approx(
        float(losses.CategoricalCrossentropy()(ONE_HOT, PROBS)))
    for metric, y, p in ((metrics.CategoricalAccuracy(), ONE_HOT.astype(bool), PROBS),
                         (metrics.BinaryAccuracy(), Y_BINARY.astype(bool), P_BINARY),
                         (metrics.SparseCategoricalAccuracy(), LABELS.astype(np.float32), PROBS)):
        metric.update_state(y, p)
        assert metric.result() == pytest.approx(0.75)


@pytest.mark.parametrize("y_true, y_pred, expected", [
    ((8,), (8, 1), metrics.BinaryAccuracy),
    ((8, 1), (8, 1), metrics.BinaryAccuracy),
    ((8, 3), (8, 3), metrics.CategoricalAccuracy),           # also with a binary cross-entropy loss
    ((8,), (8, 5), metrics.SparseCategoricalAccuracy),
    ((8, 1), (8, 5), metrics.SparseCategoricalAccuracy),
    ((8, 10), (8, 10, 4), metrics.SparseCategoricalAccuracy),  # sequence outputs, integer labels
    ((8, 10, 4), (8, 10, 4), metrics.CategoricalAccuracy),     # sequence outputs, one-hot labels
    ((8, 10, 1), (8, 10, 1), metrics.BinaryAccuracy),          # sequence outputs, one unit
    ((8, 10), (8, 10, 1), metrics.BinaryAccuracy),
])
def test_accuracy_resolution_as_keras_3(y_true, y_pred, expected):
    assert type(metrics.get("accuracy", loss="binary_crossentropy", y_true=y_true, y_pred=y_pred)) is expected


def test_categorical_accuracy_with_integer_labels_says_what_to_use():
    with pytest.raises(ValueError, match="sparse_categorical_accuracy"):
        metrics.categorical_accuracy(LABELS, PROBS)
