import math

import numpy as np
import pytest
import torch

from rnnkit.data import Dataset
from rnnkit.utils.timeseries import TimeseriesDataset, timeseries_dataset_from_array


def _rows(batch):
    """Row numbers of a window array built from ``np.arange`` data."""
    return np.asarray(batch).astype(np.int64).tolist()


def test_keras_docstring_example_1():
    ds = timeseries_dataset_from_array(
        np.arange(99), None, sequence_length=10, sampling_rate=2, sequence_stride=3, batch_size=None
    )
    windows = [_rows(w) for w in ds]
    assert windows[0] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
    assert windows[1] == [3, 5, 7, 9, 11, 13, 15, 17, 19, 21]
    assert windows[2] == [6, 8, 10, 12, 14, 16, 18, 20, 22, 24]
    assert windows[-1] == [78, 80, 82, 84, 86, 88, 90, 92, 94, 96]
    assert len(ds) == ds.num_samples == 27


def test_keras_docstring_example_2_next_step_targets():
    data = np.arange(50, dtype=np.float32) * 0.5
    ds = timeseries_dataset_from_array(data[:-10], data[10:], sequence_length=10, batch_size=8)
    x, y = next(iter(ds))
    assert np.array_equal(x[0], data[:10])
    assert y[0] == data[10]
    assert np.array_equal(x[3], data[3:13])
    assert y[3] == data[13]


def test_keras_docstring_example_3_zipped_input_and_target_windows():
    X = np.arange(100)
    Y = X * 2
    inputs = timeseries_dataset_from_array(X, None, sequence_length=20, sequence_stride=20)
    targets = timeseries_dataset_from_array(Y, None, sequence_length=20, sequence_stride=20)
    for x, y in Dataset.zip(inputs, targets):
        assert np.array_equal(x[0], X[:20])
        assert np.array_equal(y[1], Y[20:40])
    assert len(inputs) == 1 and len(next(iter(inputs))) == 5


def test_stride_sampling_rate_start_and_end_index():
    data = np.stack([np.arange(30), 100 + np.arange(30)], axis=1)
    targets = 1000 + np.arange(30)
    ds = timeseries_dataset_from_array(
        data, targets, sequence_length=3, sequence_stride=4, sampling_rate=2,
        start_index=5, end_index=25, batch_size=3,
    )
    # num_seqs = 25 - 5 - (3 - 1) * 2 = 16 -> offsets 0, 4, 8, 12.
    assert ds.num_samples == 4 and len(ds) == 2
    batches = list(ds)
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.shape == (4, 3, 2)
    assert _rows(x[:, :, 0]) == [[5, 7, 9], [9, 11, 13], [13, 15, 17], [17, 19, 21]]
    assert _rows(x[:, :, 1]) == [[105, 107, 109], [109, 111, 113], [113, 115, 117], [117, 119, 121]]
    assert y.tolist() == [1005, 1009, 1013, 1017]
    assert [len(b[1]) for b in batches] == [3, 1]


def test_windows_stay_before_end_index():
    ds = timeseries_dataset_from_array(np.arange(20), None, sequence_length=4, end_index=10, batch_size=None)
    windows = [_rows(w) for w in ds]
    assert windows[-1] == [6, 7, 8, 9]
    assert len(windows) == 7


def test_end_index_equal_to_length_means_all_rows():
    a = timeseries_dataset_from_array(np.arange(12), None, 3, batch_size=None)
    b = timeseries_dataset_from_array(np.arange(12), None, 3, batch_size=None, end_index=12)
    assert [_rows(w) for w in a] == [_rows(w) for w in b]


def test_number_of_windows_is_limited_by_targets():
    ds = timeseries_dataset_from_array(np.arange(20), np.arange(5), sequence_length=3, batch_size=None)
    assert ds.num_samples == 5
    assert [int(y) for _, y in ds] == [0, 1, 2, 3, 4]


def test_targets_must_cover_start_index():
    with pytest.raises(ValueError, match="targets"):
        timeseries_dataset_from_array(np.arange(20), np.arange(5), 3, start_index=8)


def test_batches_shapes_and_count():
    data = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    ds = timeseries_dataset_from_array(data, data[:, 0], sequence_length=7, batch_size=16)
    assert ds.num_samples == 94
    assert len(ds) == math.ceil(94 / 16)
    shapes = [(tuple(x.shape), tuple(y.shape)) for x, y in ds]
    assert shapes[0] == ((16, 7, 3), (16,))
    assert shapes[-1] == ((94 % 16, 7, 3), (94 % 16,))
    assert len(shapes) == len(ds)


def test_batch_size_none_yields_single_samples():
    data = np.arange(40, dtype=np.float32).reshape(20, 2)
    ds = timeseries_dataset_from_array(data, np.arange(20.0), sequence_length=5, batch_size=None)
    samples = list(ds)
    assert len(ds) == len(samples) == 16
    x, y = samples[2]
    assert x.shape == (5, 2) and np.shape(y) == ()
    assert np.array_equal(x, data[2:7])
    assert y == 2.0


def test_targets_none_yields_inputs_only():
    batch = next(iter(timeseries_dataset_from_array(np.arange(10.0), None, 4, batch_size=2)))
    assert isinstance(batch, np.ndarray)
    assert _rows(batch) == [[0, 1, 2, 3], [1, 2, 3, 4]]


def test_dtypes_are_kept_as_keras_does():
    ds = timeseries_dataset_from_array(np.arange(10.0, dtype=np.float32), np.arange(10.0), 3, batch_size=4)
    x, y = next(iter(ds))
    assert x.dtype == np.float32 and y.dtype == np.float64
    x, labels = next(iter(timeseries_dataset_from_array(np.arange(10), np.arange(10) % 2 == 1, 3)))
    assert x.dtype == np.int64 and labels.dtype == np.bool_


def test_torch_backend_yields_tensors_and_keeps_tensor_data_on_its_device():
    data = torch.arange(20, dtype=torch.float32)
    ds = timeseries_dataset_from_array(data, data * 10, 4, batch_size=8).with_backend("torch")
    x, y = next(iter(ds))
    assert isinstance(x, torch.Tensor) and x.shape == (8, 4) and x.dtype == torch.float32
    assert torch.equal(x[:, 0] * 10, y)
    x_np = next(iter(timeseries_dataset_from_array(data, None, 4, batch_size=8).batch(1)))
    assert isinstance(x_np, np.ndarray) and x_np.shape == (1, 8, 4)


def test_dataset_methods_apply_to_windows():
    ds = timeseries_dataset_from_array(np.arange(12), np.arange(12) * 10, 3, batch_size=None)
    assert isinstance(ds, Dataset) and ds.cardinality() == 10
    batches = list(ds.batch(4))       # unbatched windows are gathered a batch at a time
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert _rows(batches[1][0]) == [[4, 5, 6], [5, 6, 7], [6, 7, 8], [7, 8, 9]]
    mapped = timeseries_dataset_from_array(np.arange(12), None, 3, batch_size=5).map(lambda x: x.sum(axis=1))
    assert [b.tolist() for b in mapped] == [[3, 6, 9, 12, 15], [18, 21, 24, 27, 30]]
    assert [len(b) for b in timeseries_dataset_from_array(np.arange(12), None, 3, batch_size=4).unbatch().batch(7)] \
        == [7, 3]


def _epoch_starts(ds):
    """First row of every window, in the order one epoch yields them."""
    return [rows[0] for x, _ in ds for rows in _rows(x)]


def test_shuffle_is_deterministic_and_reshuffles_each_epoch():
    data = np.arange(200)

    def make():
        return timeseries_dataset_from_array(data, data, sequence_length=5, sequence_stride=2,
                                             batch_size=8, shuffle=True, seed=1234)

    a, b = make(), make()
    epochs_a = [_epoch_starts(a) for _ in range(3)]
    epochs_b = [_epoch_starts(b) for _ in range(3)]
    assert epochs_a == epochs_b
    assert epochs_a[0] != epochs_a[1] and epochs_a[1] != epochs_a[2]
    expected = list(range(0, 196, 2))
    for epoch in epochs_a:
        assert sorted(epoch) == expected
    # The first epoch uses Keras's order of start positions.
    keras_order = np.arange(0, 196, 2)
    np.random.RandomState(1234).shuffle(keras_order)
    assert epochs_a[0] == keras_order.tolist()
    assert epochs_a[0] != _epoch_starts(timeseries_dataset_from_array(
        data, data, 5, sequence_stride=2, batch_size=8, shuffle=True, seed=99))


def test_shuffled_targets_stay_aligned():
    data = np.arange(60)
    ds = timeseries_dataset_from_array(data, data * 10, 4, batch_size=7, shuffle=True, seed=0)
    for x, y in ds:
        assert np.array_equal(x[:, 0] * 10, y)


def test_shuffle_without_seed_follows_numpy_global_seed():
    np.random.seed(7)
    a = timeseries_dataset_from_array(np.arange(50), None, 3, shuffle=True)
    np.random.seed(7)
    b = timeseries_dataset_from_array(np.arange(50), None, 3, shuffle=True)
    assert a.seed == b.seed
    assert np.array_equal(next(iter(a)), next(iter(b)))


def test_dataset_is_lazy_and_does_not_copy_float32_data():
    # Jena-sized series: materialising its windows would take about 2.8 GB.
    data = np.zeros((420_551, 14), dtype=np.float32)
    data[:, 0] = np.arange(len(data))
    ds = timeseries_dataset_from_array(data[:-1000], data[1000:, 1], sequence_length=120,
                                       sampling_rate=6, batch_size=256, shuffle=True, seed=0)
    assert isinstance(ds, TimeseriesDataset)
    assert np.shares_memory(ds.data, data)
    held = sum(v.numel() if isinstance(v, torch.Tensor) else v.size
               for v in vars(ds).values() if isinstance(v, (torch.Tensor, np.ndarray)))
    assert held < 2 * data.size
    x, y = next(iter(ds))
    assert x.shape == (256, 120, 14)
    start = int(x[0, 0, 0])
    assert np.array_equal(x[0, :, 0], np.arange(start, start + 720, 6, dtype=np.float32))

    tensor = torch.arange(30, dtype=torch.float32)
    assert timeseries_dataset_from_array(tensor, None, 5).data.data_ptr() == tensor.data_ptr()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sequence_length=0), "sequence_length"),
        (dict(sequence_length=3, sampling_rate=0), "sampling_rate"),
        (dict(sequence_length=3, sequence_stride=0), "sequence_stride"),
        (dict(sequence_length=3, batch_size=0), "batch_size"),
        (dict(sequence_length=3, start_index=10, end_index=10), "start_index"),
        (dict(sequence_length=3, start_index=12, end_index=5), "start_index"),
        (dict(sequence_length=3, end_index=500), "end_index"),
        (dict(sequence_length=3, start_index=-1), "start_index"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        timeseries_dataset_from_array(np.arange(100.0), None, **kwargs)


def test_too_short_data_says_rows_needed_and_available():
    with pytest.raises(ValueError, match=r"needs 715 rows, but rows \[0, 500\) hold only 500"):
        timeseries_dataset_from_array(np.zeros((500, 2)), None, sequence_length=120, sampling_rate=6)
