"""``zohw explore --scheduler``: a real Dask distributed cluster on this machine — a ``dask
scheduler`` and two ``dask worker`` processes started here — computes the same rows as the
local process pool, with the real tasks (synthesis, power proxy, golden training) of a tiny
grid."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
GRID = ["--rng", "rademacher,pezo-otf", "--lanes", "4", "--target", "ice40", "--seeds", "1",
        "--steps", "30", "--quiet"]


@pytest.fixture
def cluster(tmp_path):
    """``tcp://127.0.0.1:PORT`` of a scheduler with two single-threaded workers; every process
    is killed at the end."""
    env = {**os.environ, "ZOHW_CACHE": str(tmp_path / "cache")}
    file = tmp_path / "scheduler.json"
    procs = []

    def start(*argv):
        log = open(tmp_path / f"dask-{len(procs)}.log", "w")
        procs.append(subprocess.Popen([str(BIN / "dask"), *argv], env=env, stdout=log,
                                      stderr=subprocess.STDOUT, cwd=tmp_path))
    try:
        start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(file))
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        for _ in range(2):
            start("worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                  "--memory-limit", "0")
        from distributed import Client
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(10)


def _cli(argv, env):
    return subprocess.run([sys.executable, "-c", _MAIN, *argv], env=env, capture_output=True,
                          text=True, timeout=300)


#: ``zohw`` with the explore subcommand (while zohw/commands does not register it yet).
_MAIN = ("import sys; from zohw import cli\n"
         "if 'explore' not in cli.COMMANDS: cli.COMMANDS = (*cli.COMMANDS, 'explore')\n"
         "sys.exit(cli.main(sys.argv[1:]))")


def test_cluster_rows_equal_local_rows(cluster, tmp_path):
    # One zohw cache for the workers and the client (as on a shared file system); each run
    # has its own explore cache, so that each computes every task.
    env = {**os.environ, "ZOHW_CACHE": str(tmp_path / "cache")}
    remote = _cli(["explore", *GRID, "--json", str(tmp_path / "dask.json"),
                   "--cache-dir", str(tmp_path / "dask-explore"), "--scheduler", cluster], env)
    assert remote.returncode == 0, remote.stderr
    # the client does not synthesize: the synthesis results come from the workers
    assert list((tmp_path / "cache" / "synth").glob("*.json"))
    local = _cli(["explore", *GRID, "--json", str(tmp_path / "local.json"),
                  "--cache-dir", str(tmp_path / "local-explore")], env)
    assert local.returncode == 0, local.stderr
    a = json.loads((tmp_path / "local.json").read_text())
    b = json.loads((tmp_path / "dask.json").read_text())
    assert "local processes" in a["executor"]
    assert b["executor"] == f"the Dask cluster at {cluster} (2 workers)"
    # every task of the cluster run was computed there (its explore cache started empty)
    assert b["tasks"]["computed"] == b["tasks"]["total"] == 2 * (1 + 1 + 1)
    assert len(a["rows"]) == 2
    assert a["rows"] == b["rows"]
    for r in b["rows"]:
        assert r["lut"] > 0 and r["ff"] >= 32 and r["power"] > 0 and r["ge"] > 0
        assert 0 <= r["test_accuracy"] <= 1
    assert str(tmp_path / "dask.json") in remote.stdout.strip().splitlines()[-1]
