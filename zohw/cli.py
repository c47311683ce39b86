"""The ``zohw`` command line.

A user's mistake — a configuration value (:class:`~zohw.errors.ConfigError`) or the usage of an
option (:class:`~zohw.errors.UsageError`, or argparse's own checks) — is reported as one line on
stderr, ``zohw COMMAND: error: …``, with exit code 2. Anything else is a bug in zohw and keeps
its traceback. Ctrl-C (SIGINT) and SIGTERM end a command with one line and exit code 130 or
143 (:mod:`zohw.signals`): children killed, queued work cancelled, no partial output, and the
run directories the command made removed.
"""

import argparse
import difflib
import importlib
import re
import sys
from importlib import metadata

from .commands import COMMANDS
from .errors import ConfigError, UsageError

__all__ = ["main", "build_parser", "ZohwParser", "UsageError"]


class ZohwParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (with the closest option for a typo)."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        # A command without subcommands reports stray arguments itself, so that the message
        # names the command and the suggestion comes from its own options.
        if extras and not any(isinstance(a, argparse._SubParsersAction) for a in self._actions):
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def error(self, message):
        match = re.match(r"unrecognized arguments: (\S+)", message)
        if match and match.group(1).startswith("--"):
            known = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
            close = difflib.get_close_matches(match.group(1).split("=")[0], known, n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _version():
    try:
        return metadata.version("zohw")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def build_parser():
    parser = ZohwParser(prog="zohw", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"zohw {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ZohwParser)
    for name in COMMANDS:
        importlib.import_module(f"zohw.commands.{name}").register(sub)
    return parser


def _close_progress_bars():
    """Close the tqdm bars an interrupt left open (clearing their line), so that the last line
    is the interrupt's and no bar redraws after it."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is None:
        return
    for bar in list(getattr(tqdm.tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:           # pragma: no cover - a bar half torn down
            pass


#: Nesting depth of :func:`main` (``zohw demo`` runs other commands through it).
_depth = 0


def main(argv=None):
    global _depth
    from . import io, signals

    if _depth:                            # a command run by another: its interrupt is the
        return _main(argv, signals, nested=True)      # outer command's
    _depth += 1
    try:
        with signals.installed():
            io.begin_command()
            return _main(argv, signals, nested=False)
    finally:
        _depth -= 1


def _main(argv, signals, nested):
    name = "zohw"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        name = f"zohw {args.command}"
        return args.func(args) or 0
    except (ConfigError, UsageError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:      # Ctrl-C, or SIGTERM (signals.Terminated)
        if nested:
            raise
        from .io import discard_outputs, discard_run_directories

        discard_run_directories()
        discard_outputs()
        _close_progress_bars()
        what, code = signals.outcome(exc)
        print(f"{name}: {what}", file=sys.stderr, flush=True)
        return code

if __name__ == "__main__":
    sys.exit(main())
