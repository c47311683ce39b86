"""The one cache directory of zohw: ``$ZOHW_CACHE`` if set, else ``~/.cache/zohw``.

Verilator builds, simulation runs, trainer Verilog and synthesis results live in subdirectories
of it (``verilator/``, ``runs/``, ``trainer-verilog/``, ``synth/``).
"""

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    """``$ZOHW_CACHE`` if set, else ``~/.cache/zohw``."""
    env = os.environ.get("ZOHW_CACHE")
    return Path(env).expanduser().resolve() if env else Path.home() / ".cache" / "zohw"
