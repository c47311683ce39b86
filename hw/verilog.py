"""Verilog of the engine: deterministic text for a configuration."""

from amaranth.back import verilog

from .engine import PerturbationEngine

__all__ = ["engine_verilog", "DEFAULT_TOPLEVEL"]

DEFAULT_TOPLEVEL = "zohw_perturb_engine"


def engine_verilog(config, name=DEFAULT_TOPLEVEL):
    """Verilog text of :class:`PerturbationEngine` for ``config`` (same config, same bytes)."""
    engine = PerturbationEngine(config)
    return verilog.convert(engine, name=name, emit_src=False)
