"""The digits data set of the trainer: scikit-learn's bundled 8×8 digits, nothing downloaded.

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
887 ≈ N/φ for N = 1 433, a prime). Hardware keeps one address register: add the stride, subtract N
when the sum reaches N. Every run of N consecutive draws visits every sample exactly once; because
B need not divide N, the batches of successive epochs differ. :func:`batch_indices` gives them.
"""

import math

import torch

from zohw.digits import CLASSES, DEFAULT_STRIDE, PIXELS
from zohw.errors import ConfigError

__all__ = ["DEFAULT_STRIDE", "TEST_EVERY", "quantize_pixels", "load_digits_split",
           "batch_indices", "Digits", "CLASSES", "PIXELS"]

#: k-th sample of a class goes to test when k % TEST_EVERY == 0.
TEST_EVERY = 5


def quantize_pixels(pixels, input_bits):
    """Map pixels 0…16 (any integer tensor) onto unsigned ``input_bits`` codes: (p·(2^b−1)+8)//16."""
    full = (1 << input_bits) - 1
    return (pixels.to(torch.int64) * full + 8) // 16


class Digits:
    """The split digits data set as integer tensors.

    Attributes
    ----------
    x_train, x_test : LongTensor [N, 65]
        Unsigned input codes (64 pixels then the constant bias input).
    y_train, y_test : LongTensor [N]
        Class labels 0…9.
    input_bits : int
    """

    def __init__(self, x_train, y_train, x_test, y_test, input_bits):
        self.x_train, self.y_train = x_train, y_train
        self.x_test, self.y_test = x_test, y_test
        self.input_bits = input_bits

    @property
    def n_train(self):
        return int(self.x_train.shape[0])

    @property
    def n_test(self):
        return int(self.x_test.shape[0])

    @property
    def n_inputs(self):
        return int(self.x_train.shape[1])


_CACHE = {}


def load_digits_split(input_bits=4):
    """Load the bundled digits, apply the fixed split and quantise: a :class:`Digits`."""
    if isinstance(input_bits, bool) or not isinstance(input_bits, int) or not 1 <= input_bits <= 16:
        raise ConfigError(f"input_bits must be an integer from 1 to 16, not {input_bits!r}")
    if input_bits in _CACHE:
        return _CACHE[input_bits]
    from sklearn.datasets import load_digits   # bundled with scikit-learn: no download
    raw = load_digits()
    pixels = torch.as_tensor(raw.data, dtype=torch.int64)
    labels = torch.as_tensor(raw.target, dtype=torch.int64)
    seen = [0] * CLASSES
    test_mask = torch.zeros(len(labels), dtype=torch.bool)
    for i, c in enumerate(labels.tolist()):
        test_mask[i] = seen[c] % TEST_EVERY == 0
        seen[c] += 1
    codes = quantize_pixels(pixels, input_bits)
    bias = torch.full((len(labels), 1), (1 << input_bits) - 1, dtype=torch.int64)
    x = torch.cat([codes, bias], dim=1)
    data = Digits(x[~test_mask].contiguous(), labels[~test_mask].contiguous(),
                  x[test_mask].contiguous(), labels[test_mask].contiguous(), input_bits)
    _CACHE[input_bits] = data
    return data


def batch_indices(n_train, batch, start_step, steps, stride=DEFAULT_STRIDE):
    """Train-set addresses of the mini-batches of steps ``start_step … start_step + steps - 1``.

    Returns a LongTensor [steps, batch]: draw n = s·batch + j reads ``(n * stride) % n_train``.
    """
    if math.gcd(stride, n_train) != 1:
        raise ConfigError(f"stride must be coprime with the train-set size {n_train}, "
                          f"not {stride}")
    n = torch.arange(start_step * batch, (start_step + steps) * batch, dtype=torch.int64)
    return ((n * stride) % n_train).view(steps, batch)
