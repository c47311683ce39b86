"""The parts every data set shares: the raw arrays a source returns, the split, the pooling,
the quantisation, and the :class:`Dataset` the trainer reads (``docs/datasets.md``)."""

from dataclasses import dataclass

import numpy as np
import torch

from zohw.errors import ConfigError

__all__ = ["DatasetError", "Raw", "Source", "Dataset", "DatasetInfo", "TEST_EVERY",
           "MAX_CLASSES", "MAX_FEATURES", "MAX_SAMPLES", "MAX_VALUE", "stratified_split",
           "pool_images", "quantize", "check_input_bits", "check_input_pool"]

#: The k-th sample of a class goes to the test set when k % TEST_EVERY == 0.
TEST_EVERY = 5
#: Bounds on what a data set may hold (a trainer that large would not fit anyway; the bounds
#: keep the integer arithmetic of the quantisation exact and a bad file from exhausting memory).
MAX_CLASSES = 256
MAX_FEATURES = 1 << 16
MAX_SAMPLES = 1 << 20
MAX_VALUE = (1 << 31) - 1


class DatasetError(ConfigError):
    """A data set that cannot be used: one line naming the file (or data set), the array and
    the problem."""


@dataclass(frozen=True)
class Raw:
    """What a source returns before split, pooling and quantisation.

    ``x`` int64 [n, features] (values ≥ 0), ``y`` int64 [n] (0…classes−1); ``x_test``/``y_test``
    the same or None (then :func:`stratified_split` applies); ``max_value`` the declared full
    scale or None (then the observed maximum); ``image_side`` the side of square images stored
    row-major (None: not images, no pooling); ``where`` names the file or data set in errors.
    """
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    max_value: int | None
    image_side: int | None
    where: str
    classes: int | None = None


@dataclass(frozen=True)
class Source:
    """A registered data set: ``load()`` → :class:`Raw` (bundled, nothing downloaded)."""
    name: str
    help: str
    load: object
    order: int = 0


@dataclass(frozen=True)
class DatasetInfo:
    """The shape of a data set after pooling (cheap: cached by :func:`zohw.datasets.dataset_info`).

    ``features`` excludes the bias input; ``max_value`` is the full scale the quantisation
    divides by (declared or observed, times input_pool² when pooled).
    """
    name: str
    features: int
    classes: int
    n_train: int
    n_test: int
    max_value: int


class Dataset:
    """A split, quantised data set as integer tensors.

    ``x_train``, ``x_test``: int64 [N, features + 1] — codes 0…2**input_bits−1, then the constant
    bias input 2**input_bits−1 as the last column. ``y_train``, ``y_test``: int64 [N] labels
    0…classes−1. (Positional arguments as the former ``Digits`` class.)
    """

    def __init__(self, x_train, y_train, x_test, y_test, input_bits, name="digits",
                 n_classes=None, input_pool=1, max_value=None):
        self.x_train, self.y_train = x_train, y_train
        self.x_test, self.y_test = x_test, y_test
        self.input_bits = input_bits
        self.name = name
        self.input_pool = input_pool
        self.max_value = max_value
        if n_classes is None:
            n_classes = int(max(int(y_train.max()), int(y_test.max()) if len(y_test) else 0)) + 1
        self._n_classes = int(n_classes)

    @property
    def n_train(self):
        return int(self.x_train.shape[0])

    @property
    def n_test(self):
        return int(self.x_test.shape[0])

    @property
    def n_inputs(self):
        """Features + 1 (the bias input)."""
        return int(self.x_train.shape[1])

    @property
    def n_features(self):
        return self.n_inputs - 1

    @property
    def n_classes(self):
        return self._n_classes

    @property
    def info(self):
        return DatasetInfo(self.name, self.n_features, self.n_classes, self.n_train,
                           self.n_test, self.max_value)

    def __repr__(self):
        return (f"Dataset({self.name!r}, features={self.n_features}, classes={self.n_classes}, "
                f"n_train={self.n_train}, n_test={self.n_test}, input_bits={self.input_bits}, "
                f"input_pool={self.input_pool})")


def check_input_bits(input_bits):
    if isinstance(input_bits, bool) or not isinstance(input_bits, int) or not 1 <= input_bits <= 16:
        raise ConfigError(f"input_bits must be an integer from 1 to 16, not {input_bits!r}")


def check_input_pool(input_pool):
    if isinstance(input_pool, bool) or not isinstance(input_pool, int) or not 1 <= input_pool <= 64:
        raise ConfigError(f"input_pool must be an integer from 1 to 64, not {input_pool!r}")


def stratified_split(y):
    """Boolean test mask of the fixed split: walking the samples in order, the k-th sample of
    each class (k counted per class from 0) is a test sample when ``k % TEST_EVERY == 0``."""
    y = np.asarray(y, dtype=np.int64)
    order = np.argsort(y, kind="stable")          # classes grouped, data-set order kept
    ys = y[order]
    first = np.searchsorted(ys, ys, side="left")  # index of each class's first sample
    rank = np.empty_like(y)
    rank[order] = np.arange(len(y)) - first
    return rank % TEST_EVERY == 0


def pool_images(x, side, k, where):
    """Sum k×k blocks of square row-major images [n, side²] → [n, (side/k)²]."""
    if k == 1:
        return x
    if side is None:
        raise DatasetError(f"{where}: input_pool {k} needs square images, and this data set's "
                           "rows are not declared as images (use input_pool 1)")
    if side % k:
        raise DatasetError(f"{where}: input_pool {k} must divide the image side {side}")
    n = x.shape[0]
    s = side // k
    return x.reshape(n, s, k, s, k).sum(axis=(2, 4)).reshape(n, s * s)


def quantize(x, input_bits, max_value):
    """``code = (v·(2**b − 1) + max//2) // max`` (int64 tensors in, out): a rounded rescaling of
    0…max onto 0…2**b − 1."""
    full = (1 << input_bits) - 1
    return (torch.as_tensor(x, dtype=torch.int64) * full + max_value // 2) // max_value
