"""Loss plug-ins: one module per loss, each defining ``LOSS`` (a :class:`~.base.Loss`).

Adding a loss is adding one module here; :data:`REGISTRY` finds it. The trainer configuration's
``loss`` choices, the CLI's choices and help, the loss unit, the golden model, the float
references and the tests all derive from the registry.
"""

import importlib
import pkgutil

from .base import Loss

__all__ = ["Loss", "REGISTRY", "LOSSES", "get"]


def _discover():
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name == "base":
            continue
        loss = importlib.import_module(f"{__name__}.{info.name}").LOSS
        if not isinstance(loss, Loss) or loss.name in found:
            raise RuntimeError(f"zohw.losses.{info.name}: LOSS must be a Loss with a new name")
        found[loss.name] = loss
    return found


#: name → loss object, in name order.
REGISTRY = _discover()
#: The registered names.
LOSSES = tuple(REGISTRY)


def get(name):
    """The loss called ``name`` (KeyError naming the registered ones otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"loss must be one of {', '.join(LOSSES)}, not {name!r}") from None
