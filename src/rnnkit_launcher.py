"""The ``rnnkit`` command's entry point, outside the package so that a Ctrl-C while the package
and PyTorch are still importing ends in one line and exit status 130, not a traceback."""
import signal
import sys


class _Interrupted(KeyboardInterrupt):
    """A Ctrl-C while importing: a KeyboardInterrupt of its own type, for the reason that
    ``rnnkit.cli.Interrupted`` gives (the package cannot be imported here to share that class)."""


def _interrupt(signum, frame):
    raise _Interrupted


def main():
    signal.signal(signal.SIGINT, _interrupt)
    try:
        from rnnkit.cli import main as run

        return run()
    except KeyboardInterrupt:  # while importing; the command itself handles its own Ctrl-C
        print("rnnkit: error: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
