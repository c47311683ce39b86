"""Loss plug-ins: one module per loss, each defining ``LOSS`` (a :class:`~.base.Loss`).

Adding a loss is adding one module here; :data:`REGISTRY` finds it. The trainer configuration's
``loss`` choices, the CLI's choices and help, the loss unit, the golden model, the float
references and the tests all derive from the registry.
"""


from zohw.registry import discover

from .base import Loss

__all__ = ["Loss", "REGISTRY", "LOSSES", "get"]


def _discover():
    return discover(__name__, __path__, "LOSS", Loss)

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
