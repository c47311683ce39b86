"""scikit-learn's bundled 8×8 digits (1 797 images, pixels 0…16, classes 0…9): nothing
downloaded. Declared full scale 16; images 8×8 (input_pool 2, 4 or 8 allowed)."""

import numpy as np

from .base import Raw, Source


def _load():
    from sklearn.datasets import load_digits   # bundled with scikit-learn: no download
    raw = load_digits()
    return Raw(x=np.asarray(raw.data, dtype=np.int64), y=np.asarray(raw.target, dtype=np.int64),
               x_test=None, y_test=None, max_value=16, image_side=8, where="dataset digits",
               classes=10)


SOURCE = Source("digits", "scikit-learn's bundled 8x8 digits (1 797 images, 10 classes)", _load,
                order=0)
