"""Command-line options shared by the commands that take a perturbation-engine configuration."""

import sys

from zohw.config import EngineConfig

__all__ = ["add_engine_options", "engine_config", "one_line_errors"]

#: (option, EngineConfig field, type, metavar, help)
_OPTIONS = (
    ("--lanes", "lanes", int, "P", "words per cycle"),
    ("--width", "width", int, "B", "bits per word"),
    ("--pool", "pool", int, "N", "pool words (pezo-shift, pezo-block)"),
    ("--scaling", "scaling", str, "MODE", "none, fixed or adaptive (default: the strategy's)"),
    ("--source", "source", str, "NAME", "uniform generator: lfsr32 or xorshift32"),
    ("--clt-k", "clt_k", int, "K", "uniforms per gauss-clt word (2, 4, 8, 12)"),
    ("--icdf-bits", "icdf_bits", int, "I", "index bits of the gauss-icdf table"),
    ("--otf-sources", "otf_sources", int, "R", "uniform sources of pezo-otf"),
)


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
    """``--rng STRATEGY`` and the configuration fields; unset options keep EngineConfig's
    defaults. Values are validated by :class:`EngineConfig` (unknown strategies are listed)."""
    parser.add_argument("--rng", metavar="STRATEGY", required=strategy_required,
                        help="perturbation strategy (gauss-clt, gauss-icdf, uniform, "
                             "rademacher, pezo-shift, pezo-block, pezo-otf)")
    for option, field, _, metavar, help_ in _OPTIONS:
        # Integers are parsed in engine_config, so that "--lanes many" is reported like every
        # other configuration error.
        parser.add_argument(option, dest=f"cfg_{field}", default=None, metavar=metavar,
                            help=help_)


def _integer(name, text):
    try:
        return int(text, 10)
    except ValueError:
        raise TypeError(f"{name} must be an integer, not {text!r}") from None


def engine_config(args) -> EngineConfig:
    """The :class:`EngineConfig` the parsed options describe (ValueError/TypeError if
    invalid)."""
    fields = {}
    for _, field, typ, _, _ in _OPTIONS:
        value = getattr(args, f"cfg_{field}")
        if value is None:
            continue
        if typ is int:
            value = _integer(field, value)
        fields[field] = value
    if getattr(args, "rng", None) is not None:
        fields["strategy"] = args.rng
    return EngineConfig(**fields)
