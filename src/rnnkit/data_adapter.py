"""Turn what ``fit`` / ``evaluate`` / ``predict`` accept into batches of tensors.

Accepted: NumPy arrays, torch tensors and pandas objects (x and y given separately, batched
here), lists, tuples or dicts of them for models with several inputs or outputs (a dict
keyed by input/output names), and any re-iterable of ``(x, y)`` batches -- a
``torch.utils.data.DataLoader``, a ``rnnkit.utils.timeseries_dataset_from_array`` dataset,
a list -- or a one-shot Python generator (then ``steps_per_epoch`` bounds each epoch).
"""
import math
from collections.abc import Iterator

import numpy as np
import torch

from .layers.symbolic import flatten, map_structure


def _is_leaf_array(x):
    return isinstance(x, (np.ndarray, torch.Tensor)) or hasattr(x, "to_numpy")


def is_array(x):
    """In-memory data: an array, or a list/tuple/dict of arrays (several model inputs)."""
    if isinstance(x, dict):
        return bool(x) and all(_is_leaf_array(v) or is_array(v) for v in x.values())
    if isinstance(x, (np.generic, int, float)):
        return True  # a scalar: to_tensor refuses it with a clear message
    return _is_leaf_array(x) or isinstance(x, (list, tuple)) and not _is_batch_list(x)


def _is_batch_list(x):
    return isinstance(x, list) and len(x) > 0 and isinstance(x[0], tuple)


def _is_structure(x):
    """A list/tuple/dict whose items are arrays (one per model input), not one nested-list array."""
    if isinstance(x, dict):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(_is_leaf_array(v) or isinstance(v, dict)
                                                                for v in x)


def to_tensors(x, name="x"):
    """``to_tensor`` on every array of a list/tuple/dict structure (or on one array)."""
    if _is_structure(x):
        if isinstance(x, dict):
            return {k: to_tensors(v, f"{name}[{k!r}]") for k, v in x.items()}
        return type(x)(to_tensors(v, f"{name}[{i}]") for i, v in enumerate(x))
    return to_tensor(x, name)


def first_leaf(x):
    return flatten(x)[0]


def to_device(x, device, non_blocking=False):
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=non_blocking)
    return map_structure(lambda t: t.to(device, non_blocking=non_blocking) if isinstance(t, torch.Tensor) else t, x)


def _is_text(array):
    flat = array.reshape(-1)
    return array.dtype.kind in "US" or array.dtype == object and flat.size > 0 and all(
        isinstance(v, (str, bytes)) for v in flat[:100])


def check_count(value, name):
    """``value`` (a batch size or a number of steps) must be None or a positive integer."""
    if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
                              or value < 1):
        raise ValueError(f"{name} must be a positive integer (or None), got {value!r:.60}.")
    return value


def _check_shape(shape, name):
    """Arrays fed to a model have a batch axis and no empty feature axis."""
    if len(shape) == 0:
        raise ValueError(f"{name} is a scalar; pass an array with one row per sample (np.array([value]) for a "
                         "single sample).")
    if 0 in tuple(shape)[1:]:
        raise ValueError(f"{name} has shape {tuple(shape)}: a dimension of size 0 leaves each sample empty.")


def to_tensor(x, name="x"):
    """A tensor from an array-like, with a clear error for scalars, empty dimensions, NaN/inf and
    non-numeric data. float64, float16 and bfloat16 become float32 (the models' input dtype).
    Text stays a NumPy array of ``str`` (for models whose first layer is ``TextVectorization``)."""
    if isinstance(x, torch.Tensor):
        t = x
        _check_shape(t.shape, name)
    else:
        array = np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)
        _check_shape(array.shape, name)
        if array.dtype == object or array.dtype.kind in "USO":
            if _is_text(array):
                return array.astype(str)
            raise ValueError(f"{name} must be numeric or text, got an array of dtype {array.dtype}. "
                             "Convert it to numbers (or strings) first.")
        if array.dtype == bool:
            array = array.astype(np.float32)
        if any(stride < 0 for stride in array.strides) or not array.flags.writeable:
            array = array.copy()  # torch takes neither reversed views (x[:, ::-1]) nor read-only memory
        t = torch.as_tensor(array)
    if t.is_floating_point():
        if t.dtype in (torch.float64, torch.float16, torch.bfloat16):
            t = t.float()
        # One reduction instead of a full boolean copy: any NaN or inf makes the sum non-finite
        # (a finite sum proves the data finite); only then look element by element.
        bad = None if bool(torch.isfinite(t.sum())) else ~torch.isfinite(t)
        if bad is not None and bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(f"{name} contains {int(bad.sum())} NaN or infinite value(s) (first at index "
                             f"{where}). Clean or impute the data before training.")
    elif t.dtype in (torch.int32, torch.int16, torch.int8, torch.uint8):
        t = t.long()
    return t


class ArrayBatches:
    """Re-iterable ``(x, y, sample_weight)`` batches over in-memory arrays; reshuffled on every pass when asked."""

    def __init__(self, x, y=None, batch_size=32, shuffle=False, sample_weight=None):
        self.x = to_tensors(x, "x")
        self.y = None if y is None else to_tensors(y, "y")
        self.w = None if sample_weight is None else to_tensor(sample_weight, "sample_weight").float()
        sizes = {f"x{_path(i, x)}": len(t) for i, t in enumerate(flatten(self.x))}
        if self.y is not None:
            sizes.update({f"y{_path(i, y)}": len(t) for i, t in enumerate(flatten(self.y))})
        if self.w is not None:
            sizes["sample_weight"] = len(self.w)
        if len(set(sizes.values())) > 1:
            raise ValueError("The arrays have different numbers of samples: "
                             + ", ".join(f"{k}: {v}" for k, v in sizes.items()) + ". Give every array one "
                             "row per sample.")
        self.n = next(iter(sizes.values()))
        if self.n == 0:
            raise ValueError("x is empty: there is nothing to train on or predict.")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle

    def __len__(self):
        return math.ceil(self.n / self.batch_size)

    def first(self, count):
        """The first ``count`` samples of x, drawing no random numbers (to build a model before training)."""
        return _take(self.x, slice(0, count))

    def __iter__(self):
        n = self.n
        order = torch.randperm(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                idx = slice(start, start + self.batch_size)
            else:
                idx = order[start:start + self.batch_size]
            yield (_take(self.x, idx), None if self.y is None else _take(self.y, idx),
                   None if self.w is None else self.w[idx])


def _take(data, idx):
    if isinstance(data, torch.Tensor):
        return data[idx]
    if isinstance(data, np.ndarray):
        return data[idx.numpy() if isinstance(idx, torch.Tensor) else idx]
    return map_structure(lambda t: _take(t, idx), data)


def _path(i, structure):
    if isinstance(structure, dict):
        return f"[{sorted(structure)[i]!r}]" if i < len(structure) else f"[{i}]"
    return f"[{i}]" if _is_structure(structure) else ""


class IterableBatches:
    """Batches from a dataset or generator that already yields ``(x, y)``, ``(x, y, sample_weight)`` or ``x``."""

    def __init__(self, data, steps=None):
        self.data = data
        self.steps = steps
        self._iterator = data if isinstance(data, Iterator) else None

    def __len__(self):
        if self.steps is not None:
            return self.steps
        try:
            return len(self.data)
        except TypeError:
            return None

    def __iter__(self):
        source = self._iterator if self._iterator is not None else iter(self.data)
        for i, batch in enumerate(source):
            if isinstance(batch, dict):
                batch = (batch.get("x"), batch.get("y"))
            if not isinstance(batch, (tuple, list)):
                batch = (batch, None)
            x = to_tensors(batch[0], "x")
            y = to_tensors(batch[1], "y") if len(batch) > 1 and batch[1] is not None else None
            w = to_tensor(batch[2], "sample_weight").float() if len(batch) > 2 and batch[2] is not None else None
            yield x, y, w
            if self.steps is not None and i + 1 >= self.steps:
                break


def batches(x, y=None, batch_size=None, shuffle=False, steps=None, default_batch_size=32, sample_weight=None):
    """Pick the adapter for ``x``; both yield ``(x, y, sample_weight)`` (None where absent)."""
    if x is None:
        raise ValueError("No data given: pass x (and y), or a dataset of (x, y) batches.")
    check_count(batch_size, "batch_size")
    check_count(steps, "steps")
    if is_array(x):
        return ArrayBatches(x, y, batch_size or default_batch_size, shuffle, sample_weight)
    if y is not None or sample_weight is not None:
        raise ValueError("When x is a dataset or generator it must yield (x, y) or (x, y, sample_weight) batches "
                         "itself; do not pass y or sample_weight.")
    return IterableBatches(x, steps)


def split_validation(x, y, validation_split, sample_weight=None):
    """Keras's validation_split: the last fraction of the arrays (and sample weights), taken before
    shuffling: ``(x, y, w), (x_val, y_val, w_val)``."""
    if not is_array(x):
        raise ValueError("validation_split works only with array inputs; pass validation_data for datasets.")
    if not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split}.")
    n = len(first_leaf(x) if _is_structure(x) else x)
    cut = int(n * (1 - validation_split))
    if cut == 0 or cut == n:
        raise ValueError(f"validation_split={validation_split} leaves an empty training or validation set "
                         f"for {n} samples.")

    def part(data, idx):
        if data is None:
            return None
        if _is_structure(data):
            return map_structure(lambda t: t[idx] if _is_leaf_array(t) else t, data)
        return data[idx]

    head, tail = slice(None, cut), slice(cut, None)
    return ((part(x, head), part(y, head), part(sample_weight, head)),
            (part(x, tail), part(y, tail), part(sample_weight, tail)))
