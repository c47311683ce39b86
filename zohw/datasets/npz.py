"""A user data set in a ``.npz`` file (``--dataset PATH.npz``).

Arrays: ``x`` — integers ≥ 0, shape [samples, features]; ``y`` — integer labels 0…C−1, shape
[samples], every class present, at least 2 classes; optional ``x_test`` / ``y_test`` (both or
neither; otherwise the fixed stratified split applies); optional scalar ``x_max`` — the full
scale of the quantisation (≥ every value of x; default the observed maximum). Floating-point
arrays are accepted when every value is a whole number. The file is read with
``allow_pickle=False``; anything else is a :class:`DatasetError` naming the file, the array and
the problem.
"""

import zipfile
from pathlib import Path

import numpy as np

from .base import MAX_CLASSES, MAX_FEATURES, MAX_SAMPLES, MAX_VALUE, DatasetError, Raw

__all__ = ["load_npz", "ARRAYS"]

#: The arrays a data set file may hold: name → what it is.
ARRAYS = {
    "x": "features, integers >= 0, shape [samples, features]",
    "y": "labels 0..C-1, shape [samples]",
    "x_test": "optional test features, shape [test samples, features]",
    "y_test": "optional test labels, shape [test samples]",
    "x_max": "optional scalar: the full scale of the quantisation (default: observed maximum)",
}


def _where(path, name=None):
    return f"{path}: array {name!r}" if name else f"{path}"


def _first(mask):
    """The index (tuple) of the first True of ``mask``, printed like [i, j]."""
    idx = np.argwhere(mask)[0]
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _integers(path, name, a, lo=0, hi=MAX_VALUE):
    """``a`` as int64 after checking: numeric, no NaN/inf, whole numbers, lo ≤ value ≤ hi."""
    w = _where(path, name)
    if a.dtype.kind not in "biuf":
        raise DatasetError(f"{w} must hold numbers, not dtype {a.dtype}")
    if a.dtype.kind == "f":
        bad = np.isnan(a)
        if bad.any():
            raise DatasetError(f"{w} contains NaN (first at {_first(bad)})")
        bad = ~np.isfinite(a)
        if bad.any():
            raise DatasetError(f"{w} contains an infinite value (first at {_first(bad)})")
        bad = a != np.floor(a)
        if bad.any():
            raise DatasetError(f"{w} must hold integers, not {a[tuple(np.argwhere(bad)[0])]!r} "
                               f"(at {_first(bad)})")
    if a.size:
        bad = a < lo
        if bad.any():
            raise DatasetError(f"{w} must be >= {lo}, not {a[tuple(np.argwhere(bad)[0])].item()!r} "
                               f"(at {_first(bad)})")
        bad = a > hi
        if bad.any():
            raise DatasetError(f"{w} must be <= {hi}, not {a[tuple(np.argwhere(bad)[0])].item()!r} "
                               f"(at {_first(bad)})")
    return a.astype(np.int64)


def _read(path):
    """{name: ndarray} of the file (allow_pickle=False), or DatasetError."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{path}: no such file")
    if not p.is_file():
        raise DatasetError(f"{path}: not a file")
    if not zipfile.is_zipfile(p):
        raise DatasetError(f"{path}: not a .npz archive (not a zip file); write it with "
                           "numpy.savez(path, x=..., y=...)")
    arrays = {}
    try:
        with np.load(p, allow_pickle=False) as f:
            names = list(f.files)
            for name in names:
                if name not in ARRAYS:
                    raise DatasetError(f"{_where(path, name)} is not a data set array "
                                       f"(allowed: {', '.join(ARRAYS)})")
                try:
                    arrays[name] = f[name]
                except ValueError as e:
                    if "pickle" in str(e).lower() or "object" in str(e).lower():
                        raise DatasetError(f"{_where(path, name)} is an object (pickled) array; "
                                           "data sets are loaded with allow_pickle=False, save "
                                           "numeric arrays") from None
                    raise DatasetError(f"{_where(path, name)} cannot be read: "
                                       f"{str(e).splitlines()[0]}") from None
                except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
                    raise DatasetError(f"{_where(path, name)} cannot be read: "
                                       f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
                                       ) from None
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{path}: cannot be read as .npz: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return arrays


def load_npz(path):
    """Read and validate a user data set file: a :class:`Raw` (no pooling: ``image_side`` None)."""
    arrays = _read(path)
    for name in ("x", "y"):
        if name not in arrays:
            raise DatasetError(f"{_where(path, name)} is missing (a data set file holds x "
                               "[samples, features] and y [samples]; x_test, y_test, x_max "
                               "optional)")
    if ("x_test" in arrays) != ("y_test" in arrays):
        have, miss = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise DatasetError(f"{_where(path, miss)} is missing ({have} is given: give both or "
                           "neither)")

    def matrix(name):
        a = arrays[name]
        if a.ndim != 2:
            raise DatasetError(f"{_where(path, name)} must have 2 dimensions [samples, features], "
                               f"not shape {tuple(a.shape)}")
        if a.shape[0] == 0:
            raise DatasetError(f"{_where(path, name)} is empty (0 samples)")
        if a.shape[1] == 0:
            raise DatasetError(f"{_where(path, name)} has 0 features")
        if a.shape[1] > MAX_FEATURES:
            raise DatasetError(f"{_where(path, name)} has {a.shape[1]} features, at most "
                               f"{MAX_FEATURES} allowed")
        if a.shape[0] > MAX_SAMPLES:
            raise DatasetError(f"{_where(path, name)} has {a.shape[0]} samples, at most "
                               f"{MAX_SAMPLES} allowed")
        return _integers(path, name, a)

    def labels(name, rows):
        a = arrays[name]
        if a.ndim != 1:
            raise DatasetError(f"{_where(path, name)} must have 1 dimension [samples], not shape "
                               f"{tuple(a.shape)}")
        if a.shape[0] != rows:
            xname = "x" if name == "y" else "x_test"
            raise DatasetError(f"{_where(path, name)} has {a.shape[0]} labels but {xname} has "
                               f"{rows} samples")
        return _integers(path, name, a, 0, MAX_CLASSES - 1)

    x = matrix("x")
    y = labels("y", x.shape[0])
    classes = int(y.max()) + 1
    if classes < 2:
        raise DatasetError(f"{_where(path, 'y')} has a single class (0): at least 2 classes "
                           "needed")
    counts = np.bincount(y, minlength=classes)
    if (counts == 0).any():
        c = int(np.argmax(counts == 0))
        raise DatasetError(f"{_where(path, 'y')} has no sample of class {c} (labels must be "
                           f"0..C-1 with every class present; here C = {classes})")
    x_test = y_test = None
    if "x_test" in arrays:
        x_test = matrix("x_test")
        if x_test.shape[1] != x.shape[1]:
            raise DatasetError(f"{_where(path, 'x_test')} has {x_test.shape[1]} features but x "
                               f"has {x.shape[1]}")
        y_test = labels("y_test", x_test.shape[0])
        if int(y_test.max()) >= classes:
            bad = y_test >= classes
            raise DatasetError(f"{_where(path, 'y_test')} has label {int(y_test[bad][0])} at "
                               f"{_first(bad)}, outside the train labels 0..{classes - 1}")
    elif counts.min() < 2:
        c = int(np.argmin(counts))
        raise DatasetError(f"{_where(path, 'y')}: class {c} has 1 sample; the split needs at "
                           "least 2 per class (or give x_test and y_test)")
    observed = int(max(x.max(), x_test.max() if x_test is not None else 0))
    max_value = None
    if "x_max" in arrays:
        a = arrays["x_max"]
        if a.ndim != 0:
            raise DatasetError(f"{_where(path, 'x_max')} must be a scalar, not shape "
                               f"{tuple(a.shape)}")
        max_value = int(_integers(path, "x_max", a, 1))
        if max_value < observed:
            raise DatasetError(f"{_where(path, 'x_max')} is {max_value}, below the largest value "
                               f"of the features ({observed})")
    elif observed == 0:
        raise DatasetError(f"{_where(path, 'x')} is all zero (nothing to learn; give x_max to "
                           "declare the full scale)")
    return Raw(x=x, y=y, x_test=x_test, y_test=y_test, max_value=max_value, image_side=None,
               where=str(path), classes=classes)
