"""Symbolic tensors and the layer graph behind the functional API.

``rnnkit.Input(shape=(None, 8))`` returns a :class:`KerasTensor`: a shape and a dtype, no
values. Calling a layer on symbolic tensors builds the layer, records a :class:`Node`
(the layer, the arguments it was called with, the symbolic outputs) and returns symbolic
outputs. :class:`Graph` collects the nodes between some inputs and outputs, in Keras's
order, and runs them on real tensors::

    inputs = rnnkit.Input(shape=(None, 8))
    x = LSTM(16)(inputs)                 # KerasTensor, shape (None, 16)
    graph = Graph([inputs], [x])
    [y] = graph.run([torch.randn(4, 10, 8)])

The graph is data; ``Model`` (functional and ``Sequential``) runs it in ``forward``.
"""
import collections

import torch

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
           "bfloat16": torch.bfloat16, "int32": torch.long, "int64": torch.long, "int16": torch.long,
           "int8": torch.long, "uint8": torch.long, "bool": torch.bool, "string": None}


def torch_dtype(dtype):
    """torch dtype for a Keras dtype name (integers become int64, as rnnkit's data pipeline makes them)."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).replace("torch.", "")
    if name not in _DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; use one of {', '.join(sorted(_DTYPES))}.")
    return _DTYPES[name]


def dtype_name(dtype):
    if dtype is None:
        return "float32"
    if isinstance(dtype, torch.dtype):
        return {torch.long: "int64", torch.int32: "int32", torch.bool: "bool"}.get(dtype, str(dtype)[6:])
    return str(dtype)


class KerasTensor:
    """A symbolic tensor: shape (None for unknown sizes), dtype and where it came from.

    ``_keras_history`` is ``(layer, node_index, tensor_index)``: output ``tensor_index`` of the
    layer's ``node_index``-th call.
    """

    def __init__(self, shape, dtype="float32", name=None, history=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = dtype_name(dtype)
        self.name = name
        self._keras_history = history

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def node(self):
        layer, node_index, _ = self._keras_history
        return layer._inbound_nodes[node_index]

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __len__(self):
        raise TypeError("A symbolic tensor has no length; use .shape.")

    def __bool__(self):
        raise TypeError("A symbolic tensor has no truth value: it holds no data until the model runs. "
                        "Put the condition inside a layer's call().")

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is symbolic: it has no values to turn into a NumPy array. Build a Model "
                        "from it and call model.predict(...) for values.")


class Node:
    """One call of a layer on symbolic arguments: ``outputs = layer(*args, **kwargs)``."""

    def __init__(self, layer, args, kwargs, outputs):
        self.layer = layer
        self.args, self.kwargs = args, kwargs
        self.outputs = outputs  # the call's return value: a KerasTensor or a (nested) list of them
        self.input_tensors = [t for t in flatten((args, kwargs)) if isinstance(t, KerasTensor)]
        self.output_tensors = [t for t in flatten(outputs) if isinstance(t, KerasTensor)]
        self.is_input = not self.input_tensors and getattr(layer, "_is_input_layer", False)
        # the common call, layer(x) or layer(x, constant=...) with one output, runs without tree walks
        self._simple = (len(args) == 1 and isinstance(args[0], KerasTensor) and isinstance(outputs, KerasTensor)
                        and not is_symbolic(kwargs))

    @property
    def parent_nodes(self):
        return [t.node for t in self.input_tensors]

    def call(self, values, training=None):
        """Run the layer on real values (``values[id(KerasTensor)]``) and store its outputs there."""
        if self._simple:
            kwargs = self.kwargs
            if training is not None and "training" not in kwargs and self.layer._accepts("training"):
                kwargs = {**kwargs, "training": training}
            values[id(self.outputs)] = self.layer(values[id(self.args[0])], **kwargs)
            return
        args, kwargs = map_structure(lambda t: values[id(t)] if isinstance(t, KerasTensor) else t,
                                     (self.args, self.kwargs))
        if training is not None and "training" not in kwargs and self.layer._accepts("training"):
            kwargs = {**kwargs, "training": training}
        result = self.layer(*args, **kwargs)
        for symbolic, value in zip(flatten(self.outputs), flatten(result)):
            values[id(symbolic)] = value


# ----- nested structures (lists, tuples, dicts) ---------------------------------------------------
def flatten(structure):
    """The leaves of nested lists, tuples and dicts; dicts in sorted key order, as Keras flattens them."""
    if isinstance(structure, dict):
        return [leaf for key in sorted(structure) for leaf in flatten(structure[key])]
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    return [structure]


def map_structure(fn, structure):
    if isinstance(structure, dict):
        return {key: map_structure(fn, value) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(fn, item) for item in structure)
    return fn(structure)


def pack_like(structure, flat):
    """Put the items of ``flat`` into the nesting of ``structure`` (the inverse of ``flatten``)."""
    items = iter(flat)

    def pack(s):
        if isinstance(s, dict):
            packed = {key: pack(s[key]) for key in sorted(s)}
            return {key: packed[key] for key in s}
        if isinstance(s, (list, tuple)):
            return type(s)(pack(item) for item in s)
        return next(items)

    return pack(structure)


def is_symbolic(structure):
    """Whether a (nested) argument holds a symbolic tensor; tensors and plain values answer at once."""
    if isinstance(structure, KerasTensor):
        return True
    if isinstance(structure, (list, tuple)):
        return any(is_symbolic(item) for item in structure)
    if isinstance(structure, dict):
        return any(is_symbolic(item) for item in structure.values())
    return False


def is_shape(value):
    """A single shape (a tuple of ints/None), as opposed to a list of shapes."""
    return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, int) for d in value)


# ----- the graph ---------------------------------------------------------------------------------
class Graph:
    """The nodes between ``inputs`` and ``outputs`` (flat lists of KerasTensors), ready to run.

    ``layers`` is in Keras's order (inputs first, then by depth; ties by first visit from the
    outputs), which is also the order of ``model.weights``. Errors as Keras: a disconnected
    output, a cycle, two layers with one name.
    """

    def __init__(self, inputs, outputs):
        for t in list(inputs) + list(outputs):
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model inputs and outputs must be symbolic tensors (from rnnkit.Input and "
                                f"layer calls), got {type(t).__name__}: {t!r:.100}.")
        self.inputs, self.outputs = list(inputs), list(outputs)
        input_ids = {id(t) for t in inputs}
        order, first_visit = [], {}
        done, visiting = set(), set()

        def visit(tensor):
            node = tensor.node
            if id(node) in done:
                return
            if id(tensor) in input_ids and not node.is_input:
                return  # an intermediate tensor given as a model input: the graph starts here
            if id(node) in visiting:
                raise ValueError(f"Tensor {tensor!r} from layer '{node.layer.name}' is part of a cycle.")
            first_visit.setdefault(id(node.layer), len(first_visit))
            visiting.add(id(node))
            if not node.is_input:
                for parent in node.input_tensors:
                    visit(parent)
            visiting.discard(id(node))
            done.add(id(node))
            order.append(node)

        for t in self.outputs:
            visit(t)
        self.nodes = self._check_connected([n for n in order if not n.is_input], input_ids)
        self._node_ids = {id(n) for n in self.nodes}
        self.layers = self._keras_layer_order(order, first_visit)
        names = collections.Counter(layer.name for layer in self.layers)
        repeated = [name for name, count in names.items() if count > 1]
        if repeated:
            raise ValueError(f"The name '{repeated[0]}' is used by {names[repeated[0]]} layers of this model; "
                             "every layer of a model needs its own name.")

    def _check_connected(self, nodes, input_ids):
        known = set(input_ids)
        for node in nodes:
            for t in node.input_tensors:
                if id(t) not in known:
                    raise ValueError(
                        f"Graph disconnected: cannot reach {t!r} (input of layer '{node.layer.name}') from the "
                        "model's inputs. Add the Input it comes from to Model(inputs=...).")
            known.update(id(t) for t in node.output_tensors)
        for t in self.outputs:
            if id(t) not in known:
                raise ValueError(f"Output {t!r} is not connected to the model's inputs: pass the Input it was "
                                 "computed from in Model(inputs=...).")
        return nodes

    def nodes_of(self, layer):
        """``layer``'s calls that belong to this graph (an Input's own node included), in call order."""
        return [n for n in layer._inbound_nodes if n.is_input or id(n) in self._node_ids]

    def _keras_layer_order(self, order, first_visit):
        depth, visited = {}, {id(n) for n in order}
        for node in reversed(order):  # outputs first: a node is one deeper than its deepest consumer
            d = depth.setdefault(id(node), 0)
            for parent in ([] if node.is_input else node.parent_nodes):
                if id(parent) in visited:
                    depth[id(parent)] = max(depth.get(id(parent), 0), d + 1)
        layer_depth, layers = {}, {}
        for node in order:
            key = id(node.layer)
            layer_depth[key] = max(layer_depth.get(key, 0), depth[id(node)])
            layers[key] = node.layer
        for t in self.inputs:  # unused inputs still count (their InputLayer), at depth 0, first among equals
            layer = t._keras_history[0]
            if t.node.is_input and id(layer) not in layers:
                layers[id(layer)], layer_depth[id(layer)], first_visit[id(layer)] = layer, 0, -1
        keys = sorted(layers, key=lambda k: (-layer_depth[k], first_visit[k]))
        return [layers[k] for k in keys]

    def run(self, input_values, training=None):
        """Outputs (flat list) for real input tensors (flat list in the order of ``inputs``)."""
        values = {id(t): v for t, v in zip(self.inputs, input_values)}
        for node in self.nodes:
            node.call(values, training)
        return [values[id(t)] for t in self.outputs]

    def output_shapes(self, input_shapes):
        """Propagate shapes through the layers' ``compute_output_shape`` (for a model used as a layer)."""
        shapes = {id(t): tuple(s) for t, s in zip(self.inputs, input_shapes)}
        for node in self.nodes:
            first = node.args[0] if node.args else next(iter(node.kwargs.values()))
            in_shape = map_structure(lambda t: shapes[id(t)] if isinstance(t, KerasTensor) else None, first)
            out = node.layer.compute_output_shape(in_shape)
            outs = [out] if is_shape(out) else list(out)
            for t, s in zip(node.output_tensors, outs):
                shapes[id(t)] = tuple(s)
        return [shapes[id(t)] for t in self.outputs]
