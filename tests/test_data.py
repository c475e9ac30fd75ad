"""rnnkit.data.Dataset against hand-computed tf.data results."""
import numpy as np
import pytest
import torch

from rnnkit.data import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset


def values(ds):
    """Elements as plain Python values (lists for arrays)."""
    def plain(x):
        if isinstance(x, tuple):
            return tuple(plain(v) for v in x)
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return np.asarray(x).tolist()
    return [plain(e) for e in ds]


def test_from_tensor_slices_arrays_tuples_and_dicts():
    assert values(Dataset.from_tensor_slices([1, 2, 3])) == [1, 2, 3]
    assert values(Dataset.from_tensor_slices(np.arange(6).reshape(3, 2))) == [[0, 1], [2, 3], [4, 5]]
    pairs = Dataset.from_tensor_slices((np.arange(3), np.array(["a", "b", "c"])))
    assert values(pairs) == [(0, "a"), (1, "b"), (2, "c")]
    nested = Dataset.from_tensor_slices({"x": [[1, 2], [3, 4]], "y": ([5, 6], [7, 8])})
    assert values(nested) == [{"x": [1, 2], "y": (5, 7)}, {"x": [3, 4], "y": (6, 8)}]
    element = next(iter(Dataset.from_tensor_slices(np.arange(3.0))))
    assert isinstance(element, np.floating)


def test_from_tensor_slices_errors():
    with pytest.raises(ValueError, match="same first dimension"):
        Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="scalar"):
        Dataset.from_tensor_slices(5)


def test_batch_unbatch_and_drop_remainder():
    ds = Dataset.range(7)
    assert values(ds.batch(3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert values(ds.batch(3, drop_remainder=True)) == [[0, 1, 2], [3, 4, 5]]
    assert values(ds.batch(3).unbatch()) == list(range(7))
    assert ds.batch(3).cardinality() == 3 and ds.batch(3, drop_remainder=True).cardinality() == 2
    # batching elements that are not rows of arrays (after map) stacks them
    assert values(ds.map(lambda i: (i, i * i)).batch(4)) == [([0, 1, 2, 3], [0, 1, 4, 9]), ([4, 5, 6], [16, 25, 36])]
    with pytest.raises(ValueError, match="different shapes"):
        list(Dataset.range(3).map(lambda i: np.zeros(int(i) + 1)).batch(3))
    with pytest.raises(ValueError, match="positive integer"):
        ds.batch(0)


def test_map_filter_take_skip():
    ds = Dataset.range(10)
    assert values(ds.map(lambda i: i * 2).take(3)) == [0, 2, 4]
    assert values(ds.filter(lambda i: i % 3 == 0)) == [0, 3, 6, 9]
    assert values(ds.skip(7)) == [7, 8, 9]
    assert values(ds.take(-1)) == list(range(10)) and values(ds.skip(-1)) == []
    # map unpacks tuples; after batch() the function receives whole batches
    pairs = Dataset.from_tensor_slices((np.arange(4.0), np.arange(4) * 10))
    assert values(pairs.map(lambda x, y: (y, x))) == [(0, 0.0), (10, 1.0), (20, 2.0), (30, 3.0)]
    assert values(pairs.batch(2).map(lambda x, y: x.sum() + y.sum())) == [11.0, 55.0]
    dicts = Dataset.from_tensor_slices({"a": [1, 2]})
    assert values(dicts.map(lambda d: d["a"] + 1)) == [2, 3]
    assert values(ds.filter(lambda i: torch.tensor(i > 7))) == [8, 9]


def test_cardinality_and_len():
    ds = Dataset.range(10)
    assert ds.cardinality() == 10 and len(ds) == 10
    assert ds.cardinality().numpy() == 10
    assert ds.take(3).cardinality() == 3 and ds.skip(4).cardinality() == 6 and ds.skip(20).cardinality() == 0
    assert ds.repeat().cardinality() == INFINITE_CARDINALITY == Dataset.INFINITE
    assert ds.repeat(3).cardinality() == 30
    assert ds.repeat().take(5).cardinality() == 5
    assert ds.filter(lambda i: True).cardinality() == UNKNOWN_CARDINALITY == Dataset.UNKNOWN
    assert ds.batch(2).unbatch().cardinality() == UNKNOWN_CARDINALITY
    assert ds.concatenate(Dataset.range(5)).cardinality() == 15
    assert Dataset.zip(ds, ds.take(4)).cardinality() == 4
    with pytest.raises(TypeError, match="infinite"):
        len(ds.repeat())
    with pytest.raises(TypeError, match="unknown"):
        len(ds.filter(lambda i: True))


def test_repeat_concatenate_zip():
    ds = Dataset.range(3)
    assert values(ds.repeat(2)) == [0, 1, 2, 0, 1, 2]
    assert values(ds.repeat().take(7)) == [0, 1, 2, 0, 1, 2, 0]
    assert values(ds.concatenate(Dataset.range(10, 12))) == [0, 1, 2, 10, 11]
    assert values(Dataset.zip(ds, ds.map(lambda i: i * 10))) == [(0, 0), (1, 10), (2, 20)]
    assert values(Dataset.zip((ds, ds.take(2)))) == [(0, 0), (1, 1)]
    assert values(Dataset.zip({"a": ds, "b": ds.skip(1)})) == [{"a": 0, "b": 1}, {"a": 1, "b": 2}]
    with pytest.raises(TypeError, match="Dataset"):
        Dataset.zip(ds, [1, 2])
    with pytest.raises(ValueError, match="structure"):
        list(Dataset.from_tensor_slices(([1], [2])).concatenate(Dataset.range(2)))


def test_shuffle_is_a_permutation_reshuffled_per_iteration_and_seeded():
    ds = Dataset.range(20).shuffle(20, seed=3)
    first, second = values(ds), values(ds)
    assert sorted(first) == sorted(second) == list(range(20))
    assert first != second and first != list(range(20))
    again = Dataset.range(20).shuffle(20, seed=3)
    assert values(again) == first and values(again) == second          # the same sequence of orders
    fixed = Dataset.range(20).shuffle(20, seed=3, reshuffle_each_iteration=False)
    assert values(fixed) == values(fixed)
    assert values(Dataset.range(20).shuffle(20, seed=4)) != first


def test_shuffle_buffer_limits_how_far_elements_move():
    # with a buffer of 2, the first output is element 0 or 1 and no element comes out more than
    # (buffer - 1) places before its position
    for seed in range(10):
        order = values(Dataset.range(30).shuffle(2, seed=seed))
        assert sorted(order) == list(range(30))
        assert order[0] in (0, 1)
        assert all(pos >= value - 1 for pos, value in enumerate(order))


def test_shuffle_then_batch_gathers_the_same_rows_as_elementwise():
    x = np.arange(10) * 10
    fast = values(Dataset.from_tensor_slices(x).shuffle(4, seed=0).batch(3))
    slow = values(Dataset.from_tensor_slices(x).map(lambda v: v).shuffle(4, seed=0).batch(3))
    assert fast == slow
    assert sorted(v for b in fast for v in b) == x.tolist()


def test_shuffle_without_seed_follows_numpy_global_seed():
    np.random.seed(1)
    a = values(Dataset.range(10).shuffle(10))
    np.random.seed(1)
    assert values(Dataset.range(10).shuffle(10)) == a


def test_repeat_after_shuffle_reshuffles_every_pass():
    passes = values(Dataset.range(6).shuffle(6, seed=0).repeat(2).batch(6))
    assert sorted(passes[0]) == sorted(passes[1]) == list(range(6)) and passes[0] != passes[1]


def test_cache_replays_the_first_complete_pass():
    calls = []

    def record(i):
        calls.append(int(i))
        return i

    ds = Dataset.range(4).map(record).cache()
    assert values(ds.take(2)) == [0, 1]           # a partial pass is not kept
    assert values(ds) == [0, 1, 2, 3] and values(ds) == [0, 1, 2, 3]
    assert calls == [0, 1, 0, 1, 2, 3]
    with pytest.raises(ValueError, match="memory"):
        Dataset.range(2).cache("/tmp/cache")


def test_backends_numpy_default_torch_on_request():
    ds = Dataset.from_tensor_slices((np.arange(4, dtype=np.float32), np.array(["a", "b", "c", "d"]))).batch(2)
    x, s = next(iter(ds))
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and s.tolist() == ["a", "b"]
    tx, ts = next(iter(ds.with_backend("torch")))
    assert isinstance(tx, torch.Tensor) and tx.dtype == torch.float32 and isinstance(ts, np.ndarray)
    # datasets made from a torch-backend dataset keep it; as_numpy_iterator always gives NumPy
    torch_ds = Dataset.range(3).with_backend("torch")
    assert all(isinstance(v, torch.Tensor) for v in torch_ds.map(lambda i: i + 1))
    assert values(torch_ds.as_numpy_iterator()) == [0, 1, 2]
    # tensors made inside map come out as NumPy on the default backend
    out = next(iter(Dataset.range(2).batch(2).map(lambda b: torch.as_tensor(b) * 2)))
    assert isinstance(out, np.ndarray) and out.tolist() == [0, 2]
    with pytest.raises(ValueError, match="backend"):
        ds.with_backend("jax")


def test_torch_tensors_slice_and_batch_as_tensors():
    ds = Dataset.from_tensor_slices(torch.arange(6).reshape(3, 2)).with_backend("torch").batch(2)
    first = next(iter(ds))
    assert isinstance(first, torch.Tensor) and first.tolist() == [[0, 1], [2, 3]]


def test_prefetch_and_autotune_are_accepted():
    ds = Dataset.range(3).map(lambda i: i, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    assert values(ds) == [0, 1, 2]


def test_fit_style_iteration_is_repeatable():
    x, y = np.random.default_rng(0).normal(size=(10, 3)), np.arange(10)
    ds = Dataset.from_tensor_slices((x, y)).shuffle(10, seed=0).batch(4)
    epochs = [values(ds), values(ds)]
    assert len(ds) == 3 and [len(b[1]) for b in epochs[0]] == [4, 4, 2]
    assert sorted(v for b in epochs[1] for v in b[1]) == list(range(10))
    for xb, yb in ds:  # rows stay paired with their labels
        np.testing.assert_array_equal(xb, x[yb])
