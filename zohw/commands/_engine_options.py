"""Command-line options shared by the commands that take a perturbation-engine configuration."""

import sys

from zohw.config import EngineConfig
from zohw.configbase import add_options, options_to_kwargs
from zohw.strategies import STRATEGIES

__all__ = ["add_engine_options", "engine_config", "one_line_errors"]

#: EngineConfig fields that are not options of their own: the strategy is ``--rng``.
_EXCLUDED = ("strategy",)


def one_line_errors(parser):
    """Make ``parser`` report argument errors as one stderr line (exit code 2), like the
    configuration errors :func:`zohw.cli.main` reports. Parsers made by
    :class:`zohw.cli.ZohwParser` (every ``zohw`` subcommand's) already do."""
    from zohw.cli import ZohwParser

    if not isinstance(parser, ZohwParser):
        def error(message):
            print(f"{parser.prog}: error: {message}", file=sys.stderr)
            sys.exit(2)

        parser.error = error
    return parser


def add_engine_options(parser, *, strategy_required=True):
    """``--rng STRATEGY`` and one option per :class:`EngineConfig` field, knobs of every
    registered strategy included; help, defaults and ranges come from the fields' metadata.
    Unset options keep EngineConfig's defaults."""
    parser.add_argument("--rng", metavar="STRATEGY", required=strategy_required,
                        help=f"perturbation strategy: {', '.join(STRATEGIES)}")
    add_options(parser, EngineConfig, exclude=_EXCLUDED)


def engine_config(args) -> EngineConfig:
    """The :class:`EngineConfig` the parsed options describe (:class:`ConfigError` if
    invalid)."""
    fields = options_to_kwargs(args, EngineConfig, _engine_fields())
    if getattr(args, "rng", None) is not None:
        fields["strategy"] = args.rng
    return EngineConfig(**fields)


def _engine_fields():
    return [n for n, p in EngineConfig.fields_meta().items() if not p.nested and n not in _EXCLUDED]
