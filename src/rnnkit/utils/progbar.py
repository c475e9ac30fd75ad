"""Keras-style progress bar (the classic ASCII layout) and the ``verbose=2`` epoch line.

On a terminal the bar is redrawn in place with ``\\r``; on any other stream
(CI logs, files) only the final line of each bar is written, so logs stay clean.
"""

import os
import sys
import time


def format_value(value):
    """Format a log value as Keras does: ``%.4f``, or ``%.4e`` when ``|value| <= 1e-3``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return f"{value}"
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def format_time(seconds, unit_name="step"):
    """Per-unit time as Keras prints it: ``2s/step``, ``20ms/step`` or ``150us/step``."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


def format_logs(logs):
    """`` - loss: 0.1234 - mae: 0.0456`` for the given ``(name, value)`` items or dict."""
    items = logs.items() if hasattr(logs, "items") else logs
    return "".join(f" - {name}: {format_value(value)}" for name, value in items)


def format_epoch_line(seconds, steps, logs, unit_name="step"):
    """One ``verbose=2`` epoch summary: ``2s - 20ms/step - loss: 0.1234 - val_loss: 0.2345``."""
    per_step = seconds / steps if steps else 0
    return f"{seconds:.0f}s - {format_time(per_step, unit_name)}{format_logs(logs)}"


def _is_interactive(stream):
    isatty = getattr(stream, "isatty", None)
    try:
        if isatty is not None and isatty():
            return True
    except ValueError:
        return False
    return "ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ


class Progbar:
    """Displays ``12/100 [==>.....] - ETA: 3s - loss: 0.1234`` and, at the end,
    ``100/100 [==========] - 2s 20ms/step - loss: 0.1234``.

    Args:
        target: Total number of steps, or ``None`` if unknown.
        width: Width of the bar in characters.
        verbose: 1 draws the bar; 0 and 2 print nothing (for ``verbose=2`` the
            caller prints :func:`format_epoch_line` once per epoch).
        interval: Minimum seconds between redraws.
        stateful_metrics: ``None`` shows every value as given (the caller
            passes running means). If an iterable is given, values whose names
            are in it are shown as given and all others are averaged over the
            steps seen, as in Keras.
        unit_name: Name of a step in the time-per-step display.
        file: Output stream; ``None`` means ``sys.stdout`` at write time.
    """

    def __init__(
        self,
        target,
        width=30,
        verbose=1,
        interval=0.05,
        stateful_metrics=None,
        unit_name="step",
        file=None,
    ):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.file = file
        self.stateful_metrics = None if stateful_metrics is None else set(stateful_metrics)
        self._values = {}
        self._values_order = []
        self._seen_so_far = 0
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._total_width = 0

    @property
    def _stream(self):
        return self.file if self.file is not None else sys.stdout

    def _record(self, current, values):
        for name, value in values:
            if name not in self._values_order:
                self._values_order.append(name)
            if self.stateful_metrics is None or name in self.stateful_metrics:
                self._values[name] = [value, 1]
            else:
                base = max(current - self._seen_so_far, 1)
                total, count = self._values.get(name, [0.0, 0])
                self._values[name] = [total + value * base, count + base]

    def _estimate_step_duration(self, current, now):
        """Seconds per step, excluding the first step (often slowed by warm-up) when possible."""
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_step = (now - self._time_after_first_step) / (current - 1)
        else:
            per_step = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_step

    def _bar(self, current):
        if self.target is None:
            return f"{current:7d}/Unknown"
        digits = len(str(int(self.target)))
        text = f"{current:{digits}d}/{self.target} ["
        progress = current / self.target if self.target else 1.0
        filled = min(int(self.width * progress), self.width)
        if filled > 0:
            text += "=" * (filled - 1)
            text += ">" if current < self.target else "="
        text += "." * (self.width - filled) + "]"
        return text

    @staticmethod
    def _eta(seconds):
        if seconds > 3600:
            return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
        if seconds > 60:
            return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
        return f"{int(seconds)}s"

    def update(self, current, values=None, finalize=None):
        """Move the bar to step ``current`` and show ``values`` (``(name, value)`` pairs).

        ``finalize`` defaults to ``current >= target``; pass ``finalize=False``
        for per-batch updates when a final update (e.g. with validation
        metrics) follows at the same step.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._record(current, values or [])
        self._seen_so_far = current
        now = time.time()
        per_step = self._estimate_step_duration(current, now)
        if self.verbose != 1:
            return
        interactive = _is_interactive(self._stream)
        if not finalize and (not interactive or now - self._last_update < self.interval):
            return
        bar = self._bar(current)
        if finalize or self.target is None:
            info = f" - {now - self._start:.0f}s {format_time(per_step, self.unit_name)}"
        else:
            info = f" - ETA: {self._eta(per_step * (self.target - current))}"
        for name in self._values_order:
            total, count = self._values[name]
            info += f" - {name}: {format_value(total / max(1, count))}"
        line = bar + info
        message = line
        if interactive:
            message = "\r" + line + " " * max(0, self._total_width - len(line))
        self._total_width = len(line)
        if finalize:
            message += "\n"
        self._stream.write(message)
        self._stream.flush()
        self._last_update = now

    def add(self, n, values=None):
        """Advance by ``n`` steps."""
        self.update(self._seen_so_far + n, values)
