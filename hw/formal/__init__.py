"""Formal properties of the RTL with SymbiYosys: Amaranth ``Assert``/``Assume``/``Cover``
harnesses (:mod:`.harnesses`), each property with a planted-bug twin (:mod:`.mutants`) that the
solver must refute (:mod:`.checks`); ``python -m zohw.hw.formal`` runs them all."""

from .checks import CHECKS, QUICK, Check, by_name
from .sby import SbyResult, run_sby, tools

__all__ = ["CHECKS", "QUICK", "Check", "by_name", "run", "SbyResult", "run_sby", "tools"]


def run(check, **kwargs):
    """Run one :class:`Check`; returns its :class:`SbyResult`."""
    design, patches = check.build()
    return run_sby(design, mode=check.mode, depth=check.depth, name=check.name.replace("~", "-"),
                   patches=patches, **kwargs)
