"""``plot_model``: a model's graph as a PNG, drawn with matplotlib (no graphviz needed).

Each layer is a box (``name (Type)``, and its input and output shapes with
``show_shapes=True``); arrows follow the tensors. Boxes are placed in rows by depth, from
the inputs at the top to the outputs at the bottom, as Keras's (graphviz) plot does.
"""
from ..plots import new_figure, save_png


def _shape_text(shapes):
    parts = ["(" + ", ".join("None" if d is None else str(d) for d in s) + ")" for s in shapes]
    return parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"


def _rows(model):
    """Layers in rows by their longest distance from an input, and the edges between them."""
    graph = getattr(model, "_graph", None)
    if graph is None:
        raise ValueError(f"Model '{model.name}' has no graph to draw yet: build it first (give it an Input or "
                         "call model.build(shape)); subclassed models have no graph.")
    level, edges = {}, []
    for t in graph.inputs:
        level[id(t._keras_history[0])] = 0
    for node in graph.nodes:
        parents = [t._keras_history[0] for t in node.input_tensors]
        depth = 1 + max((level.get(id(p), 0) for p in parents), default=0)
        level[id(node.layer)] = max(level.get(id(node.layer), 0), depth)
        edges.extend((p, node.layer) for p in parents)
    rows = {}
    for layer in model.layers:
        rows.setdefault(level.get(id(layer), 0), []).append(layer)
    return [rows[k] for k in sorted(rows)], edges


def _label(layer, graph, show_shapes, show_layer_names):
    title = f"{layer.name} ({type(layer).__name__})" if show_layer_names else type(layer).__name__
    if not show_shapes:
        return title
    nodes = graph.nodes_of(layer)
    if not nodes:
        return title
    node = nodes[-1]
    inputs = [t.shape for t in node.input_tensors] or [t.shape for t in node.output_tensors]
    outputs = [t.shape for t in node.output_tensors]
    return f"{title}\nin: {_shape_text(inputs)}\nout: {_shape_text(outputs)}"


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=True,
               rankdir="TB", dpi=100, **unused):
    """Draw ``model``'s layers and connections to a PNG file (written atomically); returns the path.

    Arguments (Keras's names):
        model: a functional or Sequential model (built).
        to_file: the PNG to write.
        show_shapes: print each layer's input and output shapes in its box.
        show_layer_names: print layer names beside their types.
        rankdir: "TB" (top to bottom, default) or "LR" (left to right).
        dpi: resolution.

        rnnkit.utils.plot_model(model, "model.png", show_shapes=True)
    """
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be 'TB' or 'LR', got {rankdir!r}.")
    rows, edges = _rows(model)
    graph = model._graph
    labels = {id(layer): _label(layer, graph, show_shapes, show_layer_names) for row in rows for layer in row}
    widest = max(len(line) for text in labels.values() for line in text.split("\n"))
    box_w, box_h = 0.1 * widest + 0.6, 0.32 * (3 if show_shapes else 1) + 0.3
    across = max(len(row) for row in rows)
    gap_w, gap_h = 0.5, 0.7
    width, height = across * (box_w + gap_w), len(rows) * (box_h + gap_h)
    if rankdir == "LR":
        width, height = height * 1.6, width / 1.6
    fig = new_figure(max(width, 3), max(height, 2), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, max(width, 3))
    ax.set_ylim(0, max(height, 2))
    ax.axis("off")
    centres = {}
    for r, row in enumerate(rows):
        for c, layer in enumerate(row):
            offset = (across - len(row)) * (box_w + gap_w) / 2
            x = offset + c * (box_w + gap_w) + (box_w + gap_w) / 2
            y = height - r * (box_h + gap_h) - (box_h + gap_h) / 2
            if rankdir == "LR":
                x, y = r * (box_w + gap_w) * 1.0 + (box_w + gap_w) / 2, height - (c + 0.5) * (box_h + gap_h)
            centres[id(layer)] = (x, y)
            ax.text(x, y, labels[id(layer)], ha="center", va="center", family="monospace", fontsize=9,
                    bbox={"boxstyle": "round,pad=0.4", "facecolor": "#eef3fb", "edgecolor": "#3b5b92"})
    for source, target in edges:
        (x0, y0), (x1, y1) = centres[id(source)], centres[id(target)]
        if rankdir == "LR":
            start, end = (x0 + box_w / 2, y0), (x1 - box_w / 2, y1)
        else:
            start, end = (x0, y0 - box_h / 2), (x1, y1 + box_h / 2)
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "#555555"})
    return save_png(fig, to_file)
