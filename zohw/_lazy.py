"""``torch`` imported on first use: the CLI builds its options from the strategy registry, and
importing torch (1–2 s of CPU) only to print ``--help`` or reject a bad option made every command
start slowly. Modules that need torch at call time write ``from zohw._lazy import torch``."""

import importlib

__all__ = ["torch"]


class _LazyModule:
    def __init__(self, name):
        self._name = name
        self._module = None

    def __getattr__(self, attr):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


torch = _LazyModule("torch")
