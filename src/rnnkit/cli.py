"""The ``rnnkit`` command: one subcommand per application.

    rnnkit forecast                      # train and evaluate a temperature forecaster
    rnnkit forecast predict --model-file runs/forecast/model.rnnkit --data new.csv

Adding an application: write a module with ``add_arguments(subparsers)`` (it calls
``subparsers.add_parser(name, ...)`` and adds its options) and ``main(args)`` (runs,
returns the exit status), then list it in :data:`COMMANDS`. Modules are imported only
when their subcommand runs or ``rnnkit --help`` is shown. See :mod:`rnnkit.apps`.

Errors: bad input raised as :class:`rnnkit.apps.UsageError`,
:class:`rnnkit.datasets.DataError`, :class:`rnnkit.saving.ModelFileError`,
:class:`rnnkit.datasets.ChecksumError` or ``OSError`` (a missing or unwritable file, a
failed download) is printed as ``rnnkit <command>: error: <message>`` on stderr with
exit status 2 (argparse's own usage errors also exit with 2); a diverging training
(``FloatingPointError``) exits with 1. Anything else is a bug and shows its traceback.
"""
import argparse
import contextlib
import importlib
import shlex
import signal
import sys
import threading

from ._version import __version__

# subcommand name -> module exposing add_arguments(subparsers) and main(args)
COMMANDS = {
    "forecast": "rnnkit.apps.forecast",
    "sentiment": "rnnkit.apps.sentiment",
    "classify": "rnnkit.apps.classify",
    "generate": "rnnkit.apps.generate",
    "seq2seq": "rnnkit.apps.seq2seq",
    "compare": "rnnkit.apps.compare",
    "export": "rnnkit.apps.export",
    "authorship": "rnnkit.apps.authorship",
    "tsclassify": "rnnkit.apps.tsclassify",
}

EXIT_USAGE = 2


def _load(name):
    return importlib.import_module(COMMANDS[name])


def build_parser(commands=None):
    """The top-level parser; ``commands`` limits which application modules are imported."""
    parser = argparse.ArgumentParser(prog="rnnkit", description="Keras-exact RNNs on PyTorch: applications.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands if commands is not None else COMMANDS:
        sub = _load(name).add_arguments(subparsers)
        sub.set_defaults(_command=name)
    return parser


class Interrupted(KeyboardInterrupt):
    """What rnnkit's Ctrl-C handler raises: a KeyboardInterrupt (``except KeyboardInterrupt``
    catches it) of its own type. CPython remembers a plain KeyboardInterrupt that passes through
    code run by ``PyRun_String`` (optree's C extension runs some) and, under ``python -m``, kills
    the process with SIGINT at exit even after rnnkit handled it; it checks the exact type only."""


class _CtrlC:
    """SIGINT raises KeyboardInterrupt as Python's own handler does, and is remembered: a C
    extension can turn the KeyboardInterrupt raised inside it into another exception (matplotlib's
    Agg renderer: "ValueError: Invalid bounding box"), which must still end as "interrupted"."""

    def __init__(self):
        self.seen = False
        self.finished = False  # the command has returned: its results are complete

    def __call__(self, signum, frame):
        if self.finished:  # nothing is left to interrupt; the process is only exiting
            return
        self.seen = True
        raise Interrupted

    @contextlib.contextmanager
    def installed(self, exiting=False):
        """Install for the block, then put the previous handler back; with ``exiting`` (the
        process's own command line, which ends when the block does) ignore SIGINT instead. A
        Ctrl-C that lands after the command finished must not kill the exiting process: Python
        resets its handler to the system default while it shuts down (status -2), but leaves an
        ignored signal ignored."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN if exiting else previous)


def _error(command, message):
    print(f"rnnkit{' ' + command if command else ''}: error: {message}", file=sys.stderr, flush=True)


def main(argv=None):
    """Entry point of the ``rnnkit`` console script; returns the exit status."""
    from .apps import UsageError
    from .datasets import ChecksumError, DataError
    from .saving import ModelFileError

    own_command_line = argv is None  # main() of the process, not a call from Python code
    argv = list(sys.argv[1:] if argv is None else argv)
    # Import only the chosen application (importing all of them costs time at every start).
    first = next((a for a in argv if not a.startswith("-")), None)
    commands = [first] if first in COMMANDS else None
    try:
        parser = build_parser(commands)
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        _error(first if first in COMMANDS else None, "interrupted")
        return 130
    except SystemExit as exc:  # --help, --version, usage errors: argparse already printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    if getattr(args, "_command", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    command = args._command
    args.command_line = " ".join(["rnnkit", *(shlex.quote(a) for a in argv)])
    ctrl_c = _CtrlC()
    try:
        with ctrl_c.installed(exiting=own_command_line):
            status = int(_load(command).main(args) or 0)
            ctrl_c.finished = True
        return status
    except KeyboardInterrupt:
        _error(command, "interrupted")
        return 130
    except Exception as exc:
        if ctrl_c.seen:  # a Ctrl-C that surfaced as another exception (from inside a C extension)
            _error(command, "interrupted")
            return 130
        if isinstance(exc, (UsageError, DataError, ModelFileError, ChecksumError, OSError)):
            _error(command, str(exc).strip().replace("\n", " "))
            return EXIT_USAGE
        if isinstance(exc, FloatingPointError):  # training diverged: say so, no traceback
            _error(command, str(exc))
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
