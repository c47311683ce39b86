"""Constants of the bundled digits data set (the default ``TrainerConfig.dataset``).

A trainer's shape comes from its configuration (``TrainerConfig.inputs``, ``classes``,
``label_bits``, ``stride``, derived from the data set); these are digits' values, kept for the
code and tests that name the digits task itself.
"""

__all__ = ["CLASSES", "PIXELS", "DEFAULT_STRIDE", "LABEL_BITS"]

#: Classes of the digits task (columns of the output layer).
CLASSES = 10
#: Pixels per digits image (rows of the first layer, before the bias input).
PIXELS = 64
#: Default sample-memory stride of the mini-batch order (≈ N/φ, coprime with N = 1 433).
DEFAULT_STRIDE = 887
#: Bits of a class label.
LABEL_BITS = max(1, (CLASSES - 1).bit_length())
