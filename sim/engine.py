"""Host side of the engine cross-check: compute the golden words, write them as memory
images, generate the harness's Verilog, build it (cached, only its ports public), run
:mod:`zohw.sim.tb_engine` on it and return the testbench's result.

The engines — one, or many in one build — run inside the RTL harness
(:mod:`zohw.sim.engine_harness`), so the simulation runs at Verilator speed. :func:`design_verilog`
still gives the bare design (plain engine or :class:`~zohw.sim.bank.EngineBank`).
"""

import importlib

from zohw.config import EngineConfig

from .bank import BANK_TOPLEVEL, bank_verilog
from .build import DEFAULT_SIMULATOR
from .host import run_testbench

__all__ = ["ENGINE_TOPLEVEL", "TB_MODULE", "ENGINE_OPT", "design_verilog",
           "golden_streams", "hex_rows", "address_bits", "cross_check", "first_mismatch"]

ENGINE_TOPLEVEL = "zohw_perturb_engine"
TB_MODULE = "zohw.sim.tb_engine"
#: C++ optimisation level of the engine harness's model: -O2 runs about 12 times faster than
#: -O0 for a build about as long (the harness is small; docs/cosim.md).
ENGINE_OPT = "-O2"


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


def hex_rows(words, width):
    """``$readmemh`` text of golden transfers: ``words`` is an integer tensor ``[rows, P]``;
    each row is one line, lane j at bits ``[j*width, (j+1)*width)`` (two's complement), as
    the stream's payload packs them. Vectorized (no loop over rows)."""
    import numpy as np

    w = words.reshape(words.shape[0], -1).numpy().astype(np.int64) & ((1 << width) - 1)
    rows, lanes = w.shape
    nbits = lanes * width
    digits = -(-nbits // 4)
    chars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = []
    for lo in range(0, rows, 1 << 15):               # bounded temporaries
        chunk = w[lo:lo + (1 << 15)]
        bits = ((chunk[:, :, None] >> np.arange(width)) & 1).astype(np.uint8)
        bits = bits.reshape(len(chunk), nbits)
        bits = np.concatenate([bits, np.zeros((len(chunk), digits * 4 - nbits), np.uint8)],
                              axis=1)
        nib = bits.reshape(len(chunk), digits, 4) @ np.array([1, 2, 4, 8], np.uint8)
        text = chars[nib[:, ::-1]]
        out.append(np.concatenate([text, np.full((len(chunk), 1), ord("\n"), np.uint8)],
                                  axis=1).tobytes())
    return b"".join(out)


def address_bits(rows):
    """Address bits of a golden memory of ``rows`` rows: a power of two of at least 4096 rows
    (at most half a megabyte), so that short runs of one design share one Verilator build."""
    return max(12, (rows - 1).bit_length())


def cross_check(configs, *, seed=1, d=1024, steps=8, reloads=(), backpressure=0.25,
                rng_seed=0, max_replays=2, golden_seed=None, golden_config=None, bank=None,
                report_limit=8, engine_factory=None, golden_module=None, timeout_s=None,
                progress=None, opt=ENGINE_OPT, simulator=DEFAULT_SIMULATOR, waves=True,
                waves_dir=None):
    """Simulate ``configs`` and compare every transfer against the golden model.

    The engines run inside the RTL harness (:mod:`zohw.sim.engine_harness`), which compares
    every word with the golden words written here to its memories; ``bank`` is accepted for
    compatibility (one engine or several, the harness is the same).

    After ``steps`` steps from ``seed``, each ``(seed, steps)`` of ``reloads`` loads the engines
    again (no reset) and runs that many steps. ``golden_seed`` (replacing the first seed) and
    ``golden_config`` (field overrides: one dict for all engines, or a list with one dict or
    None per engine) feed the golden model something the hardware did not get, to prove a
    mismatch is caught. Returns the testbench result (see :mod:`zohw.sim.tb_engine`)
    plus ``passed``/``failed`` (cocotb test counts), ``build_seconds``, ``sim_seconds``,
    ``words_per_second`` (words compared per second of the simulated run), ``toplevel``,
    ``results_xml``, ``log`` and ``golden`` (the golden streams of the first load, one tensor
    ``[steps, C, P]`` per engine). ``progress(message)`` is told when a build and the
    simulation start; ``opt`` is the C++ optimisation level of the model
    (:func:`zohw.sim.build.build`); ``simulator`` is ``"verilator"`` or ``"icarus"``
    (:data:`zohw.sim.build.SIMULATORS`).

    With ``waves`` (the default), a run with mismatches is rerun on a traced model up to the
    end of the step of the first mismatch, and ``waves`` in the result describes the FST file
    of that step (:func:`zohw.sim.waves.rerun_with_waves`): ``{"path", "load", "step",
    "simulator", "window", "build_seconds", "sim_seconds", "error"}`` (``path`` None and
    ``error`` set if it could not be written); it is written to ``waves_dir`` (default: the
    rerun's run directory). Without mismatches, or with ``waves=False``, ``waves`` is None.
    """
    import torch

    from .engine_harness import HARNESS_TOPLEVEL, harness_verilog, rom_file

    configs = list(configs)
    for c in configs:
        if not isinstance(c, EngineConfig):
            raise TypeError(f"expected EngineConfig objects, not {c!r}")
    if bank is False and len(configs) != 1:
        raise ValueError("a single-engine design takes exactly one configuration")
    reloads = [(int(s), int(t)) for s, t in reloads]
    for name, value in (("d", d), ("steps", steps), *(("reload steps", t) for _, t in reloads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if not 0.0 <= float(backpressure) < 1.0:
        raise ValueError(f"backpressure must be in [0, 1), not {backpressure!r}")
    if not 1 <= report_limit <= 64:
        raise ValueError(f"report_limit must be an integer from 1 to 64, not {report_limit!r}")
    if isinstance(golden_config, dict) or golden_config is None:
        golden_config = [golden_config] * len(configs)
    if len(golden_config) != len(configs):
        raise ValueError("golden_config needs one entry per configuration")

    golden = importlib.import_module(golden_module or "zohw.sw.perturb")
    cps = [golden.cycles_per_step(c, d) for c in configs]
    segments = [golden_streams(configs, seed=seed, d=d, steps=steps, golden_seed=golden_seed,
                               golden_config=golden_config, golden_module=golden_module)]
    for r_seed, r_steps in reloads:
        segments.append(golden_streams(configs, seed=r_seed, d=d, steps=r_steps,
                                       golden_config=golden_config,
                                       golden_module=golden_module))
    files, abits = {}, []
    for k, c in enumerate(configs):
        rows = torch.cat([seg[k].reshape(-1, c.lanes) for seg in segments])
        abits.append(address_bits(len(rows)))
        files[rom_file(k)] = hex_rows(rows, c.width)
    text, ports = harness_verilog(configs, abits, engine_factory=engine_factory,
                                  report_limit=report_limit)
    args = {"engines": [{"config": c.as_dict(), "name": c.name, "config_hash": c.config_hash,
                         "cycles_per_step": n}
                        for c, n in zip(configs, cps)],
            "seed": seed, "d": d, "steps": steps,
            "reloads": [{"seed": s, "steps": t} for s, t in reloads],
            "backpressure": float(backpressure), "rng_seed": rng_seed,
            "max_replays": max_replays, "golden_seed": golden_seed,
            "report_limit": report_limit}
    result, run = run_testbench(text, HARNESS_TOPLEVEL, TB_MODULE, args, files=files,
                                public=ports, opt=opt, timeout_s=timeout_s,
                                progress=progress, simulator=simulator)
    wave = None
    first = first_mismatch(result)
    if waves and first is not None:
        wave = _mismatch_waves(text, ports, args, files, first, simulator=simulator,
                               waves_dir=waves_dir, timeout_s=timeout_s, progress=progress)
    wall = result.get("run_wall_seconds") or 0.0
    result.update({
        "simulator": simulator, "waves": wave,
        "toplevel": HARNESS_TOPLEVEL, "passed": run["passed"], "failed": run["failed"],
        "failures": run["failures"], "build_seconds": run["build_seconds"],
        "sim_seconds": run["sim_seconds"], "results_xml": run["results_xml"],
        "log": run["log"], "golden": segments[0],
        "words_per_second": result["words_compared"] / wall if wall > 0 else None,
        "cycles_per_second": result["cycles"] / wall if wall > 0 else None,
    })
    return result


def first_mismatch(result):
    """The earliest reported mismatch of a cross-check result (by load, step, pass, transfer),
    or None."""
    reports = [e["first_mismatches"][0] for e in result.get("engines", [])
               if e.get("first_mismatches")]
    if not reports:
        return None
    return min(reports, key=lambda r: (r["load"], r["step"], r["pass"], r["cycle"]))


def _mismatch_waves(text, ports, args, files, first, *, simulator, waves_dir, timeout_s,
                    progress):
    """Rerun on a traced model with the waveform window on the step of ``first``."""
    from .engine_harness import HARNESS_TOPLEVEL
    from .waves import rerun_with_waves

    load, step = first["load"], first["step"]
    if progress:
        progress(f"mismatch in load {load} step {step}: rerunning with waveforms")
    key = (load << 32) | step
    doc = rerun_with_waves(text, HARNESS_TOPLEVEL, TB_MODULE, args, key="{cur_load, cur_step}",
                           key_bits=40, lo=key, hi=key, files=files, public=ports,
                           name=f"{HARNESS_TOPLEVEL}-load{load}-step{step}.fst",
                           simulator=simulator, waves_dir=waves_dir, timeout_s=timeout_s)
    return {**doc, "load": load, "step": step}
