"""``rnnkit.data``: a lazy, re-iterable dataset with the ``tf.data`` methods Keras programs call,
without TensorFlow.

    from rnnkit.data import AUTOTUNE, Dataset

    ds = (Dataset.from_tensor_slices((x, y))          # arrays, tuples or dicts of arrays
          .shuffle(1000, seed=0)                       # a new order every pass, the same sequence
          .batch(32)                                   #   of orders for the same seed
          .map(lambda xb, yb: (xb / 255.0, yb))        # after batch() the function gets batches
          .prefetch(AUTOTUNE))                         # accepted; does nothing
    for xb, yb in ds:                                  # NumPy arrays, tuples and dicts kept
        ...
    model.fit(ds, epochs=3)
    for xb, yb in ds.with_backend("torch"):            # torch tensors instead (strings stay NumPy)
        ...

Nothing runs until the dataset is iterated, and every ``iter(ds)`` starts again from the
beginning (so one dataset serves every epoch). Elements are NumPy arrays and scalars (strings:
NumPy ``str`` arrays, where TensorFlow gives ``bytes``); functions passed to ``map`` and
``filter`` get them unpacked as ``tf.data`` does (``fn(x, y)`` for a tuple element, ``fn(d)``
for a dict) and may return NumPy arrays or torch tensors. ``with_backend("torch")`` only
changes what iteration hands out; ``as_numpy_iterator()`` always gives NumPy.

Differences from ``tf.data``: no ``element_spec`` (shapes are whatever the arrays have);
``shuffle`` draws from NumPy's generator (the same distribution, not TensorFlow's numbers),
and with ``seed=None`` its seed is drawn from NumPy's global generator, so
``rnnkit.utils.set_random_seed`` makes it repeatable; ``cache()`` keeps elements in memory
only; ``prefetch`` and ``num_parallel_calls`` are accepted and ignored (everything runs in the
iterating thread).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

__all__ = ["AUTOTUNE", "Dataset", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY"]

AUTOTUNE = -1
INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2
_BACKENDS = ("numpy", "torch")


class Cardinality(int):
    """The number of elements, an ``int`` with ``.numpy()`` (``ds.cardinality().numpy()`` works as
    with ``tf.data``): ``INFINITE_CARDINALITY`` (-1) or ``UNKNOWN_CARDINALITY`` (-2) when not finite
    or not known without iterating."""

    def numpy(self):
        return np.int64(self)


# ----- element structures: tuples and dicts of leaves (arrays, tensors, scalars, strings) ----------
def _is_tuple(x):
    return isinstance(x, tuple)


def _rebuild_tuple(like, items):
    return type(like)(*items) if hasattr(like, "_fields") else tuple(items)


def _map_structure(fn, *structs):
    first = structs[0]
    if isinstance(first, dict):
        return {k: _map_structure(fn, *(s[k] for s in structs)) for k in first}
    if _is_tuple(first):
        return _rebuild_tuple(first, [_map_structure(fn, *items) for items in zip(*structs)])
    return fn(*structs)


def _flatten(struct):
    if isinstance(struct, dict):
        return [leaf for k in struct for leaf in _flatten(struct[k])]
    if _is_tuple(struct):
        return [leaf for item in struct for leaf in _flatten(item)]
    return [struct]


def _same_structure(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_structure(a[k], b[k]) for k in a)
    if _is_tuple(a):
        return _is_tuple(b) and len(a) == len(b) and all(_same_structure(x, y) for x, y in zip(a, b))
    return not (isinstance(b, dict) or _is_tuple(b))


def _call(fn, element):
    """Call ``fn`` on one element the way ``tf.data`` does: tuples are unpacked into arguments."""
    return fn(*element) if _is_tuple(element) else fn(element)


def _as_leaf_array(value, what):
    """A leaf of ``from_tensor_slices`` as a NumPy array or torch tensor with a leading axis."""
    if isinstance(value, torch.Tensor):
        leaf = value.detach()
    else:
        if hasattr(value, "to_numpy"):  # pandas
            value = value.to_numpy()
        leaf = np.asarray(value)
        if leaf.dtype.kind == "O" and leaf.size and all(isinstance(v, (str, bytes)) for v in leaf.flat):
            leaf = leaf.astype(str)
    if leaf.ndim == 0:
        raise ValueError(f"Dataset.from_tensor_slices: {what} is a scalar ({value!r}); each component "
                         "needs a first axis to slice along.")
    return leaf


def _stack(values):
    """One batch from a list of leaves (all torch tensors -> a tensor, else a NumPy array)."""
    if all(isinstance(v, torch.Tensor) for v in values):
        shapes = {tuple(v.shape) for v in values}
        if len(shapes) > 1:
            raise _shape_error(shapes)
        return torch.stack(values)
    arrays = [v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for v in values]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise _shape_error(shapes)
    return np.stack(arrays)


def _shape_error(shapes):
    a, b = sorted(shapes)[:2]
    return ValueError(f"Dataset.batch: elements have different shapes {a} and {b}, so they cannot be stacked "
                      "into one batch; pad them to one length first (e.g. rnnkit.utils.pad_sequences).")


def _rows(leaf):
    return leaf.shape[0] if isinstance(leaf, (np.ndarray, torch.Tensor)) else len(leaf)


def _to_numpy(leaf):
    if isinstance(leaf, torch.Tensor):
        return leaf.detach().cpu().numpy()
    return leaf


def _to_torch(leaf):
    if isinstance(leaf, torch.Tensor):
        return leaf
    if isinstance(leaf, (np.ndarray, np.generic)):
        if leaf.dtype.kind in "USO":
            return leaf
        return torch.from_numpy(np.ascontiguousarray(leaf)) if isinstance(leaf, np.ndarray) else torch.tensor(leaf)
    if isinstance(leaf, (bool, int, float)):
        return torch.tensor(leaf)
    return leaf


def _check_count(count, what):
    if count is None or isinstance(count, bool) or not isinstance(count, (int, np.integer)):
        raise TypeError(f"Dataset.{what}: count must be an integer, got {count!r}.")
    return int(count)


def _positive(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Dataset.{what} must be a positive integer, got {value!r}.")
    return int(value)


class Dataset:
    """A lazy, re-iterable sequence of elements with ``tf.data.Dataset``'s methods.

    Build one with :meth:`from_tensor_slices`, :meth:`range` or :meth:`zip` (or get one from
    ``rnnkit.utils.timeseries_dataset_from_array`` / ``text_dataset_from_directory``); every
    method returns a new dataset and leaves this one unchanged. See the module docstring.

        ds = Dataset.from_tensor_slices({"a": [1, 2, 3], "b": [4, 5, 6]}).batch(2)
        list(ds)      # [{'a': array([1, 2]), 'b': array([4, 5])}, {'a': array([3]), 'b': array([6])}]
    """

    INFINITE = INFINITE_CARDINALITY
    UNKNOWN = UNKNOWN_CARDINALITY

    def __init__(self, source=None, backend=None):
        self._source = source
        self._backend = backend or (source._backend if source is not None else "numpy")

    # ----- what a dataset class defines ---------------------------------------------------------
    def _iter(self):
        """The elements, as the pipeline makes them (NumPy or torch leaves)."""
        raise NotImplementedError

    def _cardinality(self):
        return UNKNOWN_CARDINALITY

    # Datasets whose elements are rows of arrays ("indexable") give an order of row indices and the
    # rows for an index or an index array; batch() then gathers whole batches at once.
    _indexable = False

    def _index_order(self):
        raise NotImplementedError

    def _gather(self, index):
        raise NotImplementedError

    # ----- iteration ----------------------------------------------------------------------------
    def __iter__(self):
        convert = _to_torch if self._backend == "torch" else _to_numpy
        for element in self._iter():
            yield _map_structure(convert, element)

    def as_numpy_iterator(self):
        """Iterate with every leaf as a NumPy array or scalar, whatever the backend.

            list(Dataset.range(3).as_numpy_iterator())   # [0, 1, 2]
        """
        for element in self._iter():
            yield _map_structure(_to_numpy, element)

    def with_backend(self, backend):
        """The same dataset, yielding ``"torch"`` tensors or ``"numpy"`` arrays (the default) when
        iterated; datasets made from it keep the choice. Strings stay NumPy arrays under torch.

            for xb, yb in ds.with_backend("torch"): ...
        """
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}.")
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._backend = backend
        return clone

    def cardinality(self):
        """The number of elements, or ``INFINITE_CARDINALITY`` / ``UNKNOWN_CARDINALITY``
        (after ``filter``, ``unbatch``, ...).

            Dataset.range(10).batch(3).cardinality()      # 4
        """
        return Cardinality(self._cardinality())

    def __len__(self):
        n = self._cardinality()
        if n == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if n == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return n

    def __bool__(self):
        return True

    def __repr__(self):
        n = self._cardinality()
        size = {INFINITE_CARDINALITY: "infinite", UNKNOWN_CARDINALITY: "unknown"}.get(n, str(n))
        return f"<{type(self).__name__.lstrip('_')} Dataset: {size} elements, backend={self._backend!r}>"

    # ----- sources ------------------------------------------------------------------------------
    @staticmethod
    def from_tensor_slices(tensors):
        """Slice arrays along their first axis: one element per row.

        Args:
            tensors: an array-like, a torch tensor, or a tuple / dict of them (nested as you
                like); all need the same first dimension. Lists are arrays, as in tf.data.

            Dataset.from_tensor_slices((np.arange(3), np.array(["a", "b", "c"])))
            # elements (0, 'a'), (1, 'b'), (2, 'c')
        """
        return _TensorSlices(tensors)

    @staticmethod
    def range(*args):
        """Integers as Python's ``range(start, stop, step)`` (NumPy int64 scalars).

            list(Dataset.range(1, 7, 2).as_numpy_iterator())   # [1, 3, 5]
        """
        return _TensorSlices(np.arange(*args, dtype=np.int64))

    @staticmethod
    def zip(*datasets):
        """Combine datasets element by element into tuples (or dicts); stops at the shortest.

        Args:
            datasets: datasets, or one tuple / dict of datasets (``tf.data``'s form).

            Dataset.zip(Dataset.range(3), Dataset.range(3).map(lambda i: i * 10))
            # elements (0, 0), (1, 10), (2, 20)
        """
        if len(datasets) == 1 and isinstance(datasets[0], (tuple, list, dict)):
            datasets = datasets[0]
        if not datasets:
            raise ValueError("Dataset.zip needs at least one dataset.")
        for d in _flatten(tuple(datasets) if isinstance(datasets, list) else datasets):
            if not isinstance(d, Dataset):
                raise TypeError(f"Dataset.zip takes rnnkit.data.Dataset objects, got {type(d).__name__}.")
        return _Zip(tuple(datasets) if isinstance(datasets, list) else datasets)

    # ----- transformations ----------------------------------------------------------------------
    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        """Apply ``map_func`` to every element (after ``batch``: to every batch).

        Args:
            map_func: called as ``map_func(*element)`` for a tuple element, else
                ``map_func(element)``; returns the new element (arrays, tensors, tuples, dicts).
            num_parallel_calls, deterministic, name: accepted for tf.data compatibility.

            Dataset.range(3).map(lambda i: i * 2)         # 0, 2, 4
        """
        if not callable(map_func):
            raise TypeError(f"Dataset.map needs a function, got {type(map_func).__name__}.")
        return _Map(self, map_func)

    def filter(self, predicate, name=None):
        """Keep the elements for which ``predicate`` (called like ``map``'s function) is true.

            Dataset.range(6).filter(lambda i: i % 2 == 0)  # 0, 2, 4
        """
        if not callable(predicate):
            raise TypeError(f"Dataset.filter needs a function, got {type(predicate).__name__}.")
        return _Filter(self, predicate)

    def take(self, count, name=None):
        """The first ``count`` elements (all of them for ``count=-1``).

            Dataset.range(10).take(3)                      # 0, 1, 2
        """
        return _Take(self, _check_count(count, "take"))

    def skip(self, count, name=None):
        """All but the first ``count`` elements (none for ``count=-1``).

            Dataset.range(5).skip(3)                       # 3, 4
        """
        return _Skip(self, _check_count(count, "skip"))

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None, deterministic=None,
              name=None):
        """Stack ``batch_size`` consecutive elements into one (component by component).

        Args:
            batch_size: elements per batch; the last batch may be smaller...
            drop_remainder: ...unless this is True, which drops it.

            Dataset.range(5).batch(2)                      # [0, 1], [2, 3], [4]
        """
        return _Batch(self, _positive(batch_size, "batch_size"), bool(drop_remainder))

    def unbatch(self, name=None):
        """Split every element along its first axis (the inverse of ``batch``).

            Dataset.range(5).batch(2).unbatch()            # 0, 1, 2, 3, 4
        """
        return _Unbatch(self)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True, name=None):
        """Shuffle with a buffer of ``buffer_size`` elements, as ``tf.data``: each output is drawn
        at random from the buffer, which the next input refills. A buffer at least as large as
        the dataset gives a uniform permutation.

        Args:
            buffer_size: elements held in the buffer.
            seed: seed of the draws; ``None`` draws one from NumPy's global generator now.
            reshuffle_each_iteration: a new order at every iteration (the orders follow from
                the seed, so they repeat for the same seed); False repeats the first order.

            Dataset.range(5).shuffle(5, seed=0)            # e.g. 3, 0, 4, 1, 2
        """
        buffer_size = _positive(buffer_size, "shuffle buffer_size")
        if seed is None:
            seed = int(np.random.randint(2**31 - 1))
        return _Shuffle(self, buffer_size, int(seed), bool(reshuffle_each_iteration))

    def repeat(self, count=None, name=None):
        """Repeat the dataset ``count`` times (forever for ``None`` or -1); each pass iterates
        again, so a shuffle before ``repeat`` reshuffles every pass.

            Dataset.range(2).repeat(2)                     # 0, 1, 0, 1
        """
        return _Repeat(self, -1 if count is None else _check_count(count, "repeat"))

    def cache(self, filename="", name=None):
        """Keep the elements of the first complete iteration in memory and replay them after.

            ds = Dataset.from_tensor_slices(paths).map(read_file).cache()   # files read once
        """
        if filename:
            raise ValueError("rnnkit.data caches in memory only: call cache() without a filename.")
        return _Cache(self)

    def prefetch(self, buffer_size=AUTOTUNE, name=None):
        """Accepted for ``tf.data`` compatibility; returns the dataset unchanged."""
        return self

    def concatenate(self, dataset, name=None):
        """This dataset's elements, then ``dataset``'s.

            Dataset.range(2).concatenate(Dataset.range(5, 7))   # 0, 1, 5, 6
        """
        if not isinstance(dataset, Dataset):
            raise TypeError(f"Dataset.concatenate takes a rnnkit.data.Dataset, got {type(dataset).__name__}.")
        return _Concatenate(self, dataset)


# ----- sources ------------------------------------------------------------------------------------
class _TensorSlices(Dataset):
    def __init__(self, tensors):
        super().__init__(backend="numpy")
        self._tensors = _map_structure(lambda leaf: _as_leaf_array(leaf, "a component"), tensors)
        sizes = {_rows(leaf) for leaf in _flatten(self._tensors)}
        if len(sizes) > 1:
            raise ValueError("Dataset.from_tensor_slices: all components need the same first dimension; "
                             f"got {sorted(sizes)}.")
        self._n = sizes.pop()

    _indexable = True

    def _index_order(self):
        return iter(range(self._n))

    def _gather(self, index):
        if isinstance(index, np.ndarray):
            return _map_structure(lambda leaf: leaf[torch.from_numpy(index)] if isinstance(leaf, torch.Tensor)
                                  else leaf[index], self._tensors)
        return _map_structure(lambda leaf: leaf[index], self._tensors)

    def _iter(self):
        for i in range(self._n):
            yield self._gather(i)

    def _cardinality(self):
        return self._n


class _Zip(Dataset):
    def __init__(self, datasets):
        super().__init__(source=_flatten(datasets)[0])
        self._datasets = datasets

    def _iter(self):
        flat = _flatten(self._datasets)
        for items in zip(*flat):
            it = iter(items)
            yield _map_structure(lambda _: next(it), self._datasets)

    def _cardinality(self):
        sizes = [d._cardinality() for d in _flatten(self._datasets)]
        finite = [n for n in sizes if n >= 0]
        if finite and (min(finite) == 0 or all(n != UNKNOWN_CARDINALITY for n in sizes)):
            return min(finite)
        return UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in sizes else INFINITE_CARDINALITY


# ----- element-wise transformations ---------------------------------------------------------------
class _Map(Dataset):
    def __init__(self, source, fn):
        super().__init__(source)
        self._fn = fn

    def _iter(self):
        for element in self._source._iter():
            yield _call(self._fn, element)

    def _cardinality(self):
        return self._source._cardinality()


class _Filter(Dataset):
    def __init__(self, source, predicate):
        super().__init__(source)
        self._predicate = predicate

    def _iter(self):
        for element in self._source._iter():
            keep = _call(self._predicate, element)
            if isinstance(keep, torch.Tensor):
                keep = keep.item()
            if bool(np.asarray(keep)):
                yield element


class _Take(Dataset):
    def __init__(self, source, count):
        super().__init__(source)
        self._count = count
        self._indexable = source._indexable

    def _limit(self, iterator):
        return iterator if self._count < 0 else itertools.islice(iterator, self._count)

    def _iter(self):
        return self._limit(self._source._iter())

    def _index_order(self):
        return self._limit(self._source._index_order())

    def _gather(self, index):
        return self._source._gather(index)

    def _cardinality(self):
        n = self._source._cardinality()
        if self._count < 0:
            return n
        if n == INFINITE_CARDINALITY:
            return self._count
        if n == UNKNOWN_CARDINALITY:
            return 0 if self._count == 0 else UNKNOWN_CARDINALITY
        return min(n, self._count)


class _Skip(_Take):
    def _limit(self, iterator):
        if self._count < 0:
            return iter(())
        return itertools.islice(iterator, self._count, None)

    def _cardinality(self):
        n = self._source._cardinality()
        if self._count < 0:
            return 0
        return n if n < 0 else max(n - self._count, 0)


class _Batch(Dataset):
    def __init__(self, source, batch_size, drop_remainder):
        super().__init__(source)
        self._batch_size = batch_size
        self._drop_remainder = drop_remainder

    def _chunks(self, iterator):
        while True:
            chunk = list(itertools.islice(iterator, self._batch_size))
            if not chunk or (self._drop_remainder and len(chunk) < self._batch_size):
                return
            yield chunk

    def _iter(self):
        if self._source._indexable:  # gather whole batches of rows at once
            for chunk in self._chunks(self._source._index_order()):
                yield self._source._gather(np.asarray(chunk, dtype=np.int64))
            return
        for chunk in self._chunks(self._source._iter()):
            yield _map_structure(lambda *leaves: _stack(list(leaves)), *chunk)

    def _cardinality(self):
        n = self._source._cardinality()
        if n < 0:
            return n
        return n // self._batch_size if self._drop_remainder else math.ceil(n / self._batch_size)


class _Unbatch(Dataset):
    def _iter(self):
        for batch in self._source._iter():
            leaves = _flatten(batch)
            sizes = {_rows(leaf) for leaf in leaves}
            if len(sizes) > 1:
                raise ValueError(f"Dataset.unbatch: the components of an element have different first "
                                 f"dimensions {sorted(sizes)}.")
            for i in range(sizes.pop()):
                yield _map_structure(lambda leaf: leaf[i], batch)


class _Shuffle(Dataset):
    def __init__(self, source, buffer_size, seed, reshuffle):
        super().__init__(source)
        self._buffer_size = buffer_size
        self._seed = seed
        self._reshuffle = reshuffle
        self._epoch = 0
        self._indexable = source._indexable

    def _rng(self):
        epoch = self._epoch if self._reshuffle else 0
        self._epoch += 1
        return np.random.default_rng([self._seed, epoch])

    def _shuffled(self, iterator, rng):
        """tf.data's buffer shuffle: fill the buffer, then emit a random slot and refill it."""
        buffer = list(itertools.islice(iterator, self._buffer_size))
        draws = iter(())
        for item in iterator:
            slot = next(draws, None)
            if slot is None:
                draws = iter(rng.integers(0, self._buffer_size, size=1024).tolist())
                slot = next(draws)
            yield buffer[slot]
            buffer[slot] = item
        for slot in rng.permutation(len(buffer)).tolist():
            yield buffer[slot]

    def _iter(self):
        return self._shuffled(self._source._iter(), self._rng())

    def _index_order(self):
        return self._shuffled(self._source._index_order(), self._rng())

    def _gather(self, index):
        return self._source._gather(index)

    def _cardinality(self):
        return self._source._cardinality()


class _Repeat(Dataset):
    def __init__(self, source, count):
        super().__init__(source)
        self._count = count
        self._indexable = source._indexable

    def _passes(self, make):
        passes = itertools.count() if self._count < 0 else range(self._count)
        for _ in passes:
            empty = True
            for item in make():
                empty = False
                yield item
            if empty:  # repeating nothing forever would hang: tf.data stops too
                return

    def _iter(self):
        return self._passes(self._source._iter)

    def _index_order(self):
        return self._passes(self._source._index_order)

    def _gather(self, index):
        return self._source._gather(index)

    def _cardinality(self):
        n = self._source._cardinality()
        if n == 0 or self._count == 0:
            return 0
        if self._count < 0:
            return INFINITE_CARDINALITY if n != UNKNOWN_CARDINALITY else UNKNOWN_CARDINALITY
        return n * self._count if n >= 0 else n


class _Cache(Dataset):
    def __init__(self, source):
        super().__init__(source)
        self._elements = None

    def _iter(self):
        if self._elements is not None:
            yield from self._elements
            return
        seen = []
        for element in self._source._iter():
            seen.append(element)
            yield element
        self._elements = seen  # only a complete pass is kept

    def _cardinality(self):
        return self._source._cardinality()


class _Concatenate(Dataset):
    def __init__(self, first, second):
        super().__init__(first)
        self._second = second

    def _iter(self):
        first = None
        for element in self._source._iter():
            first = element if first is None else first
            yield element
        for element in self._second._iter():
            if first is not None and not _same_structure(first, element):
                raise ValueError("Dataset.concatenate: the two datasets have elements of different structure "
                                 "(tuple lengths or dict keys differ).")
            yield element

    def _cardinality(self):
        a, b = self._source._cardinality(), self._second._cardinality()
        if INFINITE_CARDINALITY in (a, b):
            return INFINITE_CARDINALITY
        if UNKNOWN_CARDINALITY in (a, b):
            return UNKNOWN_CARDINALITY
        return a + b
