"""``rnnkit.ops``: the ``keras.ops`` functions RNN programs and custom layers use, on torch tensors,
with Keras 3's names, arguments and semantics (NumPy's, where Keras follows NumPy).

    from rnnkit import ops

    class Attention(rnnkit.layers.Layer):
        def call(self, inputs):                                 # (batch, time, features)
            scores = ops.softmax(ops.sum(inputs * self.w, axis=-1), axis=-1)
            return ops.sum(inputs * ops.expand_dims(scores, -1), axis=1)

Inputs may be torch tensors, NumPy arrays, lists or Python numbers; results are torch tensors
(``convert_to_numpy`` and ``shape`` excepted). Python floats become float32 and Python ints
int32, as in Keras; NumPy arrays keep their dtype. Indices from ``argmax``/``argmin`` are
int32, as in Keras.
"""
import builtins

import numpy as np
import torch

__all__ = [
    "abs", "all", "any", "arange", "argmax", "argmin", "cast", "clip", "concatenate", "convert_to_numpy",
    "convert_to_tensor", "cumsum", "dot", "einsum", "equal", "exp", "expand_dims", "greater", "greater_equal",
    "less", "less_equal", "log", "logical_and", "logical_not", "logical_or", "matmul", "max", "maximum", "mean",
    "min", "minimum", "norm", "not_equal", "one_hot", "ones", "ones_like", "relu", "reshape", "shape",
    "sigmoid", "softmax", "split", "sqrt", "square", "squeeze", "stack", "sum", "take", "tanh", "transpose",
    "where", "zeros", "zeros_like",
]

_DTYPES = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64,
    "int8": torch.int8, "int16": torch.int16, "int32": torch.int32, "int64": torch.int64, "uint8": torch.uint8,
    "bool": torch.bool, "float": torch.float32, "int": torch.int32,
}


def _dtype(dtype, default=None):
    """A torch dtype from a Keras dtype name, a NumPy dtype or a torch dtype (``None``: ``default``)."""
    if dtype is None:
        return default
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).replace("torch.", "")
    if name not in _DTYPES:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            pass
    if name not in _DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; use one of {', '.join(sorted(_DTYPES))}.")
    return _DTYPES[name]


def convert_to_tensor(x, dtype=None, sparse=None):
    """``x`` (tensor, array, list or number) as a torch tensor, cast to ``dtype`` if given.

        ops.convert_to_tensor([1.0, 2.0])          # float32 tensor
    """
    dtype = _dtype(dtype)
    if isinstance(x, torch.Tensor):
        return x if dtype is None else x.to(dtype)
    if isinstance(x, (np.ndarray, np.generic)):
        if x.dtype.kind in "USO":
            raise TypeError(f"ops work on numbers; got an array of dtype {x.dtype}.")
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype)
    if isinstance(x, (list, tuple)) and x and builtins.all(isinstance(v, torch.Tensor) for v in x):
        out = torch.stack(list(x))
        return out if dtype is None else out.to(dtype)
    array = np.asarray(x)
    if array.dtype.kind in "USO":
        raise TypeError(f"ops work on numbers; got {x!r:.80}.")
    default = {"f": torch.float32, "i": torch.int32, "u": torch.int32, "b": torch.bool}.get(array.dtype.kind)
    return torch.as_tensor(array, dtype=dtype or default)


def convert_to_numpy(x):
    """``x`` as a NumPy array (detached, on the CPU).

        ops.convert_to_numpy(torch.ones(2))        # array([1., 1.], dtype=float32)
    """
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


_t = convert_to_tensor


def _pair(x1, x2):
    """Two operands as tensors; a Python number takes the other operand's kind of dtype, as Keras."""
    if isinstance(x1, (bool, int, float)) and not isinstance(x2, (bool, int, float)):
        x2 = _t(x2)
        return torch.as_tensor(x1, dtype=torch.result_type(x2, x1), device=x2.device), x2
    if isinstance(x2, (bool, int, float)) and not isinstance(x1, (bool, int, float)):
        x1 = _t(x1)
        return x1, torch.as_tensor(x2, dtype=torch.result_type(x1, x2), device=x1.device)
    return _t(x1), _t(x2)


def _axes(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _dims(x, axis):
    """Reduction axes: all of them for ``None``."""
    return tuple(range(x.dim())) if axis is None else _axes(axis)


# ----- creation and conversion ------------------------------------------------------------------------
def cast(x, dtype):
    """``x`` with dtype ``dtype`` (``"float32"``, ``"int32"``, ``"bool"``, ...).

        ops.cast(torch.tensor([1.7, -0.2]), "int32")   # tensor([1, 0], dtype=torch.int32)
    """
    return _t(x).to(_dtype(dtype))


def shape(x):
    """The shape of ``x`` as a tuple of ints.

        ops.shape(torch.zeros(2, 3))               # (2, 3)
    """
    return tuple(_t(x).shape)


def zeros(shape, dtype=None):
    """A tensor of zeros (float32 by default).

        ops.zeros((2, 3))
    """
    return torch.zeros(_shape_arg(shape), dtype=_dtype(dtype, torch.float32))


def ones(shape, dtype=None):
    """A tensor of ones (float32 by default).

        ops.ones((2, 3), dtype="int32")
    """
    return torch.ones(_shape_arg(shape), dtype=_dtype(dtype, torch.float32))


def zeros_like(x, dtype=None):
    """Zeros with the shape (and, unless ``dtype`` is given, the dtype) of ``x``."""
    return torch.zeros_like(_t(x), dtype=_dtype(dtype))


def ones_like(x, dtype=None):
    """Ones with the shape (and, unless ``dtype`` is given, the dtype) of ``x``."""
    return torch.ones_like(_t(x), dtype=_dtype(dtype))


def _shape_arg(shape):
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)


def arange(start, stop=None, step=1, dtype=None):
    """Evenly spaced values in ``[start, stop)`` as NumPy's ``arange`` (int32 for integer
    arguments, else float32, unless ``dtype`` is given).

        ops.arange(5)                              # tensor([0, 1, 2, 3, 4], dtype=torch.int32)
    """
    if stop is None:
        start, stop = 0, start
    integral = builtins.all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
    return torch.arange(start, stop, step, dtype=_dtype(dtype, torch.int32 if integral else torch.float32))


def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """One-hot vectors of integer labels ``x`` (float32); negative labels give all-zero vectors.

    Args:
        num_classes: length of the vectors.
        axis: where the new axis goes (default last).

        ops.one_hot(torch.tensor([0, 2]), 3)       # [[1, 0, 0], [0, 0, 1]]
    """
    if sparse:
        raise ValueError("rnnkit has no sparse tensors: leave sparse=False.")
    x = _t(x).long()
    out = torch.nn.functional.one_hot(x.clamp(min=0), int(num_classes)) * (x >= 0).unsqueeze(-1)
    out = out.to(_dtype(dtype, torch.float32))
    return out if axis == -1 else torch.movedim(out, -1, axis)


# ----- reductions ---------------------------------------------------------------------------------------
def sum(x, axis=None, keepdims=False):
    """Sum over ``axis`` (an int, a tuple, or ``None`` for all).

        ops.sum(torch.ones(2, 3), axis=1)          # tensor([3., 3.])
    """
    x = _t(x)
    return torch.sum(x, dim=_dims(x, axis), keepdim=keepdims)


def mean(x, axis=None, keepdims=False):
    """Mean over ``axis`` (integers give a float32 mean, as Keras).

        ops.mean(torch.tensor([[1., 2.], [3., 4.]]), axis=0)   # tensor([2., 3.])
    """
    x = _float(x)
    return torch.mean(x, dim=_dims(x, axis), keepdim=keepdims)


def max(x, axis=None, keepdims=False, initial=None):
    """Largest entry over ``axis``; ``initial`` takes part in the comparison, as NumPy.

        ops.max(torch.tensor([[1, 5], [7, 2]]), axis=1)        # tensor([5, 7])
    """
    x = _t(x)
    out = torch.amax(x, dim=_dims(x, axis), keepdim=keepdims)
    return out if initial is None else torch.clamp(out, min=initial)


def min(x, axis=None, keepdims=False, initial=None):
    """Smallest entry over ``axis``; ``initial`` takes part in the comparison, as NumPy.

        ops.min(torch.tensor([[1, 5], [7, 2]]), axis=0)        # tensor([1, 2])
    """
    x = _t(x)
    out = torch.amin(x, dim=_dims(x, axis), keepdim=keepdims)
    return out if initial is None else torch.clamp(out, max=initial)


def all(x, axis=None, keepdims=False):
    """Whether all entries along ``axis`` are true (non-zero).

        ops.all(torch.tensor([True, False]))       # tensor(False)
    """
    x = _t(x).bool()
    return torch.all(x, dim=_dims(x, axis), keepdim=keepdims)


def any(x, axis=None, keepdims=False):
    """Whether any entry along ``axis`` is true (non-zero).

        ops.any(torch.tensor([0, 3]))              # tensor(True)
    """
    x = _t(x).bool()
    return torch.any(x, dim=_dims(x, axis), keepdim=keepdims)


def argmax(x, axis=None, keepdims=False):
    """Index of the largest entry along ``axis`` (of the flattened tensor for ``None``), int32.

        ops.argmax(torch.tensor([[1, 5], [7, 2]]), axis=1)     # tensor([1, 0], dtype=torch.int32)
    """
    x = _t(x)
    if x.dtype == torch.bool:
        x = x.to(torch.uint8)
    return torch.argmax(x, dim=axis, keepdim=keepdims).to(torch.int32)


def argmin(x, axis=None, keepdims=False):
    """Index of the smallest entry along ``axis`` (of the flattened tensor for ``None``), int32."""
    x = _t(x)
    if x.dtype == torch.bool:
        x = x.to(torch.uint8)
    return torch.argmin(x, dim=axis, keepdim=keepdims).to(torch.int32)


def cumsum(x, axis=None, dtype=None):
    """Running sum along ``axis`` (of the flattened tensor for ``None``).

        ops.cumsum(torch.tensor([1, 2, 3]))        # tensor([1, 3, 6])
    """
    x = _t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return torch.cumsum(x, dim=axis, dtype=_dtype(dtype))


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector or matrix norm as ``numpy.linalg.norm`` (default: the 2-norm of all entries).

        ops.norm(torch.tensor([3., 4.]))           # tensor(5.)
    """
    x = _t(x)
    if not x.is_floating_point():
        x = x.to(torch.float32)
    return torch.linalg.norm(x, ord=ord, dim=_axes(axis), keepdim=keepdims)


# ----- shapes ---------------------------------------------------------------------------------------------
def concatenate(xs, axis=0):
    """Join tensors along an existing axis.

        ops.concatenate([torch.zeros(2, 3), torch.ones(1, 3)], axis=0).shape   # (3, 3)
    """
    return torch.cat([_t(x) for x in xs], dim=axis)


def stack(x, axis=0):
    """Join tensors of one shape along a new axis.

        ops.stack([torch.zeros(3), torch.ones(3)], axis=1).shape               # (3, 2)
    """
    return torch.stack([_t(v) for v in x], dim=axis)


def expand_dims(x, axis):
    """``x`` with a new axis (or axes, for a tuple) of size 1 at ``axis``.

        ops.expand_dims(torch.zeros(2, 3), -1).shape                            # (2, 3, 1)
    """
    x = _t(x)
    if not isinstance(axis, (list, tuple)):
        return x.unsqueeze(axis)
    rank = x.dim() + len(axis)
    for a in sorted(a % rank for a in axis):
        x = x.unsqueeze(a)
    return x


def squeeze(x, axis=None):
    """``x`` without the axes of size 1 (only ``axis``, if given; it must have size 1).

        ops.squeeze(torch.zeros(2, 1, 3)).shape                                  # (2, 3)
    """
    x = _t(x)
    if axis is None:
        return x.squeeze()
    for a in (axis if isinstance(axis, (list, tuple)) else (axis,)):
        if x.shape[a] != 1:
            raise ValueError(f"Cannot squeeze axis {a} of shape {tuple(x.shape)}: its size is not 1.")
    return x.squeeze(_axes(axis))


def reshape(x, newshape):
    """``x`` with shape ``newshape`` (one entry may be -1).

        ops.reshape(torch.arange(6), (2, -1)).shape                             # (2, 3)
    """
    return _t(x).reshape(_shape_arg(newshape))


def transpose(x, axes=None):
    """Permute the axes (``None``: reverse them, as NumPy).

        ops.transpose(torch.zeros(2, 3, 4), (0, 2, 1)).shape                    # (2, 4, 3)
    """
    x = _t(x)
    return x.permute(*(reversed(range(x.dim())) if axes is None else axes))


def split(x, indices_or_sections, axis=0):
    """Split along ``axis`` as ``numpy.split``: an int makes that many equal parts (it must divide
    the axis), a list gives the indices where parts start.

        [a.shape for a in ops.split(torch.zeros(6, 2), 3)]                     # [(2, 2)] * 3
    """
    x = _t(x)
    size = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        if size % indices_or_sections:
            raise ValueError(f"ops.split: axis {axis} of size {size} does not divide into "
                             f"{indices_or_sections} equal parts.")
        return list(torch.split(x, size // indices_or_sections, dim=axis))
    bounds = [0] + [int(i) for i in indices_or_sections] + [size]
    return [x.narrow(axis, lo, builtins.max(hi - lo, 0)) for lo, hi in zip(bounds[:-1], bounds[1:])]


def take(x, indices, axis=None):
    """Entries of ``x`` at ``indices`` along ``axis`` (of the flattened tensor for ``None``),
    as ``numpy.take``.

        ops.take(torch.tensor([[1, 2], [3, 4]]), [1, 0], axis=0)                # [[3, 4], [1, 2]]
    """
    x = _t(x)
    indices = _t(indices).long()
    if axis is None:
        return x.reshape(-1)[indices]
    axis = axis % x.dim()
    return x[(slice(None),) * axis + (indices,)]


# ----- linear algebra --------------------------------------------------------------------------------
def matmul(x1, x2):
    """Matrix product as ``numpy.matmul`` (batched over leading axes).

        ops.matmul(torch.ones(2, 3), torch.ones(3, 4)).shape                     # (2, 4)
    """
    return torch.matmul(_t(x1), _t(x2))


def dot(x1, x2):
    """``numpy.dot``: products of scalars, inner products of vectors, matrix products, and for
    N-D tensors the sum over the last axis of ``x1`` and the second-to-last of ``x2``.

        ops.dot(torch.tensor([1., 2.]), torch.tensor([3., 4.]))                # tensor(11.)
    """
    x1, x2 = _pair(x1, x2)
    if x1.dim() == 0 or x2.dim() == 0:
        return x1 * x2
    if x2.dim() == 1:
        return torch.tensordot(x1, x2, dims=([-1], [0]))
    return torch.tensordot(x1, x2, dims=([-1], [-2]))


def einsum(subscripts, *operands):
    """Einstein summation, as ``numpy.einsum``.

        ops.einsum("btf,fu->btu", torch.ones(2, 5, 3), torch.ones(3, 4)).shape  # (2, 5, 4)
    """
    return torch.einsum(subscripts, *[_t(o) for o in operands])


# ----- element-wise ------------------------------------------------------------------------------------
def _float(x):
    x = _t(x)
    return x if x.is_floating_point() else x.to(torch.float32)


def softmax(x, axis=-1):
    """Softmax along ``axis`` (a tuple normalises over several axes).

        ops.softmax(torch.tensor([0., 0.]))                                      # tensor([0.5, 0.5])
    """
    x = _float(x)
    if isinstance(axis, (list, tuple)):
        return torch.exp(x - torch.logsumexp(x, dim=tuple(axis), keepdim=True))
    return torch.softmax(x, dim=axis)


def sigmoid(x):
    """``1 / (1 + exp(-x))``."""
    return torch.sigmoid(_float(x))


def tanh(x):
    """Hyperbolic tangent."""
    return torch.tanh(_float(x))


def relu(x):
    """``max(x, 0)``."""
    return torch.relu(_t(x))


def exp(x):
    """``e ** x``."""
    return torch.exp(_float(x))


def log(x):
    """Natural logarithm."""
    return torch.log(_float(x))


def sqrt(x):
    """Square root."""
    return torch.sqrt(_float(x))


def square(x):
    """``x * x``."""
    return torch.square(_t(x))


def abs(x):
    """Absolute value."""
    return torch.abs(_t(x))


def maximum(x1, x2):
    """Element-wise larger of ``x1`` and ``x2`` (broadcast).

        ops.maximum(torch.tensor([1, 5]), 3)                                     # tensor([3, 5])
    """
    return torch.maximum(*_pair(x1, x2))


def minimum(x1, x2):
    """Element-wise smaller of ``x1`` and ``x2`` (broadcast)."""
    return torch.minimum(*_pair(x1, x2))


def clip(x, x_min, x_max):
    """``x`` limited to ``[x_min, x_max]``.

        ops.clip(torch.tensor([-2., 0.5, 9.]), 0., 1.)                         # tensor([0., .5, 1.])
    """
    x = _t(x)
    return torch.clamp(x, min=x_min, max=x_max)


def where(condition, x1=None, x2=None):
    """``x1`` where ``condition`` holds, else ``x2``; with only ``condition``, the indices of its
    non-zero entries (a tuple of tensors, one per axis), as NumPy.

        ops.where(torch.tensor([True, False]), 1.0, 0.0)                         # tensor([1., 0.])
    """
    condition = _t(condition).bool()
    if x1 is None and x2 is None:
        return torch.nonzero(condition, as_tuple=True)
    if x1 is None or x2 is None:
        raise ValueError("ops.where takes either condition alone or condition, x1 and x2.")
    x1, x2 = _pair(x1, x2)
    return torch.where(condition.to(x1.device), x1, x2)


def equal(x1, x2):
    """Element-wise ``x1 == x2`` (broadcast), a bool tensor."""
    return torch.eq(*_pair(x1, x2))


def not_equal(x1, x2):
    """Element-wise ``x1 != x2`` (broadcast), a bool tensor."""
    return torch.ne(*_pair(x1, x2))


def greater(x1, x2):
    """Element-wise ``x1 > x2`` (broadcast), a bool tensor."""
    return torch.gt(*_pair(x1, x2))


def greater_equal(x1, x2):
    """Element-wise ``x1 >= x2`` (broadcast), a bool tensor."""
    return torch.ge(*_pair(x1, x2))


def less(x1, x2):
    """Element-wise ``x1 < x2`` (broadcast), a bool tensor."""
    return torch.lt(*_pair(x1, x2))


def less_equal(x1, x2):
    """Element-wise ``x1 <= x2`` (broadcast), a bool tensor."""
    return torch.le(*_pair(x1, x2))


def logical_and(x1, x2):
    """Element-wise ``x1 and x2`` (non-zero is true)."""
    return torch.logical_and(_t(x1), _t(x2))


def logical_or(x1, x2):
    """Element-wise ``x1 or x2`` (non-zero is true)."""
    return torch.logical_or(_t(x1), _t(x2))


def logical_not(x):
    """Element-wise ``not x`` (non-zero is true)."""
    return torch.logical_not(_t(x))
