"""Validation shared by the configuration objects: errors name the parameter, the bad value and
what is allowed (``"lanes must be an integer from 1 to 64, not 0"``)."""

from .errors import ConfigError

__all__ = ["integer", "choice", "range_text"]


def range_text(lo=None, hi=None):
    """``"from 1 to 64"``, ``"at least 1"``, ``"at most 64"`` or ``""``."""
    if lo is not None and hi is not None:
        return f"from {lo} to {hi}"
    if lo is not None:
        return f"at least {lo}"
    if hi is not None:
        return f"at most {hi}"
    return ""


def integer(name, value, lo=None, hi=None, allowed=None):
    """``value`` if it is an int (not a bool) within ``[lo, hi]`` and in ``allowed``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, not {value!r}")
    if allowed is not None and value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}, not {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{name} must be an integer {range_text(lo, hi)}, not {value!r}")
    return value


def choice(name, value, allowed):
    """``value`` if it is one of the strings ``allowed``."""
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, not {value!r}")
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value
