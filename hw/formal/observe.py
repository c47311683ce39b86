"""Formal harnesses observe a component through its ports and, where an invariant needs it, the
registers inside it: :func:`elaborated` elaborates the component once and names the signals it
drives, so a harness can assert on them without any change to the design."""

from contextlib import contextmanager

from amaranth.hdl import Fragment

__all__ = ["elaborated", "patched"]


def elaborated(component, platform=None):
    """``(fragment, signals)``: the component's fragment (add it as the submodule instead of
    the component) and a dict name → signal of the signals its statements drive, those of a
    submodule as ``"submodule.name"``."""
    fragment = Fragment.get(component, platform)
    signals = {}

    def walk(frag, prefix):
        for stmts in frag.statements.values():
            for stmt in stmts:
                for sig in stmt._lhs_signals():
                    signals.setdefault(prefix + sig.name, sig)
        for sub, name, *_ in frag.subfragments:
            walk(sub, f"{prefix}{name}.")

    walk(fragment, "")
    return fragment, signals


@contextmanager
def patched(module, name, value):
    """Replace ``module.name`` by ``value`` while a planted-bug twin is elaborated."""
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)
