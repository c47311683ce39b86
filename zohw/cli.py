"""The ``zohw`` command line.

Configuration errors (:class:`TypeError`/:class:`ValueError` raised while validating inputs) are
reported as one line on stderr with exit code 2, never as a traceback.
"""

import argparse
import importlib
import sys

from .commands import COMMANDS


class UsageError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def build_parser():
    parser = argparse.ArgumentParser(prog="zohw", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"zohw.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"zohw.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (UsageError, TypeError, ValueError) as exc:
        print(f"zohw {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
