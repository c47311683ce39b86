"""Plug-in discovery, written once: a plug-in is a module of a package that defines one
attribute (a strategy's ``STRATEGY``, a loss's ``LOSS``, a data set's ``SOURCE``); the registry
maps each plug-in's ``name`` to it. Strategies, losses and data sets use :func:`discover`."""

import importlib
import pkgutil

__all__ = ["discover"]


def discover(package, path, attr, cls, skip=("base",), order=lambda p: (p.name,)):
    """``{name: plug-in}`` for the modules of ``package`` (its ``__path__`` is ``path``) that
    define ``attr``, sorted by ``order``; modules named in ``skip`` or starting with ``_`` are
    not plug-ins. A plug-in that is not a ``cls`` or repeats a name is an error naming the
    module."""
    found = {}
    for info in sorted(pkgutil.iter_modules(path), key=lambda i: i.name):
        if info.name in skip or info.name.startswith("_"):
            continue
        plugin = getattr(importlib.import_module(f"{package}.{info.name}"), attr, None)
        if plugin is None:
            continue
        if not isinstance(plugin, cls) or plugin.name in found:
            raise RuntimeError(f"{package}.{info.name}: {attr} must be a {cls.__name__} with a "
                               f"new name")
        found[plugin.name] = plugin
    return dict(sorted(found.items(), key=lambda item: order(item[1])))
