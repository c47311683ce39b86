"""Run a grid: split its points into tasks, take what the cache has, compute the rest on an
executor (caching each result the moment it arrives), and assemble one row per point."""

import os
import platform
import sys
import time

from zohw.cache import cache_root, read_json_entry, write_json_entry
from .grid import expand
from .report import ROW_METRICS  # noqa: F401  (re-exported: the row contract)
from .tasks import (EVALUATORS, power_task, synth_task, task_key, task_weight, tool_versions,
                    train_task)

__all__ = ["default_cache_dir", "plan", "explore", "ROW_METRICS"]

def default_cache_dir():
    """``explore/`` in zohw's cache (:func:`zohw.cache.cache_root`)."""
    return cache_root() / "explore"


def plan(grid):
    """``(points, skipped, tasks_of)``: the points of the grid, the engines skipped and, per
    point, its tasks (synthesis on its target, power, one training per seed; tasks shared by
    points, e.g. the power of one engine on several targets, are computed once)."""
    points, skipped = expand(grid)
    tasks_of = []
    for p in points:
        mine = [synth_task(p.synth_engine, p.target), power_task(p.engine)]
        mine += [train_task(p.engine, seed, grid.steps, grid.trainer) for seed in grid.seeds]
        tasks_of.append(mine)
    return points, skipped, tasks_of


def _path(cache_dir, kind, key):
    return cache_dir / kind / f"{key}.json"


def explore(grid, executor, *, cache_dir=None, use_cache=True, progress=True,
            evaluators=None, log=None):
    """Evaluate ``grid`` on ``executor``; returns the report dict (``rows``, …).

    ``evaluators`` (``{kind: "module:function"}``) replaces the functions computing a kind of
    task (tests); it is part of the cache key. ``log(text)`` receives one progress note per
    finished task when there is no progress bar."""
    from .report import build_report

    t0 = time.monotonic()
    evaluators = {**EVALUATORS, **(evaluators or {})}
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    points, skipped, tasks_of = plan(grid)
    kinds = sorted({t["kind"] for ts in tasks_of for t in ts})
    versions = tool_versions(kinds, evaluators)
    keys_of = [[task_key(t, versions, evaluators[t["kind"]]) for t in ts] for ts in tasks_of]
    todo, results = {}, {}
    for ts, keys in zip(tasks_of, keys_of):
        for t, k in zip(ts, keys):
            if k in results or k in todo:
                continue
            hit = read_json_entry(_path(cache_dir, t["kind"], k)) if use_cache else None
            if hit is not None:
                results[k] = hit
            else:
                todo[k] = t
    n_cached = len(results)
    waiting = [set(k for k in keys if k not in results) for keys in keys_of]
    done_points = sum(1 for w in waiting if not w)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(points), initial=done_points, unit="point", desc="explore",
                   dynamic_ncols=True, file=sys.stderr)
        bar.set_postfix_str(f"tasks {n_cached}/{n_cached + len(todo)}")
    order = sorted(todo, key=lambda k: -task_weight(todo[k]))
    items = [(k, todo[k], evaluators[todo[k]["kind"]]) for k in order]
    seconds = cpu = 0.0
    try:
        for key, outcome in executor.run(items):
            task = todo[key]
            entry = {"task": task, "result": outcome["result"], "seconds": outcome["seconds"],
                     "cpu_seconds": outcome.get("cpu_seconds")}
            if use_cache:
                write_json_entry(_path(cache_dir, task["kind"], key), entry)
            results[key] = entry
            seconds += outcome["seconds"]
            cpu += outcome.get("cpu_seconds") or 0.0
            finished = 0
            for w in waiting:
                if key in w:
                    w.discard(key)
                    finished += not w
            what = _describe(task)
            if bar is not None:
                bar.set_postfix_str(f"tasks {len(results)}/{n_cached + len(todo)} {what}")
                bar.update(finished)
            elif log is not None:
                log(f"{len(results)}/{n_cached + len(todo)} {what}")
    finally:
        if bar is not None:
            bar.close()
        executor.close()
    report = build_report(grid, points, skipped, [[results[k]["result"] for k in keys]
                                                  for keys in keys_of])
    report.update({
        "tools": {**{k: v for kind in versions.values() for k, v in kind.items()},
                  "python": platform.python_version()},
        "tasks": {"total": n_cached + len(todo), "computed": len(todo), "cached": n_cached,
                  "task_seconds": round(seconds, 1), "task_cpu_seconds": round(cpu, 1)},
        "executor": executor.description,
        "wall_seconds": round(time.monotonic() - t0, 1),
        "machine": {"cpus": os.cpu_count()},
    })
    return report


def _describe(task):
    text = task["engine"]["strategy"] + f" P={task['engine']['lanes']}"
    if task["kind"] == "synth":
        return f"{text} {task['target']}"
    if task["kind"] == "train":
        return f"{text} seed {task['seed']}"
    return f"{text} power"
