"""Validation shared by the configuration objects: errors name the parameter, the bad value and
what is allowed (``"lanes must be an integer from 1 to 64, not 0"``)."""

__all__ = ["integer", "choice"]


def integer(name, value, lo=None, hi=None, allowed=None):
    """``value`` if it is an int (not a bool) within ``[lo, hi]`` and in ``allowed``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if allowed is not None and value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, not {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            rng = f"from {lo} to {hi}"
        elif lo is not None:
            rng = f"at least {lo}"
        else:
            rng = f"at most {hi}"
        raise ValueError(f"{name} must be an integer {rng}, not {value!r}")
    return value


def choice(name, value, allowed):
    """``value`` if it is one of the strings ``allowed``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {value!r}")
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value
