# amaranth: UnusedElaboratable=no
"""``zohw generate``: write a perturbation engine's Verilog and its manifest.

``zohw generate --rng STRATEGY [config options] -o DIR`` writes ``DIR/<top>.v`` (the file is
named after its module, as Verilator's DECLFILENAME rule wants), ``DIR/<top>.core`` (a FuseSoC
CAPI2 core with ``lint`` and ``synth`` targets, :mod:`zohw.fusesoc`) and ``DIR/manifest.json``
(configuration, its hash, the top-level ports taken from the component's signature, the
Verilog's SHA-256 and the tool versions). The same configuration always gives byte-identical
files; all are written atomically.
"""

import hashlib
from pathlib import Path

from zohw.errors import UsageError
from zohw.io import check_output_path, write_json_atomic, write_text_atomic

from ._engine_options import add_engine_options, engine_config, one_line_errors


def register(subparsers):
    p = one_line_errors(subparsers.add_parser(
        "generate", help="write a perturbation engine's Verilog and manifest",
        description=__doc__.splitlines()[0].replace("``", "")))
    add_engine_options(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--top", default=None, metavar="NAME",
                   help="Verilog module name (default zohw_perturb_engine)")
    p.set_defaults(func=run)


def check_top(top):
    if top is not None and not top.isidentifier():
        raise UsageError(f"top must be a Verilog identifier, not {top!r}")


def generate(config, output, top=None):
    """Write ``<top>.v`` and ``manifest.json`` for ``config`` into ``output``; returns the
    manifest."""
    from zohw.hw.engine import PerturbationEngine
    from zohw.hw.verilog import DEFAULT_TOPLEVEL, LINT_WAIVERS, engine_verilog, ports
    from zohw.fusesoc import core_text, vlnv
    from zohw.toolchain import tool_versions

    top = top or DEFAULT_TOPLEVEL
    check_top(top)
    output = check_output_path("-o/--output", output, directory=True, create_parents=True)
    text = engine_verilog(config, name=top)
    verilog_name = f"{top}.v"
    core_name = f"{top}.core"
    manifest = {
        "toplevel": top,
        "verilog": verilog_name,
        "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "fusesoc_core": core_name,
        "vlnv": vlnv(top),
        "config": config.as_dict(),
        "config_hash": config.config_hash,
        "summary": config.summary(),
        "lsb": config.lsb,
        "frac_bits": config.frac_bits,
        # ports of an engine object that is never elaborated (line 1 silences Amaranth's
        # UnusedElaboratable for it): engine_verilog elaborates its own
        "ports": [{"name": name, "direction": direction, "width": width}
                  for name, direction, width in ports(PerturbationEngine(config))],
        "lint_waivers": list(LINT_WAIVERS),
        "tools": tool_versions(),
    }
    write_text_atomic(output / verilog_name, text)
    write_text_atomic(output / core_name, core_text(top, verilog_name, config.summary(),
                                                    config.config_hash))
    write_json_atomic(output / "manifest.json", manifest)
    return manifest


def run(args):
    config = engine_config(args)
    check_top(args.top)
    check_output_path("-o/--output", args.output, directory=True, create_parents=True)
    try:
        manifest = generate(config, args.output, args.top)
    except OSError as exc:
        raise UsageError(f"cannot write to {args.output}: {exc.strerror or exc}") from None
    out = Path(args.output)
    print(f"generated {config.summary()} (config {manifest['config_hash']}): wrote "
          f"{out / manifest['verilog']}, {out / manifest['fusesoc_core']}, "
          f"{out / 'manifest.json'}")
    return 0
