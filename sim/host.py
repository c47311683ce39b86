"""Host side of every testbench: build the model (cached), hand the testbench its arguments,
simulate, and read its result.

:func:`run_testbench` makes a fresh run directory under ``$ZOHW_CACHE/runs``, writes
``args.json`` (small arguments) and ``data.json`` (bulk data: golden streams, samples)
atomically, runs the cocotb test module on the model built by :func:`zohw.sim.build.build`
and reads ``result.json``, which the testbench writes atomically whether it passed or not
(:func:`zohw.sim.kit.run_recorded`). Every failure to produce a result — a failed build, a
crashed simulator, a testbench that wrote nothing — is a :class:`SimulationError`.
"""

import json

from zohw.io import run_directory, write_json_atomic

from .build import DEFAULT_OPT, DEFAULT_SIMULATOR, SimulationError, build, simulate, tail
from .kit import ARGS_ENV, DATA_ENV, RESULT_ENV

__all__ = ["SimulationError", "run_testbench", "run_cocotb"]


def run_cocotb(verilog, toplevel, test_module, *, extra_env=None, public="all",
               opt=DEFAULT_OPT, timeout_s=None, progress=None, run_dir=None,
               simulator=DEFAULT_SIMULATOR, trace=False, plusargs=(), timing=False) -> dict:
    """Build ``verilog`` for ``simulator`` (cached) and run the cocotb tests of
    ``test_module`` on it.

    Returns ``{"passed", "failed", "failures", "results_xml", "log", "build_seconds",
    "sim_seconds", "build_dir", "simulator"}``; ``failures`` lists ``(test name, message)``.
    A failing cocotb test is a result, not an exception; a failed build or a simulator that
    produces no results raises :class:`SimulationError`. ``trace`` builds a model that can
    write waveforms; ``plusargs`` go to the simulator (:mod:`zohw.sim.waves`); ``timing``: the
    Verilog has delays (:func:`zohw.sim.build.build`).
    """
    model = build(verilog, toplevel, public=public, opt=opt, timeout_s=timeout_s,
                  progress=progress, simulator=simulator, trace=trace, timing=timing)
    if progress:
        progress(f"simulating ({model.simulator})")
    if run_dir is None:
        run_dir = run_directory(model.directory.name)
    run = simulate(model, test_module, run_dir=run_dir, extra_env=extra_env,
                   timeout_s=timeout_s, plusargs=plusargs)
    return {**run, "build_seconds": model.build_seconds, "build_dir": str(model.directory)}


def run_testbench(verilog, toplevel, test_module, args, *, data=None, files=None,
                  public="all", opt=DEFAULT_OPT, timeout_s=None, progress=None,
                  simulator=DEFAULT_SIMULATOR, trace=False, plusargs=(), run_dir=None,
                  timing=False):
    """Run the testbench ``test_module`` on ``verilog`` with ``args`` (and bulk ``data``).

    ``files`` maps file names to bytes written into the run directory — the simulator's
    working directory — before it starts (e.g. memory images read by ``$readmemh``); they are
    deleted afterwards. ``simulator``, ``trace``, ``plusargs`` and ``timing`` as in
    :func:`run_cocotb`;
    ``run_dir`` (default: a fresh run directory) is where it runs.

    Returns ``(result, run)``: the testbench's result document and the run's facts
    (:func:`run_cocotb`'s dict). Raises :class:`SimulationError` when there is no result
    document, with the cocotb failures and the tail of the simulator's log.
    """
    run_dir = run_directory("tb") if run_dir is None else run_dir
    args_path, data_path, result_path = (run_dir / n for n in ("args.json", "data.json",
                                                               "result.json"))
    write_json_atomic(args_path, args, indent=None)
    env = {ARGS_ENV: str(args_path), RESULT_ENV: str(result_path)}
    if data is not None:
        write_json_atomic(data_path, data, indent=None, sort_keys=False)
        env[DATA_ENV] = str(data_path)
    extra = [run_dir / name for name in (files or {})]
    for path, content in zip(extra, (files or {}).values()):
        path.write_bytes(content)
    try:
        run = run_cocotb(verilog, toplevel, test_module, extra_env=env, public=public, opt=opt,
                         timeout_s=timeout_s, progress=progress, run_dir=run_dir,
                         simulator=simulator, trace=trace, plusargs=plusargs, timing=timing)
        try:
            result = json.loads(result_path.read_text())
        except (OSError, ValueError) as exc:
            raise SimulationError(f"the testbench {test_module} wrote no result ({exc}); "
                                  f"cocotb: {run['failures']}\n{tail(run['log'])}") from None
    finally:
        for path in (data_path, *extra):       # bulk data: not worth keeping for a day
            path.unlink(missing_ok=True)
    return result, run
