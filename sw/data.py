"""The data sets of the trainer (:mod:`zohw.datasets`; ``docs/datasets.md``) and the mini-batch order.

``load_dataset(spec, input_bits, input_pool)``, ``dataset_info(spec, input_pool)``,
``DatasetError`` and ``default_stride(n_train)`` are re-exported from :mod:`zohw.datasets`
(registered names ``digits``, ``mnist-5k``, or a user ``PATH.npz``). Every data set follows the
rules below, written for the default one, digits (its numbers are unchanged):

Data set
--------
``sklearn.datasets.load_digits()`` ships 1 797 grey-level 8×8 images (pixels 0…16) of the digits
0…9 inside the scikit-learn wheel; it is read from disk, never fetched.

Split (fixed, independent of any random generator)
--------------------------------------------------
Walk the samples in the data set's own order; the k-th sample of each class (k = 0, 1, 2, … counted
per class) goes to the **test** set when ``k % 5 == 0`` and to the **train** set otherwise. This is
a stratified 80/20 split: 364 test samples (35–37 per class) and 1 433 train samples, both kept in
data set order. :func:`load_digits_split` returns them.

Inputs
------
A pixel p ∈ [0, 16] becomes the unsigned ``input_bits``-wide code
``(p * (2**input_bits - 1) + 8) // 16``: a rounded rescaling of 0…16 onto 0…2**input_bits - 1 (for the default 4 bits: ``(15 p + 8) // 16``, so
0 → 0, 16 → 15 and every other code moves by at most half an LSB). The 64 pixels (row-major) are
followed by one constant **bias input** equal to ``2**input_bits - 1`` (full scale), so a linear
layer over 65 inputs carries its bias in weight row 64.

Sample memory order and mini-batches
------------------------------------
The hardware sample memory holds the train set in the order above (address = train index).
Mini-batch draws are numbered n = 0, 1, 2, … across steps (step s uses draws s·B … s·B + B − 1)
and draw n reads address ``(n * stride) mod N_train`` with a stride coprime with N_train (default
:func:`default_stride`: the prime nearest N/φ not dividing N — 887 for N = 1 433). Hardware keeps one address register: add the stride, subtract N
when the sum reaches N. Every run of N consecutive draws visits every sample exactly once; because
B need not divide N, the batches of successive epochs differ. :func:`batch_indices` gives them.
"""

import math

import torch

from zohw.datasets import (TEST_EVERY, Dataset, DatasetError, DatasetInfo, dataset_info,
                           default_stride, load_dataset)
from zohw.datasets.base import quantize
from zohw.digits import CLASSES, DEFAULT_STRIDE, PIXELS
from zohw.errors import ConfigError

__all__ = ["load_dataset", "dataset_info", "DatasetError", "Dataset", "DatasetInfo",
           "default_stride", "DEFAULT_STRIDE", "TEST_EVERY", "quantize_pixels",
           "load_digits_split", "batch_indices", "Digits", "CLASSES", "PIXELS"]

#: The former name of :class:`Dataset` (the digits set is one).
Digits = Dataset


def quantize_pixels(pixels, input_bits):
    """Map digits pixels 0…16 (any integer tensor) onto unsigned ``input_bits`` codes:
    (p·(2^b−1)+8)//16 — :func:`zohw.datasets.base.quantize` with full scale 16."""
    return quantize(pixels, input_bits, 16)


def load_digits_split(input_bits=4):
    """The bundled digits, split and quantised: ``load_dataset("digits", input_bits)``."""
    return load_dataset("digits", input_bits, 1)


def batch_indices(n_train, batch, start_step, steps, stride=DEFAULT_STRIDE):
    """Train-set addresses of the mini-batches of steps ``start_step … start_step + steps - 1``.

    Returns a LongTensor [steps, batch]: draw n = s·batch + j reads ``(n * stride) % n_train``.
    """
    if math.gcd(stride, n_train) != 1:
        raise ConfigError(f"stride must be coprime with the train-set size {n_train}, "
                          f"not {stride}")
    n = torch.arange(start_step * batch, (start_step + steps) * batch, dtype=torch.int64)
    return ((n * stride) % n_train).view(steps, batch)
