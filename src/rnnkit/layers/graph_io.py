"""Layer graphs as JSON, in Keras 3's functional config layout, and back.

Each layer entry holds the layer's own config and its calls (``inbound_nodes``), whose
arguments name tensors as ``{"class_name": "__keras_tensor__", "config": {"shape", "dtype",
"keras_history": [layer name, node index, tensor index]}}``; ``input_layers`` and
``output_layers`` name the model's inputs and outputs the same way (one ``[name, node,
tensor]`` triple for a single tensor, a list of triples, or a dict of them). Rebuilding
replays the calls, so shared layers and models cut from others come back as they were.
"""
import torch

from .. import registry
from .symbolic import KerasTensor


def _tensor_ref(t, graph):
    layer, _, tensor_index = t._keras_history
    node_index = next(i for i, n in enumerate(graph.nodes_of(layer)) if n is t.node)
    return [layer.name, node_index, tensor_index]


def _tensor_refs(structure, graph):
    if isinstance(structure, KerasTensor):
        return _tensor_ref(structure, graph)
    if isinstance(structure, dict):
        return {k: _tensor_ref(v, graph) for k, v in structure.items()}
    return [_tensor_ref(t, graph) for t in structure]


def graph_config(graph, inputs, outputs, serialize=registry.serialize):
    """``{"layers": [...], "input_layers": ..., "output_layers": ...}`` for a ``Graph`` and the
    (nested) input and output tensors a model was built from."""

    def arg(value):
        if isinstance(value, KerasTensor):
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(value.shape), "dtype": value.dtype,
                               "keras_history": _tensor_ref(value, graph)}}
        if isinstance(value, (list, tuple)):
            return [arg(v) for v in value]
        if isinstance(value, dict):
            return {k: arg(v) for k, v in value.items()}
        if isinstance(value, torch.Tensor):
            raise ValueError("A layer of this model was called with a constant tensor argument, which cannot be "
                             "saved; pass it through an Input or make it a weight.")
        return value

    layers = []
    for layer in graph.layers:
        nodes = [n for n in graph.nodes_of(layer) if not n.is_input]
        spec = serialize(layer)
        spec["name"] = layer.name
        spec["inbound_nodes"] = [{"args": arg(list(n.args)), "kwargs": arg(n.kwargs)} for n in nodes]
        layers.append(spec)
    return {"layers": layers, "input_layers": _tensor_refs(inputs, graph),
            "output_layers": _tensor_refs(outputs, graph)}


def graph_from_config(config, custom_objects=None, deserialize=None):
    """Rebuild the layers of ``graph_config``'s output and replay their calls; returns the
    model's (inputs, outputs) structures. ``deserialize(spec)`` makes a layer from its entry."""
    deserialize = deserialize or (lambda spec: registry.deserialize(spec, custom_objects))
    items = []
    for spec in config["layers"]:
        layer = deserialize(spec)
        items.append((layer, spec.get("name", layer.name), spec.get("inbound_nodes", [])))
    return replay(items, config["input_layers"], config["output_layers"])


def replay(items, input_refs, output_refs):
    """Call each ``(layer, name, inbound_nodes)`` on the tensors its saved calls name, in an order
    where every argument exists; returns the (inputs, outputs) the refs name."""
    tensors, pending = {}, []
    for layer, name, nodes in items:
        if layer._is_input_layer:
            tensors[(name, 0)] = [layer.output]
        pending.extend((layer, name, i, node) for i, node in enumerate(nodes))

    def resolve(value):
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            name, node_index, tensor_index = value["config"]["keras_history"]
            return tensors[(name, node_index)][tensor_index]
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    while pending:
        done = []
        for item in pending:
            layer, name, index, node = item
            if index and (name, index - 1) not in tensors:
                continue  # a shared layer's calls replay in their order
            try:
                args, kwargs = resolve(node["args"]), resolve(node.get("kwargs") or {})
            except KeyError:
                continue  # waits for a call of another layer
            out = layer(*args, **kwargs)
            tensors[(name, index)] = list(out) if isinstance(out, (list, tuple)) else [out]
            done.append(item)
        if not done:
            _, name, index, _ = pending[0]
            raise ValueError(f"The saved graph cannot be rebuilt: call {index} of layer '{name}' needs tensors "
                             "that no other call produces.")
        pending = [item for item in pending if not any(item is d for d in done)]

    def ref(r):
        try:
            return tensors[(r[0], r[1])][r[2]]
        except (KeyError, IndexError):
            raise ValueError(f"The saved graph names a model input or output {r} that no layer call "
                             "produces.") from None

    def refs(structure):
        if isinstance(structure, dict):
            return {k: ref(v) for k, v in structure.items()}
        if structure and not isinstance(structure[0], list):
            return ref(structure)
        return [ref(r) for r in structure]

    return refs(input_refs), refs(output_refs)
