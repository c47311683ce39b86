"""The two error types a user can cause; the CLI turns only these into one-line exit-2 errors.

Anything else raised while a command runs is a bug in zohw and keeps its traceback.
"""

__all__ = ["ConfigError", "UsageError"]


class ConfigError(ValueError, TypeError):
    """An invalid configuration value: names the parameter, the bad value and what is allowed.

    It is a :class:`ValueError` and a :class:`TypeError` so that callers that caught either
    before the configuration objects had their own error type keep working.
    """


class UsageError(ValueError):
    """Bad command-line usage (an option's text, a missing or conflicting option, an output
    path that cannot be written)."""
