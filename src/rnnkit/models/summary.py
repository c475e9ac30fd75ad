"""The text of ``model.summary()``, in Keras's table layout."""


def _shape_text(shape):
    parts = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _size_text(count):
    size = count * 4.0
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024


def format_summary(model_name, rows, total, trainable, line_length=65):
    """rows: (name (Type), output shape tuple, parameter count)."""
    positions = [int(line_length * 0.45), int(line_length * 0.85), line_length]

    def row(fields):
        line = ""
        for field, end in zip(fields, positions):
            line = (line + str(field))[: end - 1].ljust(end)
        return line.rstrip()

    lines = [f'Model: "{model_name}"', "_" * line_length,
             row(["Layer (type)", "Output Shape", "Param #"]), "=" * line_length]
    for i, (name, shape, count) in enumerate(rows):
        lines.append(row([name, _shape_text(shape), f"{count:,}"]))
        lines.append("=" * line_length if i == len(rows) - 1 else "_" * line_length)
    if not rows:
        lines.append("=" * line_length)
    lines += [f"Total params: {total:,} ({_size_text(total)})",
              f"Trainable params: {trainable:,} ({_size_text(trainable)})",
              f"Non-trainable params: {total - trainable:,} ({_size_text(total - trainable)})",
              "_" * line_length]
    return "\n".join(lines)
