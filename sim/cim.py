"""Host side of the CIM macro cross-check: test data, the golden results, and a run of
:mod:`zohw.sim.tb_cim` on the macro's Verilog (built and cached by :mod:`zohw.sim.build`).
"""

import random
import time

from .build import DEFAULT_SIMULATOR
from .host import run_testbench

__all__ = ["CIM_TOPLEVEL", "TB_MODULE", "CIM_OPT", "random_phases", "expected_phases",
           "cim_cosim"]

CIM_TOPLEVEL = "zohw_cim"
TB_MODULE = "zohw.sim.tb_cim"
#: C++ optimisation level of the CIM macro's model: its testbench runs Python every cycle, so
#: an optimised model gains little and costs build time (docs/cosim.md).
CIM_OPT = "-O0"


def random_phases(cfg, *, vectors, phases=2, seed=0, change=0.1):
    """Test data: ``phases`` weight matrices (each later one changes a fraction ``change`` of
    the weights of the one before) with ``vectors`` input vectors each. Weights are uniform over
    the full range with the extremes forced in; the first vectors of phase 0 are all-zero and
    all-maximum inputs."""
    rng = random.Random(seed)
    w = [[rng.randint(cfg.weight_min, cfg.weight_max) for _ in range(cfg.cols)]
         for _ in range(cfg.rows)]
    w[0][0], w[-1][-1] = cfg.weight_min, cfg.weight_max
    out = []
    for p in range(phases):
        if p:
            w = [row[:] for row in w]
            for r in range(cfg.rows):
                for c in range(cfg.cols):
                    if rng.random() < change:
                        w[r][c] = rng.randint(cfg.weight_min, cfg.weight_max)
        xs = [[rng.randint(0, cfg.input_max) for _ in range(cfg.rows)] for _ in range(vectors)]
        if p == 0 and vectors >= 2:
            xs[0] = [0] * cfg.rows
            xs[1] = [cfg.input_max] * cfg.rows
        out.append({"weights": w, "inputs": xs})
    return out


def cim_cosim(cfg, *, vectors=24, phases=2, seed=0, backpressure=0.3, input_gaps=0.3,
              golden_config=None, golden_offset_delta=0, data=None, timeout_s=600,
              progress=None, macro=None, opt=CIM_OPT, simulator=DEFAULT_SIMULATOR):
    """Generate the Verilog of ``macro`` (default: the behavioural macro for ``cfg``), build it
    (cached) and run :func:`zohw.sim.tb_cim.cim_cross_check` on it. Returns the testbench's
    result dict with the run's facts (``passed``, ``failed``, ``failures``, ``build_seconds``,
    ``sim_seconds``, …) under ``"run"``.

    ``macro`` may be any component with signature ``CIMSignature(cfg)`` and the properties
    ``cycles_per_vector`` and ``read_latency``; whatever it is, it is checked against the golden
    model of ``cfg``. ``opt`` is the C++ optimisation level of the model; ``simulator`` is
    ``"verilator"`` or ``"icarus"`` (:data:`zohw.sim.build.SIMULATORS`)."""
    from zohw.hw.cim import BehaviouralCIMMacro, macro_verilog
    from zohw.hw.verilog import ports

    if macro is None:
        macro = BehaviouralCIMMacro(cfg)
    data = data if data is not None else random_phases(cfg, vectors=vectors, phases=phases,
                                                       seed=seed)
    expected = expected_phases(cfg, data, golden_config=golden_config,
                               golden_offset_delta=golden_offset_delta)
    data = [{**ph, "expected": e} for ph, e in zip(data, expected)]
    t0 = time.monotonic()
    text = macro_verilog(macro, CIM_TOPLEVEL)        # == cim_verilog(cfg, CIM_TOPLEVEL)
    verilog_seconds = time.monotonic() - t0
    args = {"config": cfg.as_dict(), "cycles_per_vector": macro.cycles_per_vector,
            "read_latency": macro.read_latency, "rng_seed": seed,
            "backpressure": backpressure, "input_gaps": input_gaps}
    result, run = run_testbench(text, CIM_TOPLEVEL, TB_MODULE, args, data={"phases": data},
                                public=[name for name, _, _ in ports(macro)], opt=opt,
                                timeout_s=timeout_s, progress=progress, simulator=simulator)
    result["run"] = run
    result["verilog_seconds"] = verilog_seconds
    return result


def expected_phases(cfg, phases, *, golden_config=None, golden_offset_delta=0):
    """Golden results of every phase (host side): a list of ``[vectors][cols]`` lists.

    ``golden_config`` (field overrides) and ``golden_offset_delta`` (added to the weight offset
    of the cell encoding) exist to prove that the check fails when the golden model is wrong.
    """
    import torch

    from zohw.cim_config import CIMConfig
    from zohw.sw.cim import cim_matvec

    gcfg = CIMConfig.from_dict({**cfg.as_dict(), **(golden_config or {})}) \
        if golden_config else cfg
    out = []
    for ph in phases:
        w = torch.tensor(ph["weights"], dtype=torch.int64)
        x = torch.tensor(ph["inputs"], dtype=torch.int64).reshape(-1, cfg.rows)
        y = cim_matvec(gcfg, w, x)
        if golden_offset_delta:
            # the offset correction done with 2**(weight_bits-1) + delta
            y = y - golden_offset_delta * x.sum(dim=1, keepdim=True)
        out.append(y.tolist())
    return out
