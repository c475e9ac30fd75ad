"""Applications built on rnnkit's public API, each one subcommand of the ``rnnkit`` CLI.

An application is a module (or package) that exposes two functions:

``add_arguments(subparsers)``
    Register the subcommand: call ``subparsers.add_parser(NAME, ...)``, add its
    options, and return the parser.
``main(args)``
    Run with the parsed ``argparse.Namespace``; return the exit status (0 on success).

It is listed in :data:`rnnkit.cli.COMMANDS` under its subcommand name. Bad input
is reported by raising :class:`UsageError` (or :class:`rnnkit.datasets.DataError`,
:class:`rnnkit.saving.ModelFileError`) with a one-line message; the CLI prints it on
stderr and exits with status 2, without a traceback.
"""


class UsageError(ValueError):
    """The command cannot run as asked; the message says why, in one line."""


__all__ = ["UsageError"]
