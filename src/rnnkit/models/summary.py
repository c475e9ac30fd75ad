"""The text of ``model.summary()``: Keras's table of layers, output shapes and parameter counts.

A chain of layers gets the three columns of the lecture's table; a graph with branches,
merges or shared layers adds Keras's "Connected to" column (``layer[node][tensor]``).
Columns widen to fit long names instead of cutting them off.
"""

def _shape_text(shape):
    parts = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _size_text(count):
    size = count * 4.0
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024


def _sequential_like(model, nodes):
    """Keras's test: one node per depth, each with one input tensor, no layer called twice."""
    if getattr(model, "_graph", None) is None or getattr(model, "_is_sequential", False):
        return True
    layers = [n.layer for n in nodes]
    if len({id(layer) for layer in layers}) != len(layers):
        return False
    inputs = model._graph.inputs
    if len(inputs) != 1 or len(model._graph.outputs) != 1:
        return False
    previous = inputs[0]
    for node in nodes:
        if len(node.input_tensors) != 1 or node.input_tensors[0] is not previous or len(node.output_tensors) != 1:
            return False
        previous = node.output_tensors[0]
    return True


def summary_rows(model):
    """``(rows, connected)``: rows of (name (Type), output shape text, params text[, connected to])."""
    graph = getattr(model, "_graph", None)
    connected = not _sequential_like(model, [] if graph is None else graph.nodes)
    rows = []
    for layer in model.layers:
        own = graph.nodes_of(layer) if graph is not None else []
        if own:
            outputs = own[-1].output_tensors
            shapes = [_shape_text(t.shape) for t in outputs]
            shape = shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"
        else:
            shape = "?"
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        row = [f"{layer.name} ({type(layer).__name__})", shape, params]
        if connected:
            links = [f"{t._keras_history[0].name}[{t._keras_history[1]}][{t._keras_history[2]}]"
                     for n in own if not n.is_input for t in n.input_tensors]
            row.append(", ".join(links) or "-")
        rows.append(row)
    return rows, connected


def format_summary(model_name, rows, total, trainable, line_length=None, connected=False):
    """rows: lists of column texts (name (Type), output shape, params[, connected to])."""
    header = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if connected else [])
    line_length = line_length or (100 if connected else 65)
    fractions = [0.33, 0.55, 0.67, 1.0] if connected else [0.45, 0.85, 1.0]
    widths, start = [], 0
    for i, fraction in enumerate(fractions):
        need = max([len(header[i])] + [len(str(r[i])) for r in rows]) + 1
        width = max(int(line_length * fraction) - start, need if i < len(fractions) - 1 else 0)
        widths.append(width)
        start += width
    total_width = max(line_length, sum(widths[:-1]) + max(len(str(r[-1])) for r in rows + [header]))

    def row(fields):
        return "".join(str(f).ljust(w) for f, w in zip(fields, widths)).rstrip()

    lines = [f'Model: "{model_name}"', "_" * total_width, row(header), "=" * total_width]
    for i, fields in enumerate(rows):
        lines.append(row(fields))
        lines.append("=" * total_width if i == len(rows) - 1 else "_" * total_width)
    if not rows:
        lines.append("=" * total_width)
    lines += [f"Total params: {total:,} ({_size_text(total)})",
              f"Trainable params: {trainable:,} ({_size_text(trainable)})",
              f"Non-trainable params: {total - trainable:,} ({_size_text(total - trainable)})",
              "_" * total_width]
    return "\n".join(lines)

