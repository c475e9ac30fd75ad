"""The Layer base class: a ``torch.nn.Module`` with Keras's building, naming and weights."""
import functools
import inspect

import numpy as np
import torch
from torch import nn

from .. import constraints, initializers, regularizers, registry
from .._naming import snake_case, suggest, unique_name
from .symbolic import KerasTensor, Node, flatten, is_shape, is_symbolic, map_structure, torch_dtype

_BASE_ARGS = ("name", "input_shape", "batch_input_shape", "batch_size", "input_dim", "dtype", "trainable",
              "activity_regularizer")


def check_flags(owner, **flags):
    """Each flag must be a bool: ``return_sequences="no"`` would otherwise read as True."""
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{owner}: {name} must be True or False, got {value!r:.60}.")
    return tuple(bool(v) for v in flags.values())


def check_int(owner, name, value, low=1, high=2 ** 31 - 1):
    """``value`` as an int in [low, high]; a bool, float or string is an error, not a silent cast."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{owner}: {name} must be an integer, got {value!r:.60} ({type(value).__name__}).")
    if not low <= value <= high:
        raise ValueError(f"{owner}: {name} must be an integer in [{low}, {high}], got {value}.")
    return int(value)


class Layer(nn.Module):
    """Base of every rnnkit layer.

    Weights are created lazily by ``build(input_shape)`` -- from ``input_shape`` /
    ``batch_input_shape`` when given, else from the first tensor the layer is called on --
    and kept in Keras's order so ``get_weights`` / ``set_weights`` match Keras exactly.

    A custom layer is written as in Keras: ``build(input_shape)`` creates weights with
    ``add_weight``, ``call(inputs, ...)`` computes (``forward`` works too, as in PyTorch).
    Called on symbolic tensors (from ``rnnkit.Input``) a layer records a node of the
    functional graph and returns symbolic outputs; its output shape comes from
    ``compute_output_shape``, which by default traces ``call`` on small dummy inputs.
    Masks ride along on tensors (``tensor._keras_mask``) as in Keras: a layer whose ``call``
    takes ``mask`` receives its input's mask, and ``compute_mask`` gives the output's.

        class Scale(rnnkit.layers.Layer):
            def build(self, input_shape):
                self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")
            def call(self, inputs):
                return inputs * self.w
    """

    _is_input_layer = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("rnnkit."):
            registry.register_built_in(cls)

    def __init__(self, *, name=None, input_shape=None, batch_input_shape=None, batch_size=None,
                 input_dim=None, dtype=None, trainable=True, activity_regularizer=None, **unknown):
        super().__init__()
        if unknown:
            self._reject(unknown)
        self.name = name or unique_name(snake_case(type(self).__name__))
        if batch_input_shape is not None:
            batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            batch_input_shape = (batch_size,) + tuple(input_shape)
        elif input_dim is not None:
            batch_input_shape = (batch_size, input_dim)
        self.batch_input_shape = batch_input_shape
        self.dtype_policy = dtype or "float32"
        self.trainable, = check_flags(type(self).__name__, trainable=trainable)
        self.built = False
        self._weight_names = []
        self._frozen_names = set()  # weights created with trainable=False (Keras lists them after the others)
        self._input_dim = None
        self._inbound_nodes = []
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self._regularizers = []  # (weight name, regularizer): penalties added to the loss
        self._constraints = []  # (weight name, constraint): applied after every optimizer step
        self._added_losses = []

    def _reject(self, unknown):
        accepted = set(_BASE_ARGS)
        accepted.update(p for p in inspect.signature(type(self).__init__).parameters
                        if p not in ("self", "kwargs", "unknown"))
        key = sorted(unknown)[0]
        raise TypeError(
            f"{type(self).__name__}() got an unknown argument '{key}'.{suggest(key, accepted)} "
            f"Accepted arguments: {', '.join(sorted(accepted))}."
        )

    # ----- weights -------------------------------------------------------------------------
    def add_weight(self, name=None, shape=None, initializer=None, trainable=True, device=None, dtype=None,
                   regularizer=None, constraint=None, **unused):
        """Create a weight filled by a Keras initialiser, register it and return it (a ``Parameter``).

        Arguments (all optional, as in Keras 3; Keras 2's name-first order works too):
            name: attribute-safe name (default ``variable``, ``variable_1``, ...).
            shape: tuple of ints (default scalar ``()``).
            initializer: name (``"glorot_uniform"``...), class instance or callable filling a tensor;
                default ``"glorot_uniform"`` for float weights, ``"zeros"`` otherwise, as Keras.
            trainable: whether optimizers update it.
            dtype: ``"float32"`` (default) or another float dtype.

            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform")
        """
        if name is not None and not isinstance(name, str):  # Keras 3 order: add_weight(shape, initializer)
            name, shape, initializer = None, name, shape if initializer is None else initializer
        shape = () if shape is None else (int(shape),) if isinstance(shape, int) else tuple(int(d) for d in shape)
        dtype = torch_dtype(dtype)
        if initializer is None:
            initializer = "glorot_uniform" if dtype.is_floating_point else "zeros"
        name = self._free_weight_name(name or "variable")
        _, init = initializers.get(initializer)
        value = torch.empty(shape, dtype=dtype, device=device if device is not None else self._device())
        with torch.no_grad():
            init(value)
        param = nn.Parameter(value, requires_grad=trainable and self.trainable and dtype.is_floating_point)
        self.register_parameter(name, param)
        self._weight_names.append(name)
        if not trainable:
            self._frozen_names.add(name)
        if regularizer is not None:
            self._regularizers.append((name, regularizers.get(regularizer)))
        if constraint is not None:
            self._constraints.append((name, constraints.get(constraint)))
        return param

    def add_loss(self, loss):
        """Add a loss term (a scalar tensor) to this call's total loss, as Keras's ``add_loss``."""
        self._added_losses.append(loss)
        _ADDED_LOSSES[0] += 1

    @property
    def losses(self):
        """Loss terms of this layer and its sub-layers: weight penalties (``kernel_regularizer``...),
        activity penalties of the last call, and what ``add_loss`` added."""
        found = list(self._added_losses)
        found += [regularizer(getattr(self, name)) for name, regularizer in self._regularizers]
        for child in self._sublayers():
            found += child.losses
        return found

    def _free_weight_name(self, name):
        name = name.replace(".", "_").replace("/", "_")
        if name not in self._weight_names and not hasattr(self, name):
            return name
        n = 1
        while f"{name}_{n}" in self._weight_names or hasattr(self, f"{name}_{n}"):
            n += 1
        return f"{name}_{n}"

    @property
    def weights(self):
        """Own weights in Keras's order (those created trainable, then the others, each in creation
        order), then the sub-layers' weights in their own order."""
        own = [getattr(self, n) for n in self._weight_names if n not in self._frozen_names]
        own += [getattr(self, n) for n in self._weight_names if n in self._frozen_names]
        for child in self._sublayers():
            own.extend(child.weights)
        return own

    @property
    def trainable_weights(self):
        return [w for w in self.weights if w.requires_grad]

    @property
    def non_trainable_weights(self):
        return [w for w in self.weights if not w.requires_grad]

    def _sublayers(self):
        """Direct sub-layers, looking through containers such as ``nn.ModuleList``."""
        return _top_layers(self)

    def get_weights(self):
        """The weights as NumPy arrays, in Keras's order and layout."""
        return [w.detach().cpu().numpy().copy() for w in self.weights]

    def set_weights(self, weights):
        """Load NumPy arrays given in Keras's order and layout (e.g. from ``keras_layer.get_weights()``)."""
        if not self.built:
            raise ValueError(f"Layer '{self.name}' is not built yet, so it has no weights to set: "
                             "call it on an input or give it input_shape= first.")
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(f"Layer '{self.name}' expects {len(mine)} weight arrays "
                             f"{[tuple(w.shape) for w in mine]}, but got {len(weights)}.")
        for i, (param, value) in enumerate(zip(mine, weights)):
            value = np.asarray(value)
            if tuple(value.shape) != tuple(param.shape):
                raise ValueError(f"Layer '{self.name}' weight {i} has shape {tuple(param.shape)}, "
                                 f"but the given array has shape {tuple(value.shape)}.")
        with torch.no_grad():
            for param, value in zip(mine, weights):
                param.copy_(torch.as_tensor(np.asarray(value), dtype=param.dtype))

    def count_params(self):
        if not self.built:
            raise ValueError(f"Layer '{self.name}' is not built yet: give it input_shape= or call it on data.")
        return sum(w.numel() for w in self.weights)

    # ----- building and calling -----------------------------------------------------------------
    def build(self, input_shape):
        """Create weights for ``input_shape`` (a tuple with None for unknown sizes)."""
        self.built = True

    def _ensure_built(self, input_shape, device=None):
        if not self.built:
            self._build_device = device
            self._build_shapes = _shape_arg(input_shape)
            self.build(self._build_shapes)
            self.built = True

    def get_build_config(self):
        """The input shape(s) the layer was built for, saved so that loading can build it again."""
        shapes = getattr(self, "_build_shapes", None)
        if shapes is None:
            return None
        return {"input_shape": _lists(shapes),
                "dtype": getattr(self, "_build_dtypes", None)}

    def build_from_config(self, config):
        if config and not self.built:
            self._ensure_built(_tuples(config["input_shape"]))

    def _device(self):
        return getattr(self, "_build_device", None)

    def compute_output_shape(self, input_shape):
        """Output shape(s) for ``input_shape`` (None for unknown sizes).

        The default traces ``call`` on small dummy inputs (twice, with different sizes for the
        unknown dimensions, which stay unknown in the result), as Keras traces a layer that
        does not define this method.
        """
        return _traced_output_shape(self, input_shape)

    def compute_mask(self, inputs, mask=None):
        """The mask to hand to the next layer; most layers pass it through unchanged."""
        return mask

    @classmethod
    @functools.cache
    def _accepts(cls, argument):
        """Whether ``call``/``forward`` takes ``argument`` (``mask``, ``training``) by name."""
        method = cls.call if cls.call is not Layer.call else cls.forward
        params = inspect.signature(method).parameters
        return argument in params

    def _check_features(self, x, expected):
        if x.shape[-1] != expected:
            raise ValueError(
                f"Layer '{self.name}' was built for inputs with last dimension {expected}, "
                f"but got an input of shape {tuple(x.shape)}."
            )

    def _check_rank(self, x, ranks, what):
        if x.dim() not in ranks:
            raise ValueError(
                f"Layer '{self.name}' expects {what}, but got an input of shape {tuple(x.shape)} "
                f"(rank {x.dim()})."
            )

    def forward(self, *args, **kwargs):
        if type(self).call is Layer.call:
            raise NotImplementedError(f"{type(self).__name__} must define call(inputs) (or forward(inputs)).")
        return self.call(*args, **kwargs)

    def call(self, inputs, *args, **kwargs):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        if not args:
            if "inputs" not in kwargs:
                raise TypeError(f"Layer '{self.name}' was called without inputs.")
            args = (kwargs.pop("inputs"),)
        inputs = args[0]
        if type(inputs) is not torch.Tensor or len(args) > 1 or kwargs and _symbolic_kwargs(kwargs):
            if is_symbolic(args) or is_symbolic(kwargs):
                return _call_symbolic(self, args, kwargs)
            inputs = _to_tensors(inputs)
        if not self.built:
            self._build_dtypes = map_structure(lambda t: _dtype_label(t.dtype), inputs)
            self._ensure_built(map_structure(lambda t: tuple(t.shape), inputs), device=_first_device(inputs))
        mask = kwargs.get("mask")
        if mask is None:
            mask = _mask_of(inputs)  # every layer sees its input's mask; call() gets it if it takes mask
            if mask is not None and self._accepts("mask"):
                kwargs["mask"] = mask
        outputs = super().__call__(inputs, *args[1:], **kwargs)
        if self.activity_regularizer is not None:
            first = flatten(outputs)[0]
            self.add_loss(self.activity_regularizer(first) / first.shape[0])
        if mask is not None or type(self).compute_mask is not Layer.compute_mask:
            outputs = _attach_mask(outputs, self.compute_mask(inputs, mask), flatten(inputs))
        return outputs

    # ----- the functional graph ----------------------------------------------------------------
    def _first_node(self, what):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer '{self.name}' has never been called on symbolic inputs, so it has no "
                                 f"{what}. Call it on rnnkit.Input(...) tensors first.")
        return self._inbound_nodes[0]

    @property
    def input(self):
        """The symbolic input of this layer's first call (Keras's ``layer.input``)."""
        node = self._first_node("input")
        return node.outputs if node.is_input else node.args[0]

    @property
    def output(self):
        """The symbolic output of this layer's first call (Keras's ``layer.output``)."""
        return self._first_node("output").outputs

    # ----- config ------------------------------------------------------------------------------
    def get_config(self):
        """Constructor arguments (JSON-able) from which ``from_config`` rebuilds the layer."""
        config = {"name": self.name, "trainable": self.trainable}
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = list(self.batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def extra_repr(self):
        return f"name={self.name!r}"


def _top_layers(module):
    found = []
    for child in module.children():
        found.extend([child] if isinstance(child, Layer) else _top_layers(child))
    return found


_ADDED_LOSSES = [0]  # add_loss calls so far, in any layer: training looks for added terms only after one


def added_losses_since(mark):
    """How many add_loss calls happened since ``mark`` (the count itself for ``mark=None``)."""
    return _ADDED_LOSSES[0] if mark is None else _ADDED_LOSSES[0] - mark


def _symbolic_kwargs(kwargs):
    """Whether a keyword argument (initial_state=, mask=...) holds a symbolic tensor; flags answer at once."""
    return any(not isinstance(v, (bool, type(None), int, float, str, torch.Tensor)) and is_symbolic(v)
               for v in kwargs.values())


def _shape_arg(shape):
    """A shape tuple, or a list of shape tuples for a layer with several inputs."""
    if isinstance(shape, dict):
        return {k: _shape_arg(v) for k, v in shape.items()}
    if is_shape(shape):
        return tuple(shape)
    return [_shape_arg(s) for s in shape]


def _to_tensors(inputs):
    if isinstance(inputs, torch.Tensor):
        return inputs
    if isinstance(inputs, (list, tuple, dict)) and any(isinstance(t, torch.Tensor) for t in flatten(inputs)):
        return map_structure(lambda t: t if isinstance(t, torch.Tensor) or t is None else _to_tensor(t), inputs)
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, np.ndarray) for t in inputs):
        return type(inputs)(_to_tensor(t) for t in inputs)
    return _to_tensor(inputs)


def _lists(shape):
    if is_shape(shape):
        return list(shape)
    if isinstance(shape, dict):
        return {k: _lists(v) for k, v in shape.items()}
    return [_lists(s) for s in shape]


def _tuples(shape):
    """Saved shapes (JSON lists) back to tuples: a list of ints/None is one shape."""
    if isinstance(shape, dict):
        return {k: _tuples(v) for k, v in shape.items()}
    if is_shape(shape):
        return tuple(shape)
    return [_tuples(s) for s in shape]


def _first_device(inputs):
    for t in flatten(inputs):
        if isinstance(t, torch.Tensor):
            return t.device
    return None


def _mask_of(inputs):
    if isinstance(inputs, torch.Tensor):
        return getattr(inputs, "_keras_mask", None)
    if isinstance(inputs, (list, tuple)):
        masks = [getattr(t, "_keras_mask", None) for t in inputs]
        return masks if any(m is not None for m in masks) else None
    return None


def _attach_mask(outputs, mask, inputs):
    """Mark ``outputs`` with ``mask`` as Keras does (``tensor._keras_mask``); a list of outputs
    (``return_state``) takes a list of masks, or the one mask on its first entry. Outputs that
    a layer marked itself (a model's) keep their marks; an input passed through unchanged is
    marked on a view, so the caller's tensor keeps its own mark."""
    if isinstance(outputs, (list, tuple)):
        masks = list(mask) if isinstance(mask, (list, tuple)) else [mask] + [None] * (len(outputs) - 1)
        return type(outputs)(_attach_mask(o, m, inputs) for o, m in zip(outputs, masks))
    if not isinstance(outputs, torch.Tensor) or getattr(outputs, "_keras_mask", None) is mask:
        return outputs
    if hasattr(outputs, "_keras_mask"):
        if not any(outputs is t for t in inputs):
            return outputs
        outputs = outputs.view_as(outputs)
    elif mask is None:
        return outputs
    outputs._keras_mask = mask
    return outputs


def _call_symbolic(layer, args, kwargs):
    """Build ``layer`` for the symbolic inputs, record the call as a graph node, return symbolic outputs."""
    inputs = args[0]
    shapes = map_structure(lambda t: t.shape if isinstance(t, KerasTensor) else None, inputs)
    if not layer.built:
        layer._ensure_built(shapes)
    layer._trace_dtypes = map_structure(lambda t: t.dtype if isinstance(t, KerasTensor) else None, inputs)
    try:
        out_shapes = layer.compute_output_shape(_shape_arg(shapes))
    finally:
        layer._trace_dtypes = None
    dtypes = getattr(layer, "_traced_dtypes", None) or "float32"
    layer._traced_dtypes = None
    index = len(layer._inbound_nodes)
    flat_dtypes = iter([dtypes] * len(_flat_shapes(out_shapes)) if isinstance(dtypes, str) else flatten(dtypes))
    counter = iter(range(1 << 30))

    def symbolic(shape):  # nested lists of shapes (a stacked cell's states) keep their nesting, as in Keras
        if is_shape(shape):
            i = next(counter)
            return KerasTensor(shape, next(flat_dtypes, "float32"), name=f"{layer.name}_{i}" if i else layer.name,
                               history=(layer, index, i))
        if isinstance(shape, dict):
            return {k: symbolic(shape[k]) for k in sorted(shape)}
        return [symbolic(s) for s in shape]

    outputs = symbolic(out_shapes)
    layer._inbound_nodes.append(Node(layer, args, kwargs, outputs))
    return outputs


def _flat_shapes(shapes):
    """A (nested) list of shapes as a flat list (a cell's nested states come out one by one)."""
    if is_shape(shapes):
        return [tuple(shapes)]
    if isinstance(shapes, dict):
        shapes = [shapes[k] for k in sorted(shapes)]
    return [s for item in shapes for s in _flat_shapes(item)]


def _traced_output_shape(layer, input_shape):
    """Run ``layer`` on zeros of ``input_shape`` twice (unknown sizes 2, then 3) in eval mode without
    gradients; output dimensions that changed with them are unknown (None)."""
    dtypes = getattr(layer, "_trace_dtypes", None)
    modes = [(m, m.training) for m in layer.modules()]
    states = [(m, m.states) for m in layer.modules() if hasattr(m, "states")]
    results = []
    try:
        layer.eval()
        for fill in (2, 3):
            dummy = _dummy_inputs(input_shape, dtypes, fill)
            kwargs = {"training": False} if layer._accepts("training") else {}
            if layer._accepts("mask"):
                kwargs["mask"] = None
            with torch.no_grad():
                out = nn.Module.__call__(layer, dummy, **kwargs)
            results.append(out)
    except Exception as exc:
        raise ValueError(f"Could not infer the output shape of layer '{layer.name}' "
                         f"({type(layer).__name__}) for input shape {input_shape}: {type(exc).__name__}: {exc}. "
                         "Define compute_output_shape(input_shape) on the layer.") from exc
    finally:
        for module, mode in modes:
            module.training = mode
        for module, value in states:
            module.states = value
    first, second = results
    layer._traced_dtypes = map_structure(lambda t: _dtype_label(t.dtype), first)
    return map_structure_pair(lambda a, b: tuple(x if x == y else None for x, y in zip(a.shape, b.shape)),
                              first, second)


def map_structure_pair(fn, a, b):
    if isinstance(a, (list, tuple)):
        return [map_structure_pair(fn, x, y) for x, y in zip(a, b)]
    if isinstance(a, dict):
        return {k: map_structure_pair(fn, a[k], b[k]) for k in a}
    return fn(a, b)


def _dtype_label(dtype):
    return {torch.long: "int64", torch.int32: "int32", torch.bool: "bool"}.get(dtype, str(dtype)[6:])


def _dummy_inputs(shape, dtypes, fill):
    if is_shape(shape):
        dtype = torch_dtype(dtypes if isinstance(dtypes, str) else None)
        return torch.zeros([fill if d is None else d for d in shape], dtype=dtype)
    if isinstance(shape, dict):
        return {k: _dummy_inputs(v, (dtypes or {}).get(k), fill) for k, v in shape.items()}
    dtypes = dtypes if isinstance(dtypes, (list, tuple)) else [dtypes] * len(shape)
    return [_dummy_inputs(s, d, fill) for s, d in zip(shape, dtypes)]


def _to_tensor(x):
    if isinstance(x, str):
        return x
    array = np.asarray(x)
    if array.dtype.kind in "USO":
        return array  # strings stay NumPy: a first layer such as TextVectorization takes them
    if array.dtype.kind in "iub":
        return torch.as_tensor(array, dtype=torch.long)
    return torch.as_tensor(array, dtype=torch.float32)
