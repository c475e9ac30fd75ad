"""The ``rnnkit`` command's entry point, outside the package so that a Ctrl-C while the package
and PyTorch are still importing ends in one line and exit status 130, not a traceback."""
import sys


def main():
    try:
        from rnnkit.cli import main as run

        return run()
    except KeyboardInterrupt:  # while importing; the command itself handles its own Ctrl-C
        print("rnnkit: error: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
