"""Export a built rnnkit model (Sequential or functional) to an ONNX file.

    from rnnkit.export import export_onnx
    info = export_onnx(model, "model.onnx")      # or model.export("model.onnx", format="onnx")
    print(info)                                  # inputs, outputs, and the path each layer took

    import onnxruntime as ort
    session = ort.InferenceSession("model.onnx")
    y = session.run(None, {info.inputs[0].name: x})[0]   # == model.predict(x) within 1e-5

What is written
    The model's graph (``model._graph``: its nodes in run order), layer by layer, from the
    layers' weights (``layer.get_weights()``, Keras's layout), never from their execution
    path: the native C kernels, ctypes and PyTorch play no part in the file, which holds
    only standard ONNX operators (opset 17) and float32 initialisers. Batch and time axes are
    dynamic (named ``batch`` and ``<input name>_time``, so two inputs may differ in length);
    feature sizes are fixed. Inputs: float32 features, or int64 token ids for an Embedding.

Recurrent layers
    ``SimpleRNN``, ``LSTM`` and ``GRU`` (and ``RNN`` of their built-in cells) become ONNX's own
    ``RNN``, ``LSTM`` and ``GRU`` operators, one operator per layer, so runtimes use their fused
    kernels; the graph is not unrolled. Keras's gate order is converted (LSTM i,f,c,o ->
    ONNX i,o,f,c; GRU z,r,h is ONNX's z,r,h). ``GRU(reset_after=True)`` is
    ``linear_before_reset=1`` with Keras's two bias rows as ``Wb`` and ``Rb``;
    ``reset_after=False`` is ``linear_before_reset=0`` with ``Rb`` = 0. ``go_backwards`` is
    ``direction="reverse"`` (outputs reversed back into Keras's processing order),
    ``Bidirectional`` is one ``direction="bidirectional"`` operator (two operators when a
    custom ``backward_layer`` differs from the forward one), ``initial_state`` feeds
    ``initial_h`` / ``initial_c``, ``return_state`` gives ``Y_h`` / ``Y_c``. Activations map to
    the operators' list: tanh, sigmoid, relu, linear (Affine 1, 0), hard_sigmoid
    (HardSigmoid 1/6, 0.5), elu, softsign, softplus.

    The Scan path: a layer whose activation is not on that list (gelu, selu, swish / silu,
    exponential) is exported as an ONNX ``Scan`` loop over time instead, whose body is one
    Keras step written with MatMul / Add / Mul and the activation (the input projection of all
    steps is one MatMul outside the loop). :attr:`ExportInfo.layers` says which path each layer
    took ("ONNX LSTM operator, ..." or "ONNX Scan loop (activation 'gelu' ...)"). A Python
    function as activation raises :class:`ExportError`, as do ``stateful`` layers and user
    cells (``RNN(MyCell)``, ``StackedRNNCells``).

Masks
    A mask (``Embedding(mask_zero=True)``, ``Masking``) is computed inside the graph from the
    token ids (or features), so the ONNX model takes the same inputs as ``predict``.

    ``masks="right_padding"`` (the default): the mask becomes the operators'
    ``sequence_lens`` (the number of unmasked steps per sample). ONNX's ``sequence_lens``
    describes *right* padding only (real steps first, padding after them), which is what
    ``pad_sequences(..., padding="post")``, ``TextVectorization`` and rnnkit's applications
    produce; for such data the results equal rnnkit's and Keras's masked recurrence (padded
    steps keep the state; a forward layer with ``return_sequences`` repeats its last output
    there, as Keras does). A mask that is not right padding (left padding, holes) cannot be
    expressed with ``sequence_lens``: the graph checks every mask it feeds to an operator and
    onnxruntime then fails with an error from the node named
    ``rnnkit_mask_must_be_right_padded...`` instead of returning wrong numbers.

    ``masks="any"``: masked recurrent layers are exported on the Scan path, which applies the
    mask at every step exactly as rnnkit's ``recurrence.scan`` (any mask: left padding, holes),
    at the cost of the runtime's fused recurrent kernel. Unmasked layers keep their operator.

Other layers
    Dense, Embedding (Gather), Dropout / SpatialDropout1D (identity in inference),
    Activation, Flatten, RepeatVector, Reshape, Permute, Masking, Conv1D (valid / same /
    causal, strides, dilation), MaxPooling1D, GlobalAveragePooling1D (masked mean too),
    GlobalMaxPooling1D, LayerNormalization, BatchNormalization (moving statistics),
    TimeDistributed of a layer that acts on the last axis (Dense, Activation, Dropout),
    Add / Subtract / Multiply / Average / Maximum / Minimum / Concatenate, Dot (inputs of rank
    2 and 3, ``normalize`` too: a siamese encoder's cosine), Attention (dot and
    concat scores, use_scale, masks, use_causal_mask, return_attention_scores) and
    AdditiveAttention, and models used as layers (inlined). Anything else (Lambda, custom
    layers and cells) raises :class:`ExportError` naming the layer and its class.

Text models
    A ``TextVectorization`` layer maps strings to token ids in Python; it is not exported.
    The ONNX model starts from its output: the graph input is the (batch, time) int64 token
    ids that ``vectorizer(texts)`` gives. :attr:`ExportInfo.notes` says so.
"""
from __future__ import annotations

import dataclasses
import os
from typing import List, Optional

import numpy as np

from .._version import __version__
from ..layers import (GRU, LSTM, RNN, Activation, AdditiveAttention, Add, Attention, Average, BatchNormalization,
                      Bidirectional, Concatenate, Conv1D, Dense, Dot, Dropout, Embedding, Flatten, GlobalAveragePooling1D,
                      GlobalMaxPooling1D, LayerNormalization, Masking, Maximum, MaxPooling1D, Minimum, Multiply,
                      Permute, RepeatVector, Reshape, SimpleRNN, SpatialDropout1D, Subtract, TimeDistributed)
from ..layers.rnn_cells import GRUCell, LSTMCell, SimpleRNNCell
from ..layers.symbolic import KerasTensor, flatten, is_symbolic

OPSET = 17
IR_VERSION = 8  # what opset 17 needs (newer opsets raise it); every onnxruntime since 1.12 reads it


class ExportError(ValueError):
    """The model cannot be exported as asked; the message names the layer and the reason."""


@dataclasses.dataclass
class TensorInfo:
    name: str
    dtype: str
    shape: tuple  # None or a name for dynamic axes

    def __str__(self):
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"


@dataclasses.dataclass
class ExportInfo:
    """What :func:`export_onnx` wrote: the file, its inputs and outputs, the path each layer took."""

    path: str
    opset: int
    inputs: List[TensorInfo]
    outputs: List[TensorInfo]
    layers: List[tuple]  # (layer name, class name, how it was exported)
    notes: List[str]

    def __str__(self):
        lines = [f"{self.path} (ONNX opset {self.opset})",
                 "inputs:  " + "; ".join(map(str, self.inputs)),
                 "outputs: " + "; ".join(map(str, self.outputs))]
        lines += [f"  {name} ({cls}): {how}" for name, cls, how in self.layers]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def export_onnx(model, path, *, opset: int = OPSET, masks: str = "right_padding", check: bool = True,
                metadata: Optional[dict] = None) -> ExportInfo:
    """Write ``model`` (a built ``Sequential`` or functional ``Model``) to ``path`` as ONNX.

    Arguments:
        model: a built rnnkit model.
        path: the ``.onnx`` file to write (its folder must exist).
        opset: the ONNX opset (17, the default, or newer).
        masks: ``"right_padding"`` (default): masked recurrent layers use their ONNX operator with
            ``sequence_lens`` (right-padded data only; other masks fail at run time); ``"any"``:
            masked recurrent layers run as ONNX Scan loops that apply the mask step by step, exactly
            as rnnkit and Keras do for any mask (left padding, holes), at the cost of the fused kernel.
        check: run ``onnx.checker`` on the result before writing.
        metadata: str -> str pairs stored in the file's ``metadata_props`` (onnxruntime shows them
            in ``session.get_modelmeta().custom_metadata_map``); ``rnnkit export`` stores the
            model's own metadata there as JSON (a text model's vectorizer vocabulary, labels).

    Returns an :class:`ExportInfo`. Raises :class:`ExportError` for a model that cannot be
    exported (an unbuilt model, an unsupported layer or activation), naming the layer.
    """
    try:
        import onnx
    except ImportError as error:  # pragma: no cover - onnx is a dependency
        raise ExportError("ONNX export needs the 'onnx' package: pip install onnx") from error
    if int(opset) < OPSET:
        raise ExportError(f"opset must be {OPSET} or newer, got {opset}.")
    graph = getattr(model, "_graph", None)
    if graph is None:
        raise ExportError(f"Model '{getattr(model, 'name', model)}' is not built: call it on data, model.build(...) "
                          "or give it an Input before exporting.")
    if masks not in MASKS:
        raise ExportError(f"masks must be one of {', '.join(MASKS)}, got {masks!r}.")
    builder = _Builder(model, masks, opset)
    builder.run()
    onnx_graph = onnx.helper.make_graph(builder.nodes, _safe(model.name or "rnnkit_model"), builder.graph_inputs,
                                        builder.graph_outputs, initializer=builder.initializers)
    proto = onnx.helper.make_model(onnx_graph, opset_imports=[onnx.helper.make_opsetid("", int(opset))],
                                   producer_name="rnnkit", producer_version=_version())
    proto.ir_version = max(IR_VERSION, onnx.helper.find_min_ir_version_for(list(proto.opset_import)))
    if metadata:
        onnx.helper.set_model_props(proto, {str(k): str(v) for k, v in metadata.items()})
    if check:
        onnx.checker.check_model(proto)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(proto.SerializeToString())
    os.replace(tmp, path)
    return ExportInfo(path, int(opset), builder.input_info, builder.output_info, builder.layer_paths, builder.notes)


def _version():
    return __version__


def _safe(name):
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in str(name))


# ----- activations --------------------------------------------------------------------------------
# Keras name -> (ONNX recurrent-operator activation, alpha, beta); None: no parameters
_RNN_ACTIVATIONS = {
    "tanh": ("Tanh", None, None),
    "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None),
    "linear": ("Affine", 1.0, 0.0),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),
    "elu": ("Elu", 1.0, None),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
}


# activations the Scan loop computes with plain ONNX operators (see _Builder._activation)
_SCAN_ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "softplus", "softsign", "exponential", "elu", "selu",
                     "swish", "silu", "hard_sigmoid", "gelu")
MASKS = ("right_padding", "any")


# ----- the builder ------------------------------------------------------------------------------------
class _Builder:
    def __init__(self, model, masks="right_padding", opset=OPSET):
        from onnx import helper, numpy_helper

        self.opset = int(opset)
        self.masks_layout = masks
        self.helper, self.numpy_helper = helper, numpy_helper
        self.model = model
        self.nodes, self.initializers = [], []
        self.graph_inputs, self.graph_outputs = [], []
        self.input_info, self.output_info = [], []
        self.layer_paths, self.notes = [], []
        self.values, self.masks = {}, {}  # id(KerasTensor) -> ONNX name (value / its (batch, time) bool mask)
        self._used, self._consts, self._seq_lens = set(), {}, {}

    # ----- names, constants, nodes ---------------------------------------------------------------
    def fresh(self, hint):
        base = _safe(hint) or "t"
        name, i = base, 1
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def const(self, array, hint="const"):
        array = np.asarray(array)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 16 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(hint)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values):
        return self.const(np.asarray(values, dtype=np.int64), "ints")

    def op(self, op_type, inputs, hint=None, outputs=1, name=None, **attrs):
        """Add a node; returns its output name (or a list of names when ``outputs`` > 1 or a list)."""
        if isinstance(outputs, int):
            outs = [self.fresh(f"{hint or op_type}" + (f"_{i}" if outputs > 1 else "")) for i in range(outputs)]
        else:
            outs = [self.fresh(o) if o else "" for o in outputs]
        node_name = self.fresh(name or f"{hint or op_type}_{op_type}")
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, name=node_name, **attrs))
        return outs[0] if isinstance(outputs, int) and outputs == 1 else outs

    def reduce(self, op_type, x, axes, keepdims, hint):
        """ReduceMax / ReduceMean over ``axes``: an attribute up to opset 17, an input from 18 on."""
        if self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes)], hint=hint, keepdims=keepdims)
        return self.op(op_type, [x], hint=hint, axes=list(axes), keepdims=keepdims)

    # ----- the graph -----------------------------------------------------------------------------
    def run(self):
        graph = self.model._graph
        tv_inputs = self._text_vectorization_inputs(graph)
        for t in graph.inputs:
            if id(t) in tv_inputs:
                continue
            self._add_input(t, t.name or "input")
        self._run_graph(graph, tv_inputs)
        names = list(getattr(self.model, "output_names", None) or [])
        if len(names) != len(graph.outputs):
            names = [f"output_{i}" for i in range(len(graph.outputs))]
        for i, t in enumerate(graph.outputs):
            value = self.values[id(t)]
            hint = names[i] if names[i] not in self._used else f"{names[i]}_out"
            [name] = self.op("Identity", [value], outputs=[hint], name=f"output_{hint}")
            elem, shape = self._describe(t, dynamic=None)
            self.graph_outputs.append(self.helper.make_tensor_value_info(name, elem, shape))
            self.output_info.append(TensorInfo(name, "float32" if elem == 1 else "int64", tuple(shape)))

    def _text_vectorization_inputs(self, graph):
        """Model inputs consumed only by a TextVectorization: the export starts at its output."""
        skip = set()
        for node in graph.nodes:
            if type(node.layer).__name__ == "TextVectorization":
                src = node.args[0] if node.args else None
                if any(src is t for t in graph.inputs):
                    skip.add(id(src))
        return skip

    def _add_input(self, tensor, hint):
        name = self.fresh(hint)
        elem, shape = self._describe(tensor, dynamic=name)
        self.graph_inputs.append(self.helper.make_tensor_value_info(name, elem, shape))
        self.input_info.append(TensorInfo(name, "float32" if elem == 1 else "int64", tuple(shape)))
        self.values[id(tensor)] = name
        self.masks[id(tensor)] = None
        return name

    def _describe(self, tensor, dynamic):
        """(ONNX element type, shape); unknown sizes are named ``batch`` and ``<dynamic>_time`` (each
        input its own time axis), or left unnamed when ``dynamic`` is None (outputs)."""
        from onnx import TensorProto

        dtype = str(tensor.dtype)
        elem = TensorProto.INT64 if dtype.startswith(("int", "uint")) else TensorProto.FLOAT
        if dtype == "bool":
            elem = TensorProto.BOOL
        if dtype == "string":
            raise ExportError("A string input reaches a layer other than TextVectorization; ONNX export starts "
                              "from token ids.")
        shape = []
        for i, d in enumerate(tensor.shape):
            if d is None and dynamic is not None:
                d = "batch" if i == 0 else f"{dynamic}_time" if i == 1 else f"{dynamic}_dim{i}"
            elif d is None and i == 0:
                d = "batch"
            shape.append(d)
        return elem, shape

    def _run_graph(self, graph, tv_inputs=()):

        for node in graph.nodes:
            layer = node.layer
            if type(layer).__name__ == "TextVectorization":
                src = node.args[0] if node.args else None
                if id(src) not in tv_inputs:
                    raise ExportError(f"Layer '{layer.name}' (TextVectorization) sits inside the model; ONNX export "
                                      "supports it only as the first layer (the export then starts from its "
                                      "token ids).")
                out = node.output_tensors[0]
                ids = not str(out.dtype).startswith("float")
                what = "int64 token ids, shape (batch, time)" if ids else f"float32 vectors, shape {out.shape}"
                self._add_input(out, f"{layer.name}_{'token_ids' if ids else 'vectors'}")
                self.layer_paths.append((layer.name, "TextVectorization",
                                         f"not exported: the ONNX input is its output, {what}"))
                self.notes.append(f"the model starts with TextVectorization '{layer.name}': the ONNX model takes "
                                  f"its output ({what}); vectorise texts with the layer (or its vocabulary) "
                                  "before onnxruntime.")
                continue
            ins = [self.values[id(t)] for t in flatten(node.args[0] if node.args else [])]
            in_masks = [self.masks.get(id(t)) for t in flatten(node.args[0] if node.args else [])]
            kwargs = {k: v for k, v in node.kwargs.items() if k not in ("training",)}
            outs, out_masks, how = self._emit(node, layer, ins, in_masks, kwargs)
            tensors = node.output_tensors
            if len(outs) != len(tensors):
                raise ExportError(f"Layer '{layer.name}' ({type(layer).__name__}): exported {len(outs)} outputs but "
                                  f"the model uses {len(tensors)}.")
            for t, o, m in zip(tensors, outs, out_masks):
                self.values[id(t)] = o
                self.masks[id(t)] = m
            if how:
                self.layer_paths.append((layer.name, type(layer).__name__, how))

    # ----- one node ------------------------------------------------------------------------------
    def _emit(self, node, layer, ins, in_masks, kwargs):
        """(output names, output masks, description) for one layer call."""
        cls = type(layer)
        name = layer.name
        mask = in_masks[0] if len(in_masks) == 1 else None
        explicit_mask = kwargs.pop("mask", None)
        if explicit_mask is not None:
            if not isinstance(explicit_mask, KerasTensor):
                raise ExportError(f"Layer '{name}': a constant mask= argument cannot be exported; pass a symbolic "
                                  "mask or let the Embedding make one.")
            mask = self.op("Cast", [self.values[id(explicit_mask)]], hint=f"{name}_mask", to=9)
        if len(node.args) > 1:
            raise ExportError(f"Layer '{name}' ({cls.__name__}) was called with {len(node.args)} positional "
                              "arguments; ONNX export follows calls layer(inputs, keyword=...) only.")

        if getattr(layer, "_graph", None) is not None:  # a model used as a layer: inlined
            return self._emit_model(layer, ins, in_masks)
        if cls in (Attention, AdditiveAttention):
            flags = {k: kwargs.pop(k, False) for k in ("return_attention_scores", "use_causal_mask")}
            self._reject_kwargs(layer, kwargs)
            return self._attention(layer, node, ins, in_masks, **flags)
        if cls in (SimpleRNN, LSTM, GRU, RNN) or cls is Bidirectional:
            initial = kwargs.pop("initial_state", None)
            initial = [self.values[id(t)] for t in flatten(initial)] if initial is not None else None
            self._reject_kwargs(layer, kwargs)
            if cls is Bidirectional:
                return self._bidirectional(layer, ins[0], mask, initial)
            return self._recurrent(layer, ins[0], mask, initial)
        self._reject_kwargs(layer, kwargs)
        x = ins[0] if ins else None
        if cls is Dense:
            return [self._dense(layer, x)], [mask], "MatMul + Add" + self._act_note(layer.activation_name)
        if cls in (Dropout, SpatialDropout1D):
            return [self.op("Identity", [x], hint=name)], [mask], "Identity (inference)"
        if cls is Activation:
            return [self._activation(layer.activation_name, x, layer)], [mask], layer.activation_name
        if cls is Embedding:
            ids = self.op("Cast", [x], hint=f"{name}_ids", to=7)
            table = self.const(layer.get_weights()[0], f"{name}_embeddings")
            out = self.op("Gather", [table, ids], hint=name, axis=0)
            out_mask = self.op("Not", [self.op("Equal", [ids, self.ints(0)], hint=f"{name}_pad")],
                               hint=f"{name}_mask") if layer.mask_zero else None
            return [out], [out_mask], "Gather" + (" (mask: ids != 0)" if layer.mask_zero else "")
        if cls is Masking:
            value = self.const(np.asarray(layer.mask_value, np.float32), f"{name}_value")
            differs = self.op("Not", [self.op("Equal", [x, value], hint=f"{name}_eq")], hint=f"{name}_ne")
            keep = self.op("Cast", [self.reduce("ReduceMax", self.op("Cast", [differs], hint=name, to=1), [-1], 1,
                                                name)], hint=f"{name}_keep", to=9)
            out = self.op("Where", [keep, x, self.const(np.float32(0), "zero")], hint=name)
            out_mask = self.op("Squeeze", [keep, self.ints([-1])], hint=f"{name}_mask")
            return [out], [out_mask], "Where (mask: any(x != mask_value))"
        if cls is Flatten:
            return [self.op("Flatten", [x], hint=name, axis=1)], [None], "Flatten"
        if cls is RepeatVector:
            out = self.op("Expand", [self.op("Unsqueeze", [x, self.ints([1])], hint=name),
                                     self.ints([1, layer.n, 1])], hint=name)
            return [out], [None], "Unsqueeze + Expand"
        if cls is Reshape:
            return [self.op("Reshape", [x, self.ints([0] + list(layer.target_shape))], hint=name)], [None], "Reshape"
        if cls is Permute:
            perm = [0] + [int(d) for d in layer.dims]
            return [self.op("Transpose", [x], hint=name, perm=perm)], [None], "Transpose"
        if cls is Conv1D:
            return [self._conv1d(layer, x)], [None], "Conv" + self._act_note(layer.activation_name)
        if cls is MaxPooling1D:
            xt = self.op("Transpose", [x], hint=name, perm=[0, 2, 1])
            pooled = self.op("MaxPool", [xt], hint=name, kernel_shape=[layer.pool_size], strides=[layer.strides],
                             ceil_mode=1 if layer.padding == "same" else 0)
            return [self.op("Transpose", [pooled], hint=name, perm=[0, 2, 1])], [None], "MaxPool"
        if cls is GlobalMaxPooling1D:
            axis = layer._steps_axis
            return [self.reduce("ReduceMax", x, [axis], int(layer.keepdims), name)], [None], "ReduceMax"
        if cls is GlobalAveragePooling1D:
            return [self._global_average(layer, x, mask)], [None], "masked mean" if mask else "ReduceMean"
        if cls is LayerNormalization:
            return [self._layer_norm(layer, x, node)], [mask], "LayerNormalization"
        if cls is BatchNormalization:
            return [self._batch_norm(layer, x, node)], [mask], "Mul + Add (moving statistics)"
        if cls is TimeDistributed:
            inner = layer.layer
            if type(inner) is Dense:
                return [self._dense(inner, x)], [mask], "MatMul + Add on the last axis"
            if type(inner) in (Dropout, SpatialDropout1D):
                return [self.op("Identity", [x], hint=name)], [mask], "Identity (inference)"
            if type(inner) is Activation:
                return [self._activation(inner.activation_name, x, inner)], [mask], inner.activation_name
            raise ExportError(f"Layer '{name}' (TimeDistributed of {type(inner).__name__}) cannot be exported to "
                              "ONNX; TimeDistributed of Dense, Activation or Dropout can.")
        if cls in (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate):
            return self._merge(layer, node, ins, in_masks)
        if cls is Dot:
            return [self._dot(layer, node, ins)], [None], "MatMul" + (" of L2-normalised inputs" if layer.normalize
                                                                      else "")
        raise ExportError(f"Layer '{name}' ({cls.__name__}) cannot be exported to ONNX: no converter for "
                          f"{cls.__name__}. Supported: Dense, Embedding, SimpleRNN, LSTM, GRU, Bidirectional, "
                          "Conv1D, pooling, Dropout, normalization, attention, merge and reshaping layers (see "
                          "rnnkit.export.onnx).")

    def _reject_kwargs(self, layer, kwargs):

        for key, value in kwargs.items():
            if is_symbolic(value) or value not in (None, False):
                raise ExportError(f"Layer '{layer.name}' ({type(layer).__name__}) was called with {key}=...; ONNX "
                                  "export does not support that argument.")

    def _act_note(self, activation_name):
        return "" if activation_name == "linear" else f" + {activation_name}"

    def _emit_model(self, model, ins, in_masks):
        graph = model._graph
        if graph is None:
            raise ExportError(f"Nested model '{model.name}' is not built.")
        for t, name, m in zip(graph.inputs, ins, in_masks):
            self.values[id(t)], self.masks[id(t)] = name, m
        self._run_graph(graph)
        outs = [self.values[id(t)] for t in graph.outputs]
        return outs, [self.masks.get(id(t)) for t in graph.outputs], None

    # ----- plain layers ------------------------------------------------------------------------
    def _activation(self, name, x, layer, hint=None):
        hint = hint or layer.name
        if name == "linear":
            return x
        simple = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "softplus": "Softplus",
                  "softsign": "Softsign", "exponential": "Exp", "elu": "Elu", "selu": "Selu"}
        if name in simple:
            return self.op(simple[name], [x], hint=f"{hint}_{name}")
        if name == "softmax":
            return self.op("Softmax", [x], hint=f"{hint}_softmax", axis=-1)
        if name == "log_softmax":
            return self.op("LogSoftmax", [x], hint=f"{hint}_log_softmax", axis=-1)
        if name in ("swish", "silu"):
            return self.op("Mul", [x, self.op("Sigmoid", [x], hint=f"{hint}_sig")], hint=f"{hint}_silu")
        if name == "hard_sigmoid":
            return self.op("HardSigmoid", [x], hint=f"{hint}_hsig", alpha=1.0 / 6.0, beta=0.5)
        if name == "gelu":  # torch's exact (erf) GELU, as F.gelu
            erf = self.op("Erf", [self.op("Mul", [x, self.const(np.float32(1 / np.sqrt(2)), "inv_sqrt2")])],
                          hint=f"{hint}_erf")
            half_x = self.op("Mul", [x, self.const(np.float32(0.5), "half")], hint=f"{hint}_half")
            return self.op("Mul", [half_x, self.op("Add", [erf, self.const(np.float32(1), "one")])],
                           hint=f"{hint}_gelu")
        raise ExportError(f"Layer '{layer.name}' ({type(layer).__name__}): activation '{name}' has no ONNX "
                          "equivalent in this exporter.")

    def _dense(self, layer, x):
        weights = layer.get_weights()
        y = self.op("MatMul", [x, self.const(weights[0], f"{layer.name}_kernel")], hint=layer.name)
        if layer.use_bias:
            y = self.op("Add", [y, self.const(weights[1], f"{layer.name}_bias")], hint=layer.name)
        return self._activation(layer.activation_name, y, layer)

    def _conv1d(self, layer, x):
        weights = layer.get_weights()
        span = layer.dilation_rate * (layer.kernel_size - 1)
        pads = {"valid": [0, 0], "causal": [span, 0], "same": [span // 2, span - span // 2]}[layer.padding]
        xt = self.op("Transpose", [x], hint=layer.name, perm=[0, 2, 1])
        inputs = [xt, self.const(np.transpose(weights[0], (2, 1, 0)), f"{layer.name}_kernel")]
        if layer.use_bias:
            inputs.append(self.const(weights[1], f"{layer.name}_bias"))
        y = self.op("Conv", inputs, hint=layer.name, kernel_shape=[layer.kernel_size], strides=[layer.strides],
                    dilations=[layer.dilation_rate], pads=pads)
        y = self.op("Transpose", [y], hint=layer.name, perm=[0, 2, 1])
        return self._activation(layer.activation_name, y, layer)

    def _global_average(self, layer, x, mask):
        axis, keep = layer._steps_axis, int(layer.keepdims)
        if mask is None:
            return self.reduce("ReduceMean", x, [axis], keep, layer.name)
        m = self.op("Cast", [self.op("Unsqueeze", [mask, self.ints([2 if axis == 1 else 1])], hint=layer.name)],
                    hint=f"{layer.name}_mask", to=1)
        total = self.op("ReduceSum", [self.op("Mul", [x, m], hint=layer.name), self.ints([axis])], hint=layer.name,
                        keepdims=keep)
        count = self.op("ReduceSum", [m, self.ints([axis])], hint=f"{layer.name}_count", keepdims=keep)
        count = self.op("Max", [count, self.const(np.float32(1), "one")], hint=f"{layer.name}_count")
        return self.op("Div", [total, count], hint=layer.name)

    def _layer_norm(self, layer, x, node):
        rank = len(node.input_tensors[0].shape)
        axes = layer._resolve_axes(rank)
        if axes != list(range(rank - len(axes), rank)):
            raise ExportError(f"Layer '{layer.name}' (LayerNormalization): only trailing axes export to ONNX, "
                              f"got axis={layer.axis}.")
        shape = tuple(node.input_tensors[0].shape[a] for a in axes)
        gamma = layer.gamma.detach().cpu().numpy() if layer.scale else np.ones(shape, np.float32)
        beta = layer.beta.detach().cpu().numpy() if layer.center else np.zeros(shape, np.float32)
        return self.op("LayerNormalization", [x, self.const(gamma, f"{layer.name}_gamma"),
                                              self.const(beta, f"{layer.name}_beta")],
                       hint=layer.name, axis=axes[0], epsilon=layer.epsilon)

    def _batch_norm(self, layer, x, node):
        rank = len(node.input_tensors[0].shape)
        axis = layer._check_axis(rank)
        n = layer._input_dim
        gamma = layer.gamma.detach().cpu().numpy() if layer.scale else np.ones(n, np.float32)
        beta = layer.beta.detach().cpu().numpy() if layer.center else np.zeros(n, np.float32)
        mean = layer.moving_mean.detach().cpu().numpy()
        var = layer.moving_variance.detach().cpu().numpy()
        scale = (gamma / np.sqrt(var + layer.epsilon)).astype(np.float32)
        shift = (beta - mean * scale).astype(np.float32)
        shape = [1] * rank
        shape[axis] = n
        y = self.op("Mul", [x, self.const(scale.reshape(shape[1:]), f"{layer.name}_scale")], hint=layer.name)
        return self.op("Add", [y, self.const(shift.reshape(shape[1:]), f"{layer.name}_shift")], hint=layer.name)

    def _merge(self, layer, node, ins, in_masks):

        cls, name = type(layer), layer.name
        ranks = [len(t.shape) for t in node.input_tensors]
        if len(set(ranks)) > 1 and cls is not Concatenate:  # Keras expands lower-rank inputs at axis 1
            raise ExportError(f"Layer '{name}' ({cls.__name__}): inputs of different ranks do not export to ONNX.")
        masked = any(m is not None for m in in_masks)
        out_mask = None
        if masked and all(m is not None for m in in_masks):
            out_mask = in_masks[0]
            for m in in_masks[1:]:
                out_mask = self.op("Or", [out_mask, m], hint=f"{name}_mask")
        if cls is Concatenate:
            if masked and layer.axis % ranks[0] != ranks[0] - 1:
                raise ExportError(f"Layer '{name}' (Concatenate): masked inputs joined on axis {layer.axis} do not "
                                  "export to ONNX (only the last axis).")
            return [self.op("Concat", ins, hint=name, axis=layer.axis)], [out_mask], "Concat"
        if masked and cls in (Multiply, Maximum, Minimum):
            raise ExportError(f"Layer '{name}' ({cls.__name__}) on masked inputs does not export to ONNX (its "
                              "values depend on the masks); Add, Subtract, Average and Concatenate do.")
        op = {Add: "Sum", Average: "Mean", Maximum: "Max", Minimum: "Min"}.get(cls)
        if op:
            out = self.op(op, ins, hint=name)
        elif cls is Subtract:
            out = self.op("Sub", ins, hint=name)
        else:  # Multiply
            out = ins[0]
            for x in ins[1:]:
                out = self.op("Mul", [out, x], hint=name)
        return [out], [out_mask], op or ("Sub" if cls is Subtract else "Mul")

    def _dot(self, layer, node, ins):
        """Dot(axes, normalize) as rnnkit computes it, for inputs of rank 2 or 3: the contracted axis
        of the first input moved last and of the second moved to 1, one batched MatMul (rank-2
        inputs get a unit axis for it, removed after)."""
        name = layer.name
        ranks = [len(t.shape) for t in node.input_tensors]
        if max(ranks) > 3:
            raise ExportError(f"Layer '{name}' (Dot) on inputs of rank {max(ranks)} does not export to ONNX "
                              "(ranks 2 and 3 do).")
        a1, a2 = layer._axes(*ranks)
        x, y = ins
        if layer.normalize:  # Keras's ops.normalize: x * min(rsqrt(sum(x**2)), 1/epsilon)
            x, y = (self._l2_normalize(t, axis, f"{name}_normalize") for t, axis in ((x, a1), (y, a2)))
        if ranks[0] == 3 and a1 != 2:
            x = self.op("Transpose", [x], hint=f"{name}_a", perm=[0, 2, 1])
        if ranks[1] == 3 and a2 != 1:
            y = self.op("Transpose", [y], hint=f"{name}_b", perm=[0, 2, 1])
        if ranks[0] == 2:
            x = self.op("Unsqueeze", [x, self.ints([1])], hint=f"{name}_a")
        if ranks[1] == 2:
            y = self.op("Unsqueeze", [y, self.ints([2])], hint=f"{name}_b")
        out = self.op("MatMul", [x, y], hint=name)
        if ranks == [2, 2]:
            return self.op("Squeeze", [out, self.ints([2])], hint=name)  # (batch, 1), as Keras
        if 2 in ranks:
            return self.op("Squeeze", [out, self.ints([1 if ranks[0] == 2 else 2])], hint=name)
        return out

    def _l2_normalize(self, x, axis, hint, epsilon=1e-7):
        total = self.op("ReduceSum", [self.op("Mul", [x, x], hint=hint), self.ints([axis])], hint=hint, keepdims=1)
        inv = self.op("Min", [self.op("Reciprocal", [self.op("Sqrt", [total], hint=hint)], hint=hint),
                              self.const(np.float32(1.0 / epsilon), f"{hint}_cap")], hint=hint)
        return self.op("Mul", [x, inv], hint=hint)

    def _attention(self, layer, node, ins, in_masks, return_attention_scores=False, use_causal_mask=False):
        """Attention / AdditiveAttention as rnnkit computes them in inference (no dropout)."""

        name = layer.name
        query, value = ins[0], ins[1]
        key = ins[2] if len(ins) > 2 else value
        q_mask = in_masks[0] if in_masks else None
        v_mask = in_masks[1] if len(in_masks) > 1 else None
        rank = len(node.input_tensors[0].shape)
        if type(layer) is AdditiveAttention or layer.score_mode == "concat":
            total = self.op("Add", [self.op("Unsqueeze", [query, self.ints([-2])], hint=f"{name}_q"),
                                    self.op("Unsqueeze", [key, self.ints([-3])], hint=f"{name}_k")], hint=name)
            if type(layer) is AdditiveAttention:
                total = self.op("Tanh", [total], hint=name)
                if layer.use_scale:
                    total = self.op("Mul", [total, self.const(layer.scale.detach().cpu().numpy(), f"{name}_scale")],
                                    hint=name)
                scores = self.op("ReduceSum", [total, self.ints([-1])], hint=f"{name}_scores", keepdims=0)
            else:
                if layer.use_scale:
                    total = self.op("Mul", [total, self.const(layer.scale.detach().cpu().numpy(), f"{name}_scale")],
                                    hint=name)
                scores = self.op("ReduceSum", [self.op("Tanh", [total], hint=name), self.ints([-1])],
                                 hint=f"{name}_scores", keepdims=0)
                weight = self.const(layer.concat_score_weight.detach().cpu().numpy(), f"{name}_concat_weight")
                scores = self.op("Mul", [scores, weight], hint=f"{name}_scores")
        else:
            perm = list(range(rank - 2)) + [rank - 1, rank - 2]
            scores = self.op("MatMul", [query, self.op("Transpose", [key], hint=f"{name}_kT", perm=perm)],
                             hint=f"{name}_scores")
            if layer.use_scale:
                scores = self.op("Mul", [scores, self.const(layer.scale.detach().cpu().numpy(), f"{name}_scale")],
                                 hint=f"{name}_scores")
        keep = self.op("Unsqueeze", [v_mask, self.ints([-2])], hint=f"{name}_vmask") if v_mask else None
        if use_causal_mask:
            shape = self.op("Shape", [scores], hint=f"{name}_shape")
            tq = self.op("Gather", [shape, self.const(np.int64(-2), "minus_two_i64")], hint=f"{name}_tq", axis=0)
            tv = self.op("Gather", [shape, self.const(np.int64(-1), "minus_one_i64")], hint=f"{name}_tv", axis=0)
            zero, one = self.const(np.int64(0), "zero_i64"), self.const(np.int64(1), "one_i64")
            rows = self.op("Unsqueeze", [self.op("Range", [zero, tq, one], hint=f"{name}_rows"), self.ints([1])],
                           hint=f"{name}_rows")
            cols = self.op("Unsqueeze", [self.op("Range", [zero, tv, one], hint=f"{name}_cols"), self.ints([0])],
                           hint=f"{name}_cols")
            causal = self.op("Not", [self.op("Less", [rows, cols], hint=f"{name}_causal")], hint=f"{name}_causal")
            keep = causal if keep is None else self.op("And", [keep, causal], hint=f"{name}_keep")
        if keep is not None:
            lowered = self.op("Sub", [scores, self.const(np.float32(1.0e9), "big")], hint=f"{name}_masked")
            scores = self.op("Where", [keep, scores, lowered], hint=f"{name}_scores")
        weights = self.op("Softmax", [scores], hint=f"{name}_weights", axis=-1)
        output = self.op("MatMul", [weights, value], hint=name)
        if q_mask is not None:
            output = self.op("Where", [self.op("Unsqueeze", [q_mask, self.ints([-1])], hint=f"{name}_qmask"), output,
                                       self.const(np.float32(0), "zero")], hint=name)
        outs = [output, weights] if return_attention_scores else [output]
        return outs, [q_mask] + [None] * (len(outs) - 1), "MatMul + Softmax" + (" (masked)" if keep else "")

    # ----- recurrent layers --------------------------------------------------------------------------
    def _check_rnn(self, layer, where=None):

        where = where or layer
        cell = layer.cell
        if type(cell) not in (SimpleRNNCell, LSTMCell, GRUCell) or cell.fused_kind is None:
            raise ExportError(f"Layer '{where.name}' ({type(where).__name__}) runs the cell {type(cell).__name__}, "
                              "which has no ONNX operator; only SimpleRNN/LSTM/GRU cells export (ONNX RNN, LSTM, "
                              "GRU). No Scan/Loop path is exported.")
        if layer.stateful:
            raise ExportError(f"Layer '{where.name}' is stateful (it carries states between batches), which an ONNX "
                              "graph cannot hold; rebuild the model with stateful=False (same weights) to export it.")
        for what, name in (("activation", cell.activation_name),
                           ("recurrent_activation", cell.recurrent_activation_name)):
            if what == "recurrent_activation" and cell.fused_kind == "simple_rnn":
                continue
            if name not in _RNN_ACTIVATIONS and name not in _SCAN_ACTIVATIONS:
                raise ExportError(
                    f"Layer '{where.name}' ({type(where).__name__}): {what}='{name}' has no ONNX form: it is neither "
                    f"one of the {_OPS[cell.fused_kind]} operator's activations "
                    f"({', '.join(sorted(_RNN_ACTIVATIONS))}) nor one the Scan loop can compute "
                    f"({', '.join(sorted(_SCAN_ACTIVATIONS))}).")
        return cell.fused_kind

    def _activations(self, kind, cell, directions):
        names = {"simple_rnn": [cell.activation_name],
                 "lstm": [cell.recurrent_activation_name, cell.activation_name, cell.activation_name],
                 "gru": [cell.recurrent_activation_name, cell.activation_name]}[kind] * directions
        acts, alphas, betas = [], [], []
        for n in names:
            onnx_name, alpha, beta = _RNN_ACTIVATIONS[n]
            acts.append(onnx_name)
            if alpha is not None:
                alphas.append(alpha)
            if beta is not None:
                betas.append(beta)
        return acts, alphas, betas

    def _weights(self, kind, layer):
        """ONNX W (gates*H, in), R (gates*H, H), B (2*gates*H,) from Keras's kernel, recurrent kernel, bias."""
        cell = layer.cell
        weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
        kernel, recurrent = weights[0], weights[1]
        bias = weights[2] if cell.use_bias else None
        units = cell.units
        gates = {"simple_rnn": 1, "lstm": 4, "gru": 3}[kind]
        order = [0, 3, 1, 2] if kind == "lstm" else list(range(gates))  # Keras i,f,c,o -> ONNX i,o,f,c

        def reorder(matrix):  # (..., gates*units) in Keras's order -> ONNX's
            return np.concatenate([matrix[..., g * units:(g + 1) * units] for g in order], axis=-1)

        w = reorder(kernel).T
        r = reorder(recurrent).T
        wb = np.zeros(gates * units, np.float32)
        rb = np.zeros(gates * units, np.float32)
        if bias is not None:
            if kind == "gru" and cell.reset_after:
                wb, rb = reorder(bias[0]), reorder(bias[1])
            else:
                wb = reorder(bias)
        return w, r, np.concatenate([wb, rb])

    def _sequence_lens(self, mask):
        """int32 (batch,) lengths of the right-padded mask, with a runtime check that it is right padding."""
        if mask in self._seq_lens:
            return self._seq_lens[mask]
        m32 = self.op("Cast", [mask], hint="mask_int", to=6)
        lens = self.op("ReduceSum", [m32, self.ints([1])], hint="sequence_lens", keepdims=0)
        # check: mask == (arange(time) < lens); otherwise Reshape a 1-element tensor to 2 elements, which
        # fails in onnxruntime with this node's name in the message
        steps = self.op("Gather", [self.op("Shape", [mask], hint="mask_shape"), self.const(np.int64(1), "one_i64")],
                        hint="time_steps", axis=0)
        arange = self.op("Range", [self.const(np.int64(0), "zero_i64"), steps, self.const(np.int64(1), "one_i64")],
                         hint="time_range")
        lens64 = self.op("Cast", [lens], hint="sequence_lens64", to=7)
        prefix = self.op("Less", [self.op("Unsqueeze", [arange, self.ints([0])], hint="time_row"),
                                  self.op("Unsqueeze", [lens64, self.ints([1])], hint="lens_col")], hint="prefix")
        bad = self.op("Cast", [self.op("Xor", [prefix, mask], hint="mask_not_prefix")], hint="mask_bad", to=7)
        any_bad = self.reduce("ReduceMax", bad, [0, 1], 1, "mask_any_bad")
        want = self.op("Reshape", [self.op("Add", [any_bad, self.ints([[1]])], hint="check_size"), self.ints([1])],
                       hint="check_shape")
        checked = self.op("Reshape", [self.const(np.zeros(1, np.int32), "zero_i32_vec"), want],
                          hint="mask_check", name="rnnkit_mask_must_be_right_padded__left_padding_or_holes_"
                                                  "cannot_use_ONNX_sequence_lens")
        lens = self.op("Add", [lens, checked], hint="sequence_lens_checked")
        self._seq_lens[mask] = lens
        return lens

    def _run_op(self, kind, layers, x, mask, initial, direction, hint):
        """One ONNX RNN/LSTM/GRU node for ``layers`` (one, or forward+backward); returns (Y, Y_h, Y_c) names
        (Y in (time, num_directions, batch, units) layout)."""
        cell = layers[0].cell
        ws, rs, bs = zip(*(self._weights(kind, lay) for lay in layers))
        inputs = [self.op("Transpose", [x], hint=f"{hint}_tbf", perm=[1, 0, 2]),
                  self.const(np.stack(ws), f"{hint}_W"), self.const(np.stack(rs), f"{hint}_R"),
                  self.const(np.stack(bs), f"{hint}_B")]
        inputs.append(self._sequence_lens(mask) if mask is not None else "")
        if initial is not None:
            per = 2 if kind == "lstm" else 1
            hs = [initial[i * per] for i in range(len(layers))]
            h0 = [self.op("Unsqueeze", [h, self.ints([0])], hint=f"{hint}_h0") for h in hs]
            inputs.append(h0[0] if len(h0) == 1 else self.op("Concat", h0, hint=f"{hint}_h0", axis=0))
            if kind == "lstm":
                c0 = [self.op("Unsqueeze", [initial[i * per + 1], self.ints([0])], hint=f"{hint}_c0")
                      for i in range(len(layers))]
                inputs.append(c0[0] if len(c0) == 1 else self.op("Concat", c0, hint=f"{hint}_c0", axis=0))
        while inputs and inputs[-1] == "":
            inputs.pop()
        acts, alphas, betas = self._activations(kind, cell, len(layers))
        attrs = dict(hidden_size=cell.units, direction=direction, activations=acts,
                     activation_alpha=alphas or None, activation_beta=betas or None)
        if kind == "gru":
            attrs["linear_before_reset"] = int(bool(cell.reset_after))
        outputs = [f"{hint}_Y", f"{hint}_Y_h"] + ([f"{hint}_Y_c"] if kind == "lstm" else [])
        outs = self.op(_OPS[kind], inputs, hint=hint, outputs=outputs, **attrs)
        return outs[0], outs[1], (outs[2] if kind == "lstm" else None)

    def _reverse_time(self, y, hint):
        """Reverse axis 0 (time) of a (time, ...) tensor."""
        return self.op("Slice", [y, self.ints([-1]), self.ints([np.iinfo(np.int64).min]), self.ints([0]),
                                 self.ints([-1])], hint=f"{hint}_rev")

    def _scan_reason(self, layer, mask):
        """Why ``layer`` runs as a Scan loop instead of its ONNX operator (None: the operator)."""
        cell = layer.cell
        names = [cell.activation_name] + ([] if cell.fused_kind == "simple_rnn" else [cell.recurrent_activation_name])
        odd = [n for n in names if n not in _RNN_ACTIVATIONS]
        if odd:
            return f"activation '{odd[0]}' is not one of the {_OPS[cell.fused_kind]} operator's"
        if mask is not None and self.masks_layout == "any":
            return "masks='any': the mask applies step by step (any padding, holes too)"
        return None

    def _scan(self, kind, layer, x, mask, initial, reverse_output, hint):
        """Keras's recurrence as an ONNX Scan over time, step by step with the mask as rnnkit's
        ``recurrence.scan``: masked steps keep the states and repeat the last output (zeros with
        ``zero_output_for_mask``, and before the first real step). Returns (outputs (batch, time, units)
        in processing order, or in input order with ``reverse_output``; last output; final states)."""
        from onnx import TensorProto

        cell, units = layer.cell, layer.cell.units
        weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
        kernel, recurrent = weights[0], weights[1]
        bias = weights[2] if cell.use_bias else None
        reset_after = kind == "gru" and cell.reset_after
        input_bias = (bias[0] if reset_after else bias) if bias is not None else None
        recurrent_bias = bias[1] if reset_after and bias is not None else None
        # the input projection of every step at once, outside the loop
        xw = self.op("MatMul", [x, self.const(kernel, f"{hint}_kernel")], hint=f"{hint}_xw")
        if input_bias is not None:
            xw = self.op("Add", [xw, self.const(input_bias, f"{hint}_bias")], hint=f"{hint}_xw")
        batch = self.op("Slice", [self.op("Shape", [x], hint=f"{hint}_shape"), self.ints([0]), self.ints([1])],
                        hint=f"{hint}_batch")
        zeros = self.op("ConstantOfShape", [self.op("Concat", [batch, self.ints([units])], hint=f"{hint}_zshape",
                                                    axis=0)], hint=f"{hint}_zeros",
                        value=self.helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]))
        n_states = 2 if kind == "lstm" else 1
        states0 = list(initial) if initial is not None else [zeros] * n_states
        carries = states0 + ([zeros] if mask is not None else [])
        scan_inputs = [xw]
        if mask is not None:
            scan_inputs.append(self.op("Unsqueeze", [mask, self.ints([2])], hint=f"{hint}_mask3"))

        # the body: one step
        outer_nodes, self.nodes = self.nodes, []
        vi = self.helper.make_tensor_value_info
        s_in = [self.fresh(f"{hint}_{n}_in") for n in (["h", "c"][:n_states] + (["prev"] if mask is not None else []))]
        x_t = self.fresh(f"{hint}_xw_t")
        m_t = self.fresh(f"{hint}_m_t") if mask is not None else None
        h = s_in[0]
        rk = self.const(recurrent, f"{hint}_recurrent_kernel")
        act = lambda v, n: self._activation(cell.activation_name, v, layer, hint=f"{hint}_{n}")  # noqa: E731
        ract = lambda v, n: self._activation(cell.recurrent_activation_name, v, layer, hint=f"{hint}_{n}")  # noqa
        if kind == "simple_rnn":
            h_new = act(self.op("Add", [x_t, self.op("MatMul", [h, rk], hint=f"{hint}_hu")], hint=f"{hint}_z"), "h")
            new_states = [h_new]
        elif kind == "lstm":
            z = self.op("Add", [x_t, self.op("MatMul", [h, rk], hint=f"{hint}_hu")], hint=f"{hint}_z")
            zi, zf, zc, zo = self._split(z, 4, units, f"{hint}_gate")
            c_new = self.op("Add", [self.op("Mul", [ract(zf, "f"), s_in[1]], hint=f"{hint}_fc"),
                                    self.op("Mul", [ract(zi, "i"), act(zc, "g")], hint=f"{hint}_ig")],
                            hint=f"{hint}_c")
            h_new = self.op("Mul", [ract(zo, "o"), act(c_new, "hc")], hint=f"{hint}_h")
            new_states = [h_new, c_new]
        else:  # gru
            xz, xr, xh = self._split(x_t, 3, units, f"{hint}_x")
            if reset_after:
                hu = self.op("MatMul", [h, rk], hint=f"{hint}_hu")
                if recurrent_bias is not None:
                    hu = self.op("Add", [hu, self.const(recurrent_bias, f"{hint}_recurrent_bias")], hint=f"{hint}_hu")
                rz, rr, rh = self._split(hu, 3, units, f"{hint}_r")
                zg = ract(self.op("Add", [xz, rz], hint=f"{hint}_zz"), "z")
                rg = ract(self.op("Add", [xr, rr], hint=f"{hint}_rr"), "r")
                hh = act(self.op("Add", [xh, self.op("Mul", [rg, rh], hint=f"{hint}_rh")], hint=f"{hint}_hh"), "hh")
            else:
                u_zr = self.const(recurrent[:, :2 * units], f"{hint}_recurrent_zr")
                u_h = self.const(recurrent[:, 2 * units:], f"{hint}_recurrent_h")
                rz, rr = self._split(self.op("MatMul", [h, u_zr], hint=f"{hint}_hu"), 2, units, f"{hint}_r")
                zg = ract(self.op("Add", [xz, rz], hint=f"{hint}_zz"), "z")
                rg = ract(self.op("Add", [xr, rr], hint=f"{hint}_rr"), "r")
                rhu = self.op("MatMul", [self.op("Mul", [rg, h], hint=f"{hint}_rh"), u_h], hint=f"{hint}_rhu")
                hh = act(self.op("Add", [xh, rhu], hint=f"{hint}_hh"), "hh")
            one = self.const(np.float32(1), "one")
            h_new = self.op("Add", [self.op("Mul", [zg, h], hint=f"{hint}_zh"),
                                    self.op("Mul", [self.op("Sub", [one, zg], hint=f"{hint}_1mz"), hh],
                                            hint=f"{hint}_zhh")], hint=f"{hint}_h")
            new_states = [h_new]
        if mask is not None:
            kept = [self.op("Where", [m_t, new, old], hint=f"{hint}_keep") for new, old in zip(new_states, s_in)]
            previous = s_in[-1] if not layer.zero_output_for_mask else self.const(np.float32(0), "zero")
            out = self.op("Where", [m_t, h_new, previous], hint=f"{hint}_out")
            body_outs = kept + [out, self.op("Identity", [out], hint=f"{hint}_out_t")]
        else:
            body_outs = new_states + [self.op("Identity", [h_new], hint=f"{hint}_out_t")]
        body_nodes, self.nodes = self.nodes, outer_nodes
        body_inputs = [vi(n, TensorProto.FLOAT, None) for n in s_in] + [vi(x_t, TensorProto.FLOAT, None)]
        if m_t:
            body_inputs.append(vi(m_t, TensorProto.BOOL, None))
        body = self.helper.make_graph(body_nodes, self.fresh(f"{hint}_step"), body_inputs,
                                      [vi(n, TensorProto.FLOAT, None) for n in body_outs])
        backwards = bool(layer.go_backwards)
        results = self.op("Scan", carries + scan_inputs, hint=f"{hint}_scan", outputs=len(carries) + 1, body=body,
                          num_scan_inputs=len(scan_inputs), scan_input_axes=[1] * len(scan_inputs),
                          scan_input_directions=[int(backwards)] * len(scan_inputs), scan_output_axes=[1],
                          scan_output_directions=[int(backwards and reverse_output)])
        final_states, sequence = results[:n_states], results[-1]
        last = results[n_states] if mask is not None and not layer.zero_output_for_mask else final_states[0]
        return sequence, last, final_states

    def _split(self, value, parts, size, hint):
        """``parts`` slices of ``size`` along the last axis (Split with a sizes input: opset 13 and newer)."""
        return self.op("Split", [value, self.ints([size] * parts)], hint=f"{hint}_split", outputs=parts, axis=-1)

    def _recurrent(self, layer, x, mask, initial, reverse_output=False):
        kind = self._check_rnn(layer)
        name = layer.name
        reason = self._scan_reason(layer, mask)
        if reason is not None:
            seq, last, final = self._scan(kind, layer, x, mask, initial, reverse_output, name)
            outs = [seq if layer.return_sequences else last]
            masks = [mask if layer.return_sequences else None]
            if layer.return_state:
                outs += final
                masks += [None] * len(final)
            return outs, masks, f"ONNX Scan loop ({reason})" + (", go_backwards" if layer.go_backwards else "")
        direction = "reverse" if layer.go_backwards else "forward"
        y, y_h, y_c = self._run_op(kind, [layer], x, mask, initial, direction, name)
        h = self.op("Squeeze", [y_h, self.ints([0])], hint=f"{name}_h")
        if layer.return_sequences:
            seq = self.op("Squeeze", [y, self.ints([1])], hint=f"{name}_seq")  # (time, batch, units)
            if layer.go_backwards:
                seq = self._reverse_time(seq, name)  # Keras returns outputs in processing order
            seq = self.op("Transpose", [seq], hint=f"{name}_seq", perm=[1, 0, 2])
            if mask is not None and not layer.zero_output_for_mask and not layer.go_backwards:
                # Keras repeats the last real output over the padding; ONNX writes zeros there
                last = h
                if initial is not None:  # a sample with no real step outputs zeros, not its initial state
                    lens = self._sequence_lens(mask)
                    some = self.op("Cast", [self.op("Greater", [lens, self.const(np.int32(0), "zero_i32")],
                                                    hint=f"{name}_nonempty")], hint=f"{name}_nonempty", to=1)
                    last = self.op("Mul", [h, self.op("Unsqueeze", [some, self.ints([1])], hint=name)], hint=name)
                keep = self.op("Unsqueeze", [mask, self.ints([2])], hint=f"{name}_keep")
                seq = self.op("Where", [keep, seq, self.op("Unsqueeze", [last, self.ints([1])], hint=name)],
                              hint=f"{name}_seq")
            output = seq
        else:
            output = h
        outs, masks = [output], [mask if layer.return_sequences else None]
        if layer.return_state:
            outs.append(h)
            if kind == "lstm":
                outs.append(self.op("Squeeze", [y_c, self.ints([0])], hint=f"{name}_c"))
            masks += [None] * (len(outs) - 1)
        how = f"ONNX {_OPS[kind]} operator, direction={direction}"
        if kind == "gru":
            how += f", linear_before_reset={int(bool(layer.cell.reset_after))}"
        if mask is not None:
            how += ", sequence_lens from the mask (right padding)"
        return outs, masks, how

    def _bidirectional(self, layer, x, mask, initial):
        fw, bw = layer.forward_layer, layer.backward_layer
        kind = self._check_rnn(fw, layer)
        if self._check_rnn(bw, layer) != kind:
            raise ExportError(f"Layer '{layer.name}' (Bidirectional): the two directions are different kinds of "
                              "layer.")
        name = layer.name
        scan = self._scan_reason(fw, mask) or self._scan_reason(bw, mask)
        same = (scan is None and not fw.go_backwards and bw.go_backwards and fw.cell.units == bw.cell.units
                and fw.cell.activation_name == bw.cell.activation_name
                and fw.cell.recurrent_activation_name == bw.cell.recurrent_activation_name
                and getattr(fw.cell, "reset_after", None) == getattr(bw.cell, "reset_after", None))
        per = 2 if kind == "lstm" else 1
        if same:
            y, y_h, y_c = self._run_op(kind, [fw, bw], x, mask, initial, "bidirectional", name)
            fw_h = self.op("Squeeze", [self.op("Slice", [y_h, self.ints([0]), self.ints([1]), self.ints([0])],
                                               hint=name)], hint=f"{name}_fw_h")
            bw_h = self.op("Squeeze", [self.op("Slice", [y_h, self.ints([1]), self.ints([2]), self.ints([0])],
                                               hint=name)], hint=f"{name}_bw_h")
            if layer.return_sequences:  # (time, 2, batch, units) -> (batch, time, 2, units)
                y4 = self.op("Transpose", [y], hint=f"{name}_y", perm=[2, 0, 1, 3])
                fw_out = self.op("Squeeze", [self.op("Slice", [y4, self.ints([0]), self.ints([1]), self.ints([2])],
                                                     hint=name), self.ints([2])], hint=f"{name}_fw")
                bw_out = self.op("Squeeze", [self.op("Slice", [y4, self.ints([1]), self.ints([2]), self.ints([2])],
                                                     hint=name), self.ints([2])], hint=f"{name}_bw")
                if layer.merge_mode == "concat":
                    merged = [self.op("Reshape", [y4, self.ints([0, 0, -1])], hint=f"{name}_concat")]
                    fw_out = bw_out = None
            else:
                fw_out, bw_out = fw_h, bw_h
            states = []
            if layer.return_state:
                states = [fw_h]
                if kind == "lstm":
                    fw_c = self.op("Squeeze", [self.op("Slice", [y_c, self.ints([0]), self.ints([1]), self.ints([0])],
                                                       hint=name)], hint=f"{name}_fw_c")
                    bw_c = self.op("Squeeze", [self.op("Slice", [y_c, self.ints([1]), self.ints([2]), self.ints([0])],
                                                       hint=name)], hint=f"{name}_bw_c")
                    states = [fw_h, fw_c, bw_h, bw_c]
                else:
                    states = [fw_h, bw_h]
            how = f"ONNX {_OPS[kind]} operator, direction=bidirectional"
        else:
            fw_init = initial[:per] if initial is not None else None
            bw_init = initial[per:] if initial is not None else None
            fo, _, fw_how = self._recurrent(fw, x, mask, fw_init)
            bo, _, bw_how = self._recurrent(bw, x, mask, bw_init, reverse_output=True)
            fw_out, bw_out = fo[0], bo[0]
            if layer.return_sequences and not bw_how.startswith("ONNX Scan"):  # Keras flips it back
                bw_out = self.op("Transpose", [self._reverse_time(self.op("Transpose", [bw_out], perm=[1, 0, 2],
                                                                          hint=name), name)],
                                 hint=f"{name}_bw", perm=[1, 0, 2])
            states = (fo[1:] + bo[1:]) if layer.return_state else []
            how = (f"two ONNX Scan loops, forward and backward ({scan})" if scan else
                   f"two ONNX {_OPS[kind]} operators (forward, reverse): the backward layer differs")
        if kind == "gru" and not scan:
            how += f", linear_before_reset={int(bool(fw.cell.reset_after))}"
        if mask is not None and not scan:
            how += ", sequence_lens from the mask (right padding)"
        if not (same and layer.return_sequences and layer.merge_mode == "concat"):
            mode = layer.merge_mode
            if mode == "concat":
                merged = [self.op("Concat", [fw_out, bw_out], hint=f"{name}_concat", axis=-1)]
            elif mode == "sum":
                merged = [self.op("Add", [fw_out, bw_out], hint=f"{name}_sum")]
            elif mode == "mul":
                merged = [self.op("Mul", [fw_out, bw_out], hint=f"{name}_mul")]
            elif mode == "ave":
                merged = [self.op("Mul", [self.op("Add", [fw_out, bw_out], hint=name),
                                          self.const(np.float32(0.5), "half")], hint=f"{name}_ave")]
            else:
                merged = [fw_out, bw_out]
        seq_mask = mask if layer.return_sequences else None
        outs = merged + states
        return outs, [seq_mask] * len(merged) + [None] * len(states), how


_OPS = {"simple_rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
