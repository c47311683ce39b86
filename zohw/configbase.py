"""One base for zohw's configuration objects (engine, CIM macro, trainer).

A configuration is a frozen dataclass deriving from :class:`Config` whose fields are declared
with :func:`param`: the default, the allowed values, the help text and whether the field is a
*run* field (seed, steps, …: not part of the hardware). From that one declaration come

* validation at construction (errors name the parameter, the bad value and what is allowed),
* derived defaults (``None`` → ``derive(config)``), recomputed by :meth:`Config.replace` unless
  the field was given explicitly,
* ``as_dict``/``from_dict`` (unknown keys rejected) and ``config_hash`` — the hardware identity,
  run fields excluded,
* the command-line options (:func:`add_options`, :func:`options_to_kwargs`) with help that shows
  the default and the range, never restated by hand.

Cross-field rules go in a ``_check`` method, which raises :class:`~zohw.errors.ConfigError`.
"""

import hashlib
import json
from dataclasses import MISSING, dataclass, field, fields

from .errors import ConfigError
from .validate import choice as _choice, integer as _integer, range_text

__all__ = ["Config", "Param", "param", "add_options", "options_to_kwargs", "ConfigError"]

_META_KEY = "zohw.param"


@dataclass(frozen=True)
class Param:
    """What :func:`param` records about a field (see there)."""

    help: str
    lo: object = None
    hi: object = None
    allowed: tuple | None = None
    choices: tuple | None = None
    derive: object = None
    run: bool = False
    nested: bool = False
    metavar: str | None = None
    flag: str | None = None
    optional: bool = False
    kind: type | None = None

    def bounds(self, config):
        """``(lo, hi)`` for ``config`` (bounds may be callables of the configuration)."""
        lo = self.lo(config) if callable(self.lo) else self.lo
        hi = self.hi(config) if callable(self.hi) else self.hi
        return lo, hi


def param(default, *, help, lo=None, hi=None, allowed=None, choices=None, derive=None,
          run=False, nested=False, metavar=None, flag=None, optional=False, kind=None):
    """A configuration field.

    ``lo``/``hi`` bound an integer (numbers, or callables of the configuration); ``allowed``
    lists the integers it may take; ``choices`` the strings. ``derive(config)`` computes the
    value when it is left ``None`` (fields are derived in declaration order, so a derivation may
    read any field declared before it). ``run=True`` marks a run field (not hardware: left out
    of :attr:`Config.config_hash`). ``nested=True`` marks a configuration object. ``optional``
    lets ``None`` stand. ``flag`` and ``metavar`` name the command-line option (default
    ``--name-with-dashes``). ``kind`` is the value type (default: ``str`` with ``choices``,
    the nested type, else ``int``); ``kind=tuple`` is a tuple of integers, each bounded by
    ``lo``/``hi`` (a list is accepted and stored as a tuple; on the command line
    ``32,16`` or ``none`` for the empty tuple).
    """
    if kind is None:
        kind = str if choices is not None else (type(default) if nested else int)
    meta = Param(help=help, lo=lo, hi=hi, allowed=None if allowed is None else tuple(allowed),
                 choices=None if choices is None else tuple(choices), derive=derive, run=run,
                 nested=nested, metavar=metavar, flag=flag, optional=optional, kind=kind)
    return field(default=default, metadata={_META_KEY: meta})


def _meta(f):
    return f.metadata.get(_META_KEY)


class Config:
    """Base of the configuration dataclasses (declare them ``@dataclass(frozen=True)``)."""

    # -- construction ------------------------------------------------------------------------

    def __post_init__(self):
        derived = []
        for f in fields(self):
            p = _meta(f)
            if p is None:
                continue
            if p.derive is not None and getattr(self, f.name) is None:
                object.__setattr__(self, f.name, p.derive(self))
                derived.append(f.name)
            if p.kind is tuple and isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))   # from JSON
            self._validate_field(f.name, p)
        # Not a field: which values were derived, so that replace() derives them again.
        object.__setattr__(self, "_derived_fields", frozenset(derived))
        self._check()

    def _validate_field(self, name, p):
        value = getattr(self, name)
        if value is None and p.optional:
            return
        if p.nested:
            if not isinstance(value, p.kind):
                raise ConfigError(f"{name} must be of type {p.kind.__name__}, not {value!r}")
        elif p.choices is not None:
            _choice(name, value, p.choices)
        elif p.kind is int:
            lo, hi = p.bounds(self)
            _integer(name, value, lo, hi, p.allowed)
        elif p.kind is tuple:
            lo, hi = p.bounds(self)
            if not isinstance(value, tuple) or any(
                    isinstance(v, bool) or not isinstance(v, int)
                    or (lo is not None and v < lo) or (hi is not None and v > hi)
                    for v in value):
                raise ConfigError(f"{name} must be a tuple of integers {range_text(lo, hi)}, "
                                  f"not {value!r}")
        elif p.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be true or false, not {value!r}")
        elif not isinstance(value, p.kind):
            raise ConfigError(f"{name} must be of type {p.kind.__name__}, not {value!r}")

    def _check(self):
        """Cross-field rules of a subclass (raise :class:`ConfigError`)."""

    # -- identity ----------------------------------------------------------------------------

    @classmethod
    def fields_meta(cls):
        """``{field name: Param}`` in declaration order."""
        return {f.name: _meta(f) for f in fields(cls) if _meta(f) is not None}

    def as_dict(self):
        """Every field; nested configurations as dicts."""
        return {f.name: _plain(getattr(self, f.name), hardware=False) for f in fields(self)}

    def hardware_dict(self):
        """The fields that fix the hardware (run fields left out, also in nested configs)."""
        return {f.name: _plain(getattr(self, f.name), hardware=True) for f in fields(self)
                if not (_meta(f) and _meta(f).run)}

    def run_dict(self):
        """The run fields (seed, steps, …) of this configuration (not of nested ones)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if _meta(f) and _meta(f).run}

    @property
    def config_hash(self):
        """16 hex digits naming the hardware configuration (run fields do not change it)."""
        text = json.dumps(self.hardware_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d):
        """The configuration a dict (as :meth:`as_dict` writes it) describes; unknown keys are
        an error, missing ones take their defaults."""
        if not isinstance(d, dict):
            raise ConfigError(f"a {cls.__name__} must be given as a mapping, not {d!r}")
        params = cls.fields_meta()
        names = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} keys: {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(names))})")
        kwargs = dict(d)
        for name, value in d.items():
            p = params.get(name)
            if p is not None and p.nested and isinstance(value, dict):
                kwargs[name] = p.kind.from_dict(value)
        return cls(**kwargs)

    def replace(self, **changes):
        """A copy with ``changes``; derived defaults not given explicitly are derived again."""
        names = {f.name for f in fields(self) if f.init}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown {type(self).__name__} fields: {', '.join(unknown)}")
        derived = getattr(self, "_derived_fields", frozenset())
        kwargs = {n: getattr(self, n) for n in names if n not in derived}
        kwargs.update(changes)
        return type(self)(**kwargs)

    # -- documentation -----------------------------------------------------------------------

    @classmethod
    def describe(cls, name):
        """The help text of field ``name`` with its allowed values and default."""
        p = cls.fields_meta()[name]
        default = {f.name: f.default for f in fields(cls)}[name]
        return f"{p.help} ({_allowed_text(p)}; default {_default_text(p, default)})"


def _plain(value, hardware):
    if isinstance(value, Config):
        return value.hardware_dict() if hardware else value.as_dict()
    return value


def _allowed_text(p):
    if p.choices is not None:
        return ", ".join(p.choices)
    if p.allowed is not None:
        return ", ".join(map(str, p.allowed))
    if p.kind in (int, tuple):
        text = range_text(None if callable(p.lo) else p.lo, None if callable(p.hi) else p.hi)
        text = f"an integer {text}" if text else "an integer"
        if p.kind is tuple:
            text = f"comma-separated, each {text}, or none"
        moving = [side for side, b in (("lower", p.lo), ("upper", p.hi)) if callable(b)]
        if moving:
            text += f", {' and '.join(moving)} bound set by other fields"
        return text
    return p.kind.__name__


def _default_text(p, default):
    if default is None and p.derive is not None:
        doc = (p.derive.__doc__ or "").strip()
        return f"derived: {doc}" if doc else "derived from the other fields"
    if default is MISSING:
        return "required"
    if p.kind is tuple:
        return ",".join(map(str, default)) or "none"
    return str(default)


# -- command line ------------------------------------------------------------------------------

def _flag(name, p, prefix):
    return p.flag or f"--{prefix}{name.replace('_', '-')}"


def _dest(name, prefix):
    return f"cfg_{prefix.replace('-', '_')}{name}"


def add_options(parser, cls, names=None, *, prefix="", exclude=()):
    """Add one ``--option`` per field of ``cls`` (``names``, or every non-nested field not in
    ``exclude``) to the argparse ``parser``. Values stay text until
    :func:`options_to_kwargs`, so that a bad value is reported like every other configuration
    error. Returns the names added."""
    params = cls.fields_meta()
    if names is None:
        names = [n for n, p in params.items() if not p.nested and n not in exclude]
    for name in names:
        p = params[name]
        parser.add_argument(_flag(name, p, prefix), dest=_dest(name, prefix), default=None,
                            metavar=p.metavar or name.upper(), help=cls.describe(name))
    return tuple(names)


def options_to_kwargs(args, cls, names=None, *, prefix=""):
    """``{field: value}`` for the options of ``cls`` given on the command line, each converted
    to its field's type (a non-integer for an integer field raises :class:`ConfigError`)."""
    params = cls.fields_meta()
    if names is None:
        names = [n for n, p in params.items() if not p.nested]
    out = {}
    for name in names:
        text = getattr(args, _dest(name, prefix), None)
        if text is None:
            continue
        p = params[name]
        if p.kind is int:
            try:
                out[name] = int(text, 10)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, not {text!r}") from None
        elif p.kind is tuple:
            out[name] = _int_tuple(name, text)
        else:
            out[name] = text
    return out


def _int_tuple(name, text):
    """``"32,16"`` → ``(32, 16)``; ``"none"`` → ``()`` (the values' ranges are the field's)."""
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(int(part, 10) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated integers (e.g. 32,16) or none, "
                          f"not {text!r}") from None
