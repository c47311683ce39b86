"""Data sets of the trainer: a registry of bundled sets (one module each, defining ``SOURCE``)
and user ``.npz`` files. ``docs/datasets.md`` documents the formats, the split and the
quantisation.

``load_dataset(spec, input_bits, input_pool)`` → :class:`Dataset` (cached);
``dataset_info(spec, input_pool)`` → :class:`DatasetInfo`; ``default_stride(n_train)``.
A spec is a registered name (:data:`DATASETS`) or a path ending in ``.npz``.
"""

import math
from pathlib import Path

import numpy as np
import torch

from zohw.registry import discover

from .base import (MAX_VALUE, TEST_EVERY, Dataset, DatasetError, DatasetInfo, Raw, Source,
                   check_input_bits, check_input_pool, pool_images, quantize, stratified_split)
from .npz import load_npz

__all__ = ["REGISTRY", "DATASETS", "load_dataset", "dataset_info", "default_stride",
           "Dataset", "DatasetInfo", "DatasetError", "Raw", "Source", "TEST_EVERY",
           "NPZ_SUFFIX", "describe_specs"]

#: A spec ending with this is a user data set file.
NPZ_SUFFIX = ".npz"


def _discover():
    return discover(__name__, __path__, "SOURCE", Source, skip=("base", "npz"),
                    order=lambda s: (s.order, s.name))

#: name → :class:`Source` of every bundled data set.
REGISTRY = _discover()
#: The registered names.
DATASETS = tuple(REGISTRY)


def describe_specs():
    """One phrase naming what ``--dataset`` accepts."""
    return f"{', '.join(DATASETS)} or a path ending in {NPZ_SUFFIX}"


def _check_spec(spec):
    if not isinstance(spec, (str, Path)) or not str(spec):
        raise DatasetError(f"dataset must be {describe_specs()}, not {spec!r}")
    spec = str(spec)
    if spec in REGISTRY or spec.endswith(NPZ_SUFFIX):
        return spec
    raise DatasetError(f"dataset must be {describe_specs()}, not {spec!r}")


_RAW = {}


def _raw(spec):
    """The validated :class:`Raw` of ``spec`` (cached; a file by path, size and mtime)."""
    if spec in REGISTRY:
        key = spec
    else:
        p = Path(spec)
        try:
            st = p.stat()
            key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        except OSError:
            key = None          # load_npz reports it
    if key is not None and key in _RAW:
        return _RAW[key]
    raw = REGISTRY[spec].load() if spec in REGISTRY else load_npz(spec)
    if key is not None:
        _RAW[key] = raw
    return raw


def _prepared(spec, input_pool):
    """(x_train, y_train, x_test, y_test, max_value, classes) as int64 numpy, pooled."""
    raw = _raw(spec)
    if raw.x_test is None:
        test = stratified_split(raw.y)
        x_tr, y_tr, x_te, y_te = raw.x[~test], raw.y[~test], raw.x[test], raw.y[test]
    else:
        x_tr, y_tr, x_te, y_te = raw.x, raw.y, raw.x_test, raw.y_test
    k = input_pool
    x_tr = pool_images(x_tr, raw.image_side, k, raw.where)
    x_te = pool_images(x_te, raw.image_side, k, raw.where)
    base = raw.max_value if raw.max_value is not None else int(max(raw.x.max(), 0 if raw.x_test
                                                                   is None else raw.x_test.max()))
    max_value = base * k * k
    if max_value > MAX_VALUE:
        raise DatasetError(f"{raw.where}: input_pool {k} makes the full scale {max_value}, more "
                           f"than {MAX_VALUE}")
    classes = raw.classes if raw.classes is not None else int(raw.y.max()) + 1
    return x_tr, y_tr, x_te, y_te, max_value, classes


_DATA = {}
_INFO = {}


def _name(spec):
    return spec if spec in REGISTRY else str(spec)


def load_dataset(spec="digits", input_bits=4, input_pool=1):
    """The data set ``spec`` split, pooled (k×k block sums) and quantised to ``input_bits``
    codes, with the bias input as the last column: a :class:`Dataset` (cached)."""
    spec = _check_spec(spec)
    check_input_bits(input_bits)
    check_input_pool(input_pool)
    key = (spec, input_bits, input_pool)
    raw = _raw(spec)           # validates (and keeps the file cache key current)
    cached = _DATA.get(key)
    if cached is not None and cached[0] is raw:
        return cached[1]
    x_tr, y_tr, x_te, y_te, max_value, classes = _prepared(spec, input_pool)
    full = (1 << input_bits) - 1

    def inputs(x):
        codes = quantize(x, input_bits, max_value)
        return torch.cat([codes, torch.full((codes.shape[0], 1), full, dtype=torch.int64)], 1)

    data = Dataset(inputs(x_tr).contiguous(), torch.as_tensor(y_tr, dtype=torch.int64),
                   inputs(x_te).contiguous(), torch.as_tensor(y_te, dtype=torch.int64),
                   input_bits, name=_name(spec), n_classes=classes, input_pool=input_pool,
                   max_value=max_value)
    _DATA[key] = (raw, data)
    return data


def dataset_info(spec="digits", input_pool=1):
    """The shape of data set ``spec`` after pooling: :class:`DatasetInfo` (cached)."""
    spec = _check_spec(spec)
    check_input_pool(input_pool)
    raw = _raw(spec)
    key = (spec, input_pool)
    cached = _INFO.get(key)
    if cached is not None and cached[0] is raw:
        return cached[1]
    x_tr, y_tr, x_te, y_te, max_value, classes = _prepared(spec, input_pool)
    info = DatasetInfo(_name(spec), int(x_tr.shape[1]), classes, int(x_tr.shape[0]),
                       int(x_te.shape[0]), max_value)
    _INFO[key] = (raw, info)
    return info


_PHI = (1 + math.sqrt(5)) / 2


def _is_prime(n):
    if n < 2:
        return False
    return all(n % p for p in range(2, math.isqrt(n) + 1))


def default_stride(n_train):
    """The default sample-memory stride: the prime nearest ``n_train/φ`` (ties: the smaller)
    that is below ``n_train`` and does not divide it — hence coprime with ``n_train`` — or 1 when
    there is none (n_train ≤ 2). Digits (1 433): 887. Successive draws ``(n·stride) mod N``
    then spread over the train set like the golden-ratio sequence."""
    if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1:
        raise DatasetError(f"n_train must be a positive integer, not {n_train!r}")
    target = n_train / _PHI
    lo, hi = math.floor(target), math.floor(target) + 1     # search outward from n/φ
    while lo >= 2 or hi < n_train:
        cands = [p for p in (lo, hi) if 2 <= p < n_train and _is_prime(p) and n_train % p]
        if cands:
            return min(cands, key=lambda p: (abs(p - target), p))
        lo, hi = lo - 1, hi + 1
    return 1
