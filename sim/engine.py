"""Host side of the engine cross-check: generate Verilog, build it (cached), run
:mod:`zohw.sim.tb_engine` on it and return the testbench's result.

One configuration is simulated as the plain engine (top level ``zohw_perturb_engine``, the ports
of the contract); several are simulated together as an :class:`~zohw.sim.bank.EngineBank`, so
one Verilator build checks them all.
"""

import importlib

from zohw.config import EngineConfig

from .bank import BANK_TOPLEVEL, bank_verilog
from .build import DEFAULT_OPT
from .host import run_testbench

__all__ = ["ENGINE_TOPLEVEL", "TB_MODULE", "design_verilog", "golden_streams", "cross_check"]

ENGINE_TOPLEVEL = "zohw_perturb_engine"
TB_MODULE = "zohw.sim.tb_engine"


def design_verilog(configs, *, bank=None, engine_factory=None):
    """``(verilog, toplevel, engines)``: the design under test and the testbench's port map."""
    configs = list(configs)
    if bank is None:
        bank = len(configs) > 1
    if not bank:
        if len(configs) != 1:
            raise ValueError("a single-engine design takes exactly one configuration")
        (config,) = configs
        from zohw.hw.verilog import component_verilog, engine_verilog

        if engine_factory is None:
            text = engine_verilog(config, name=ENGINE_TOPLEVEL)
        else:
            text = component_verilog(engine_factory(config), ENGINE_TOPLEVEL)
        return text, ENGINE_TOPLEVEL, [{"stream": "z", "busy": "busy"}]
    text = bank_verilog(configs, engine_factory=engine_factory)
    return text, BANK_TOPLEVEL, [{"stream": f"z{k}", "busy": f"busy{k}"}
                                 for k in range(len(configs))]


def golden_streams(configs, *, seed, d, steps, golden_seed=None, golden_config=None,
                   golden_module=None):
    """The golden model's words for every engine: a list of tensors ``[steps, C, P]``.

    ``golden_seed``/``golden_config`` as in :func:`cross_check`.
    """
    golden = importlib.import_module(golden_module or "zohw.sw.perturb")
    if isinstance(golden_config, dict) or golden_config is None:
        golden_config = [golden_config] * len(configs)
    g_seed = seed if golden_seed is None else golden_seed
    out = []
    for config, override in zip(configs, golden_config):
        gconfig = EngineConfig.from_dict({**config.as_dict(), **(override or {})})
        out.append(golden.golden_stream(gconfig, g_seed, d, steps))
    return out


def cross_check(configs, *, seed=1, d=1024, steps=8, reloads=(), backpressure=0.25,
                rng_seed=0, max_replays=2, golden_seed=None, golden_config=None, bank=None,
                report_limit=8, engine_factory=None, golden_module=None, timeout_s=None,
                progress=None, opt=DEFAULT_OPT):
    """Simulate ``configs`` and compare every transfer against the golden model.

    After ``steps`` steps from ``seed``, each ``(seed, steps)`` of ``reloads`` loads the engines
    again (no reset) and runs that many steps. ``golden_seed`` (replacing the first seed) and
    ``golden_config`` (field overrides: one dict for all engines, or a list with one dict or
    None per engine) feed the golden model something the hardware did not get, to prove a
    mismatch is caught. Returns the testbench result (see :mod:`zohw.sim.tb_engine`)
    plus ``passed``/``failed`` (cocotb test counts), ``build_seconds``, ``sim_seconds``,
    ``words_per_second``, ``toplevel``, ``results_xml``, ``log`` and ``golden`` (the golden
    streams of the first load, one tensor ``[steps, C, P]`` per engine).
    ``progress(message)`` is told when a build and the simulation start; ``opt`` is the C++
    optimisation level of the model (:func:`zohw.sim.build.build`).
    """
    configs = list(configs)
    for c in configs:
        if not isinstance(c, EngineConfig):
            raise TypeError(f"expected EngineConfig objects, not {c!r}")
    reloads = [(int(s), int(t)) for s, t in reloads]
    for name, value in (("d", d), ("steps", steps), *(("reload steps", t) for _, t in reloads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if not 0.0 <= float(backpressure) < 1.0:
        raise ValueError(f"backpressure must be in [0, 1), not {backpressure!r}")
    if isinstance(golden_config, dict) or golden_config is None:
        golden_config = [golden_config] * len(configs)
    if len(golden_config) != len(configs):
        raise ValueError("golden_config needs one entry per configuration")

    golden = importlib.import_module(golden_module or "zohw.sw.perturb")
    text, toplevel, ports = design_verilog(configs, bank=bank, engine_factory=engine_factory)
    engines = [{**p, "config": c.as_dict(), "golden_config": g,
                "cycles_per_step": golden.cycles_per_step(c, d)}
               for p, c, g in zip(ports, configs, golden_config)]
    segments = [golden_streams(configs, seed=seed, d=d, steps=steps, golden_seed=golden_seed,
                               golden_config=golden_config, golden_module=golden_module)]
    for r_seed, r_steps in reloads:
        segments.append(golden_streams(configs, seed=r_seed, d=d, steps=r_steps,
                                       golden_config=golden_config,
                                       golden_module=golden_module))
    expected = segments[0]

    per_engine = [[seg[k].tolist() for seg in segments] for k in range(len(configs))]
    args = {"engines": engines, "seed": seed, "d": d, "steps": steps,
            "reloads": [{"seed": s, "steps": t} for s, t in reloads],
            "backpressure": float(backpressure), "rng_seed": rng_seed,
            "max_replays": max_replays, "golden_seed": golden_seed,
            "report_limit": report_limit}
    if golden_module:
        args["golden_module"] = golden_module
    result, run = run_testbench(text, toplevel, TB_MODULE, args,
                                data={"expected": per_engine}, opt=opt,
                                timeout_s=timeout_s, progress=progress)
    wall = result.get("sim_wall_seconds") or 0.0
    result.update({
        "toplevel": toplevel, "passed": run["passed"], "failed": run["failed"],
        "failures": run["failures"], "build_seconds": run["build_seconds"],
        "sim_seconds": run["sim_seconds"], "results_xml": run["results_xml"],
        "log": run["log"], "golden": expected,
        "words_per_second": result["words_compared"] / wall if wall > 0 else None,
    })
    return result
