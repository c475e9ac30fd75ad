"""Sliding windows over a time series, with the semantics of Keras 3's
``keras.utils.timeseries_dataset_from_array``.

Windows are never materialised: the dataset keeps the series and the start
position of every window, and builds each batch by fancy indexing when it is
requested. That keeps memory at one copy of the series even for the Jena
climate data (420,551 rows x 14 features, windows of 120 steps).
"""

from __future__ import annotations

import math
import operator

import numpy as np
import torch

from ..data import Dataset

__all__ = ["TimeseriesDataset", "timeseries_dataset_from_array"]


def _as_int(value, name):
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"`{name}` must be an integer. Received: {name}={value!r}") from None


def _as_array(array, name):
    """``array`` as a NumPy array or torch tensor, without a copy and with its dtype kept (as Keras)."""
    if isinstance(array, torch.Tensor):
        return array.detach()
    if hasattr(array, "to_numpy"):  # pandas
        array = array.to_numpy()
    array = np.asarray(array)
    if array.dtype == object:
        raise TypeError(f"`{name}` must be numeric; got an array of Python objects.")
    return array


class TimeseriesDataset(Dataset):
    """Lazy, re-iterable :class:`rnnkit.data.Dataset` of sliding windows.

    Iterating yields ``(x, y)`` tuples (``x`` only when the dataset has no targets) of NumPy
    arrays, or torch tensors after ``with_backend("torch")``, with the dtypes of ``data`` and
    ``targets``: ``x`` has shape ``(batch, sequence_length, *data.shape[1:])`` and ``y`` has
    shape ``(batch, *targets.shape[1:])``. With ``batch_size=None`` single samples are yielded
    without the batch axis. ``len()`` is the number of batches. Every ``Dataset`` method
    (``map``, ``take``, ``unbatch``, ...) applies.

    With ``shuffle=True`` every new iteration draws a fresh order of the windows from a
    generator seeded once with ``seed``: epochs differ from each other, yet the whole
    sequence of epochs is reproducible. The first epoch's order is exactly Keras's shuffled
    start positions.
    """

    def __init__(self, data, targets, start_positions, sequence_length, sampling_rate,
                 batch_size, shuffle, seed):
        super().__init__(backend="numpy")
        self.data = data
        self.targets = targets
        self.start_positions = start_positions
        self.sequence_length = sequence_length
        self.sampling_rate = sampling_rate
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self._offsets = np.arange(sequence_length, dtype=np.int64) * sampling_rate
        self._rng = np.random.RandomState(seed) if shuffle else None

    @property
    def num_samples(self):
        """Number of windows (samples) in one pass over the dataset."""
        return len(self.start_positions)

    def _cardinality(self):
        if self.batch_size is None:
            return self.num_samples
        return math.ceil(self.num_samples / self.batch_size)

    # Unbatched, the windows are rows that ``batch()`` can gather a batch at a time.
    @property
    def _indexable(self):
        return self.batch_size is None

    def _index_order(self):
        order = self.start_positions
        if self.shuffle:
            order = order.copy()
            self._rng.shuffle(order)
        return iter(order)

    def _iter(self):
        order = np.fromiter(self._index_order(), dtype=np.int64, count=self.num_samples)
        if self.batch_size is None:
            for start in order:
                yield self._gather(start)
            return
        for begin in range(0, len(order), self.batch_size):
            yield self._gather(order[begin:begin + self.batch_size])

    def _gather(self, starts):
        """The window(s) starting at ``starts`` (an integer or a 1-D array), with their targets."""
        starts = np.asarray(starts, dtype=np.int64)
        rows = starts[..., None] + self._offsets
        x = _take(self.data, rows)
        if self.targets is None:
            return x
        return x, _take(self.targets, starts)

    def __repr__(self):
        return (f"TimeseriesDataset(num_samples={self.num_samples}, batches={len(self)}, "
                f"batch_size={self.batch_size}, sequence_length={self.sequence_length}, "
                f"sampling_rate={self.sampling_rate}, shuffle={self.shuffle}, "
                f"targets={self.targets is not None})")


def _take(array, index):
    if isinstance(array, torch.Tensor):
        return array[torch.from_numpy(index).to(array.device)]
    return array[index]


def timeseries_dataset_from_array(
    data,
    targets,
    sequence_length,
    sequence_stride=1,
    sampling_rate=1,
    batch_size=128,
    shuffle=False,
    seed=None,
    start_index=None,
    end_index=None,
):
    """Create a dataset of sliding windows over a time series given as an array.

    Same windows, targets and arguments as Keras 3: with
    ``start_index = s`` and ``end_index = e`` (defaults ``0`` and ``len(data)``)
    there are ``n = e - s - (sequence_length - 1) * sampling_rate`` candidate
    windows, at most ``len(targets)`` when targets are given. Window ``i``
    starts at offset ``p_i = i * sequence_stride < n`` and is made of rows
    ``data[s + p_i + k * sampling_rate]`` for ``k < sequence_length``; its
    target is ``targets[s + p_i]``.

    Args:
        data: array-like or tensor of consecutive time steps on axis 0; kept
            as it is (no copy, same dtype, as Keras).
        targets: array-like aligned with ``data`` (``targets[i]`` is the target
            of the window starting at ``data[i]``), or ``None`` to yield inputs
            only; kept with its dtype too.
        sequence_length: number of time steps in each window.
        sequence_stride: period between the starts of consecutive windows.
        sampling_rate: period between the time steps inside a window.
        batch_size: windows per batch (the last may be smaller); ``None``
            yields single samples.
        shuffle: draw windows in random order instead of chronological order.
        seed: seed of the shuffling; drawn from NumPy's global generator when
            ``None``, as Keras does.
        start_index: rows before it are not used in any window.
        end_index: rows from it onwards are not used in any window.

    Returns:
        A :class:`TimeseriesDataset` (an :class:`rnnkit.data.Dataset`) yielding
        NumPy arrays, or torch tensors after ``.with_backend("torch")``.

    Example (Keras's: predict the next step from the 10 before it)::

        data = np.arange(100, dtype="float32")
        ds = timeseries_dataset_from_array(data[:-10], data[10:], sequence_length=10)
        x, y = next(iter(ds))        # x[0] == data[:10], y[0] == data[10]

    Differences from Keras: ``end_index == len(data)`` is accepted (Keras
    rejects it although it means the same as ``None``); a range too short for
    a single window raises instead of giving an empty dataset; and shuffling
    reorders the start positions only, without tf.data's additional
    shuffle buffer.
    """
    sequence_length = _as_int(sequence_length, "sequence_length")
    sequence_stride = _as_int(sequence_stride, "sequence_stride")
    sampling_rate = _as_int(sampling_rate, "sampling_rate")
    if batch_size is not None:
        batch_size = _as_int(batch_size, "batch_size")

    data = _as_array(data, "data")
    if data.ndim == 0:
        raise ValueError("`data` must have a time axis (axis 0); received a scalar.")
    num_rows = data.shape[0]
    if num_rows == 0:
        raise ValueError("`data` is empty: it has no time steps.")
    if targets is not None:
        targets = _as_array(targets, "targets")
        if targets.ndim == 0:
            raise ValueError("`targets` must have a time axis (axis 0); received a scalar.")

    if sequence_length < 1:
        raise ValueError(f"`sequence_length` must be at least 1. Received: sequence_length={sequence_length}")
    if sampling_rate < 1:
        raise ValueError(f"`sampling_rate` must be higher than 0. Received: sampling_rate={sampling_rate}")
    if sequence_stride < 1:
        raise ValueError(f"`sequence_stride` must be higher than 0. Received: sequence_stride={sequence_stride}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1 or None. Received: batch_size={batch_size}")
    if sampling_rate >= num_rows:
        raise ValueError(f"`sampling_rate` must be lower than the length of the data. "
                         f"Received: sampling_rate={sampling_rate}, for data of length {num_rows}")
    if sequence_stride >= num_rows:
        raise ValueError(f"`sequence_stride` must be lower than the length of the data. "
                         f"Received: sequence_stride={sequence_stride}, for data of length {num_rows}")

    start = 0 if start_index is None else _as_int(start_index, "start_index")
    end = num_rows if end_index is None else _as_int(end_index, "end_index")
    if start < 0:
        raise ValueError(f"`start_index` must be 0 or greater. Received: start_index={start}")
    if start >= num_rows:
        raise ValueError(f"`start_index` must be lower than the length of the data. "
                         f"Received: start_index={start}, for data of length {num_rows}")
    if end_index is not None:
        if end <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: end_index={end}")
        if end > num_rows:
            raise ValueError(f"`end_index` must not exceed the length of the data. "
                             f"Received: end_index={end}, for data of length {num_rows}")
    if start >= end:
        raise ValueError(f"`start_index` must be lower than `end_index`. "
                         f"Received: start_index={start}, end_index={end}")

    span = (sequence_length - 1) * sampling_rate + 1
    num_seqs = end - start - span + 1
    if num_seqs < 1:
        raise ValueError(
            f"The data is too short for one window: sequence_length={sequence_length} with "
            f"sampling_rate={sampling_rate} needs {span} rows, but rows [{start}, {end}) "
            f"hold only {end - start} (data has {num_rows} rows)."
        )
    if targets is not None:
        if len(targets) == 0:
            raise ValueError("`targets` is empty; pass None to yield inputs only.")
        num_seqs = min(num_seqs, len(targets))

    start_positions = np.arange(0, num_seqs, sequence_stride, dtype=np.int64)
    if targets is not None and start + start_positions[-1] >= len(targets):
        raise ValueError(
            f"`targets` has {len(targets)} entries, but the window starting at row "
            f"{start + start_positions[-1]} needs the target at that row. "
            f"targets[i] must be the target of the window starting at data[i]."
        )
    if shuffle:
        if seed is None:
            seed = int(np.random.randint(1e6))
    start_positions += start

    return TimeseriesDataset(
        data=data,
        targets=targets,
        start_positions=start_positions,
        sequence_length=sequence_length,
        sampling_rate=sampling_rate,
        batch_size=batch_size,
        shuffle=bool(shuffle),
        seed=seed,
    )
