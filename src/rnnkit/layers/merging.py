"""Merge layers: Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Dot, and Keras's
lowercase shortcuts (``add([a, b])`` is ``Add()([a, b])``).

They take a list of tensors and, as Keras 3 does, a list of masks (one per input, None where an
input has none). The output mask is the OR of the input masks when every input has one
(Concatenate: an input without a mask counts as all-True); Dot gives no mask.
"""
import functools

import torch

from .layer import Layer


def _is_shape(shape):
    return isinstance(shape, (tuple, list)) and all(d is None or isinstance(d, int) for d in shape)


class _Merge(Layer):
    """What the merge layers share: list checks, Keras's broadcasting of shapes, masks."""

    min_inputs = 1
    exact_inputs = None

    def _fail(self, message):
        raise ValueError(f"Layer '{self.name}' ({type(self).__name__}): {message}")

    def _check_list(self, inputs, what="inputs"):
        if not isinstance(inputs, (list, tuple)):
            self._fail(f"call it on a list of tensors, e.g. {type(self).__name__}()([a, b]); "
                       f"got a single {type(inputs).__name__}.")
        if self.exact_inputs is not None and len(inputs) != self.exact_inputs:
            self._fail(f"takes exactly {self.exact_inputs} {what}, got {len(inputs)}.")
        if len(inputs) < self.min_inputs:
            self._fail(f"takes a list of at least {self.min_inputs} {what}, got {len(inputs)}.")

    def _check_shapes(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or \
                not all(_is_shape(s) for s in input_shape):
            self._fail(f"call it on a list of tensors, e.g. {type(self).__name__}()([a, b]); "
                       f"got input shape {input_shape!r}.")
        self._check_list(input_shape)
        batch_sizes = {s[0] for s in input_shape if s} - {None}
        if len(batch_sizes) > 1:
            self._fail(f"cannot merge tensors with different batch sizes: {list(map(tuple, input_shape))}.")

    # ----- shapes: numpy-style broadcasting of the non-batch axes, as Keras's Merge -----------
    def _elementwise_shape(self, shape1, shape2):
        if len(shape1) < len(shape2):
            return self._elementwise_shape(shape2, shape1)
        if not shape2:
            return tuple(shape1)
        out = list(shape1[:len(shape1) - len(shape2)])
        for i, j in zip(shape1[len(shape1) - len(shape2):], shape2):
            if i is None or j is None:
                out.append(None)
            elif i == 1:
                out.append(j)
            elif j == 1 or i == j:
                out.append(i)
            else:
                self._fail(f"inputs have incompatible shapes {tuple(shape1)} and {tuple(shape2)} "
                           "(without the batch axis); give them equal sizes, or 1 where one should broadcast.")
        return tuple(out)

    def build(self, input_shape):
        self._check_shapes(input_shape)
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape):
        self._check_shapes(input_shape)
        out = tuple(input_shape[0][1:])
        for shape in input_shape[1:]:
            out = self._elementwise_shape(out, tuple(shape[1:]))
        batch_sizes = {s[0] for s in input_shape} - {None}
        return ((batch_sizes.pop() if len(batch_sizes) == 1 else None),) + out

    # ----- calling ------------------------------------------------------------------------------
    def _prepare(self, inputs, mask):
        """Checked inputs, lower-rank ones expanded at axis 1 as Keras does, and the masks that
        take part in the values (Keras drops the mask of an input it had to expand)."""
        self._check_list(inputs)
        inputs = list(inputs)
        masks = self._mask_list(inputs, mask)
        self._check_shapes([tuple(x.shape) for x in inputs])
        self._elementwise_check([tuple(x.shape) for x in inputs])
        top = max(x.dim() for x in inputs)
        value_masks = []
        for i, x in enumerate(inputs):
            if x.dim() < top:
                inputs[i] = x.reshape(x.shape[:1] + (1,) * (top - x.dim()) + x.shape[1:])
                value_masks.append(None)
            else:
                value_masks.append(masks[i])
        return inputs, value_masks

    def _elementwise_check(self, shapes):
        out = shapes[0][1:]
        for shape in shapes[1:]:
            out = self._elementwise_shape(out, shape[1:])

    def _mask_list(self, inputs, mask):
        if mask is None:
            return [None] * len(inputs)
        if not isinstance(mask, (list, tuple)):
            self._fail(f"mask must be a list with one entry (or None) per input, got {type(mask).__name__}.")
        if len(mask) != len(inputs):
            self._fail(f"got {len(inputs)} inputs but {len(mask)} masks; give one mask (or None) per input.")
        return [None if m is None else torch.as_tensor(m, device=x.device).bool() for m, x in zip(mask, inputs)]

    def forward(self, inputs, mask=None):
        inputs, value_masks = self._prepare(inputs, mask)
        return self._merge(inputs, value_masks)

    def _merge(self, inputs, masks):
        raise NotImplementedError

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        if not isinstance(inputs, (list, tuple)):
            self._fail("compute_mask needs the list of inputs.")
        masks = self._mask_list(inputs, mask)
        if any(m is None for m in masks):
            return None
        out = masks[0]
        for m in masks[1:]:
            out = out | m
        return out


def _expanded_mask(mask, x):
    """(batch, ...) mask -> broadcast to x's shape over x's last axis, as Keras's merge layers."""
    return mask.unsqueeze(-1).expand(x.shape)


class _OrMaskedMerge(_Merge):
    """Keras's ``_apply_merge_op_and_or_mask`` (Maximum, Minimum): a masked entry takes the other
    operand's value, so masked steps do not win the max/min."""

    op = None

    def _merge(self, inputs, masks):
        output, output_mask = None, None
        for x, m in zip(inputs, masks):
            if m is not None:
                m = _expanded_mask(m, x)
            if output is None:
                output, output_mask = x, m
                continue
            if m is not None:
                x = torch.where(m, x, output)
            if output_mask is not None:
                output = torch.where(output_mask, output, x)
            output_mask = output_mask | m if (m is not None and output_mask is not None) else None
            output = type(self).op(output, x)
        return output


class Add(_Merge):
    """Element-wise sum of a list of tensors (same shape, or broadcastable).

    ``Add()([x1, x2])``
    """

    def _merge(self, inputs, masks):
        return functools.reduce(torch.add, inputs)


class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` for a list of exactly two tensors.

    ``Subtract()([x1, x2])``
    """

    exact_inputs = 2

    def _merge(self, inputs, masks):
        return inputs[0] - inputs[1]


class Multiply(_Merge):
    """Element-wise product of a list of tensors. With masks on every input, masked entries count
    as 1 and entries masked in all inputs become 0 (Keras 3).

    ``Multiply()([x1, x2])``
    """

    def _merge(self, inputs, masks):
        every = all(m is not None for m in masks)
        output, output_mask = None, None
        for x, m in zip(inputs, masks):
            if m is not None:
                m = _expanded_mask(m, x)
                x = torch.where(m, x, torch.ones((), dtype=x.dtype, device=x.device))
                if every:
                    output_mask = m if output_mask is None else output_mask | m
            output = x if output is None else output * x
        if every:
            output = torch.where(output_mask, output, torch.zeros((), dtype=output.dtype, device=output.device))
        return output


class Average(_Merge):
    """Element-wise mean of a list of tensors.

    ``Average()([x1, x2])``
    """

    def _merge(self, inputs, masks):
        return functools.reduce(torch.add, inputs) / len(inputs)


class Maximum(_OrMaskedMerge):
    """Element-wise maximum of a list of tensors (masked entries do not win, as Keras 3).

    ``Maximum()([x1, x2])``
    """

    op = staticmethod(torch.maximum)


class Minimum(_OrMaskedMerge):
    """Element-wise minimum of a list of tensors (masked entries do not win, as Keras 3).

    ``Minimum()([x1, x2])``
    """

    op = staticmethod(torch.minimum)


class Concatenate(_Merge):
    """Join a list of tensors along ``axis``; every other axis must agree.

    Arguments:
        axis: the axis to join along (default -1, the features).

    ``Concatenate(axis=-1)([x1, x2])``
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise ValueError(f"Concatenate: axis must be an int, got {axis!r}.")
        self.axis = axis

    def _check_concat(self, input_shape):
        self._check_shapes(input_shape)
        ranks = {len(s) for s in input_shape}
        if len(ranks) != 1:
            self._fail(f"all inputs need the same rank; got shapes {list(map(tuple, input_shape))}.")
        rank = ranks.pop()
        if not -rank <= self.axis < rank:
            self._fail(f"axis={self.axis} is out of range for inputs of rank {rank}.")
        axis = self.axis % rank
        for dim in range(rank):
            sizes = {s[dim] for s in input_shape if s[dim] is not None}
            if dim != axis and len(sizes) > 1:
                self._fail(f"inputs must match on every axis except the concatenation axis ({self.axis}); "
                           f"got shapes {list(map(tuple, input_shape))}.")

    def build(self, input_shape):
        self._check_concat(input_shape)

    def compute_output_shape(self, input_shape):
        self._check_concat(input_shape)
        out = list(input_shape[0])
        for shape in input_shape[1:]:
            if out[self.axis] is None or shape[self.axis] is None:
                out[self.axis] = None
                break
            out[self.axis] += shape[self.axis]
        return tuple(out)

    def forward(self, inputs, mask=None):
        self._check_list(inputs)
        self._check_concat([tuple(x.shape) for x in inputs])
        return torch.cat(list(inputs), dim=self.axis)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        if not isinstance(inputs, (list, tuple)):
            self._fail("compute_mask needs the list of inputs.")
        masks = self._mask_list(inputs, mask)
        if all(m is None for m in masks):
            return None
        full = []
        for x, m in zip(inputs, masks):
            if m is None:
                full.append(torch.ones(x.shape, dtype=torch.bool, device=x.device))
            elif m.dim() < x.dim():
                full.append(m.unsqueeze(-1).expand(x.shape))
            else:
                full.append(m)
        return torch.cat(full, dim=self.axis).any(dim=-1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Batched dot product of two tensors over ``axes``.

    Arguments:
        axes: an int (the same axis of both inputs) or a pair ``(axis_of_a, axis_of_b)``; never 0.
        normalize: L2-normalise both inputs along those axes first, so the result is the cosine
            similarity.

    ``Dot(axes=(2, 2))([queries, keys])``  # (batch, Tq, d), (batch, Tk, d) -> (batch, Tq, Tk)
    """

    exact_inputs = 2

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2 or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
                raise ValueError(f"Dot: axes must be an int or a pair of ints, got {axes!r}.")
            axes = list(axes)
        elif not isinstance(axes, int) or isinstance(axes, bool):
            raise ValueError(f"Dot: axes must be an int or a pair of ints, got {axes!r}.")
        self.axes = axes
        self.normalize = bool(normalize)

    def _axes(self, rank1, rank2):
        raw = [self.axes, self.axes] if isinstance(self.axes, int) else list(self.axes)
        for a, rank in zip(raw, (rank1, rank2)):
            if not -rank <= a < rank:
                self._fail(f"axes={self.axes} is out of range for inputs of rank {rank1} and {rank2}.")
        axes = [raw[0] % rank1, raw[1] % rank2]
        if 0 in axes:
            self._fail(f"cannot take the dot product over the batch axis 0 (axes={self.axes}).")
        return axes

    def _check_dot(self, input_shape):
        self._check_shapes(input_shape)
        shape1, shape2 = (tuple(s) for s in input_shape)
        if len(shape1) < 2 or len(shape2) < 2:
            self._fail(f"needs inputs of rank 2 or more (batch first); got shapes {shape1} and {shape2}.")
        a1, a2 = self._axes(len(shape1), len(shape2))
        if shape1[a1] is not None and shape2[a2] is not None and shape1[a1] != shape2[a2]:
            self._fail(f"axis {a1} of the first input has size {shape1[a1]} but axis {a2} of the second "
                       f"has size {shape2[a2]} (shapes {shape1} and {shape2}); they must be equal.")
        return a1, a2

    def build(self, input_shape):
        self._check_dot(input_shape)

    def compute_output_shape(self, input_shape):
        a1, a2 = self._check_dot(input_shape)
        shape1, shape2 = list(input_shape[0]), list(input_shape[1])
        shape1.pop(a1)
        shape2.pop(a2)
        shape2.pop(0)
        out = shape1 + shape2
        if len(out) == 1:
            out.append(1)
        return tuple(out)

    def forward(self, inputs, mask=None):
        self._check_list(inputs)
        x, y = inputs
        a1, a2 = self._check_dot([tuple(x.shape), tuple(y.shape)])
        if self.normalize:
            x, y = _l2_normalize(x, a1), _l2_normalize(y, a2)
        x = x.movedim(a1, -1)
        y = y.movedim(a2, 1)
        rest_x, rest_y = x.shape[1:-1], y.shape[2:]
        out = torch.bmm(x.reshape(x.shape[0], -1, x.shape[-1]), y.reshape(y.shape[0], y.shape[1], -1))
        out = out.reshape(x.shape[:1] + rest_x + rest_y)
        return out.unsqueeze(-1) if out.dim() == 1 else out

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def _l2_normalize(x, axis, epsilon=1e-7):
    """Keras's ``ops.normalize``: ``x * min(rsqrt(sum(x**2)), 1/epsilon)``."""
    inv = torch.rsqrt(x.square().sum(dim=axis, keepdim=True))
    return x * torch.clamp(inv, max=1.0 / epsilon)


# ----- Keras's functional shortcuts ----------------------------------------------------------------
def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)


def dot(inputs, axes=-1, **kwargs):
    """``Dot(axes=axes, **kwargs)(inputs)``."""
    return Dot(axes=axes, **kwargs)(inputs)
