"""Golden ZO trainer: data split, configuration, step arithmetic, training, cycle model."""

import math

import pytest
import torch

from zohw.cim_config import CIMConfig
from zohw.config import EngineConfig
from zohw.errors import ConfigError
from zohw.hw.cim import BehaviouralCIMMacro
from zohw.sw.cim import cim_matvec
from zohw.sw.data import batch_indices, load_digits_split, quantize_pixels
from zohw.sw.train import (batch_loss, cycle_breakdown, forward, golden_step, init_weights,
                           perturbation, predicted_cycles_per_step, rshift_round, train_golden,
                           unflatten)
from zohw.train_config import TrainerConfig, default_lr_shift


@pytest.fixture(scope="module")
def data():
    return load_digits_split(4)


# -- data --------------------------------------------------------------------------------------

def test_split_is_fixed_and_stratified(data):
    assert data.n_train == 1433 and data.n_test == 364
    assert data.n_inputs == 65
    counts = torch.bincount(data.y_test, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37
    assert int(data.x_train.min()) == 0 and int(data.x_train.max()) == 15
    assert torch.all(data.x_train[:, 64] == 15) and torch.all(data.x_test[:, 64] == 15)
    from sklearn.datasets import load_digits
    raw = load_digits()
    # first sample of every class is in the test set (k = 0), data-set order kept
    assert torch.equal(data.y_test[:10], torch.arange(10))
    assert torch.equal(data.x_test[0, :64], quantize_pixels(torch.as_tensor(raw.data[0]), 4))


def test_pixel_quantisation():
    p = torch.arange(17)
    q = quantize_pixels(p, 4)
    assert q[0] == 0 and q[16] == 15
    assert torch.all((q.double() - p.double() * 15 / 16).abs() <= 0.5)


def test_batch_order_visits_every_sample_once_per_epoch(data):
    n = data.n_train
    idx = batch_indices(n, 1, 0, n)
    assert sorted(idx.flatten().tolist()) == list(range(n))
    a = batch_indices(n, 32, 0, 10)
    b = batch_indices(n, 32, 5, 5)
    assert torch.equal(a[5:], b)
    assert a[0, 1] == 887
    with pytest.raises(ValueError, match="stride must be coprime"):
        batch_indices(1000, 4, 0, 1, stride=10)


# -- configuration ------------------------------------------------------------------------------

def test_config_defaults_and_derived():
    c = TrainerConfig()
    assert c.params == 650 and c.delta_shift == 1 and c.headroom == 256
    assert c.weight_range == (-1792, 1791)
    assert c.lr_shift == 13 and c.init == "zero"
    assert (c.model, c.hidden, c.shape, c.inputs, c.classes) == ("linear", (), "64-10", 64, 10)
    assert c.stride == 887 and c.write_lanes == 16 and c.label_bits == 4
    mlp = TrainerConfig(hidden=(16,))
    assert mlp.params == 65 * 16 + 17 * 10 and mlp.model == "mlp" and mlp.shape == "64-16-10"
    assert mlp.init == "uniform" and mlp.lr_shift == 12
    deep = TrainerConfig(hidden=(24, 12))
    assert deep.params == 65 * 24 + 25 * 12 + 13 * 10 and deep.n_layers == 3
    assert default_lr_shift("linear", "mse", "sgd") == 17
    assert default_lr_shift("linear", "hinge", "sign") == 3
    c2 = TrainerConfig.from_dict(c.as_dict())
    assert c2 == c and c2.config_hash == c.config_hash


@pytest.mark.parametrize("kw, match", [
    (dict(hidden=(0,)), r"hidden must be a tuple of integers from 1 to 4096, not \(0,\)"),
    (dict(hidden=16), "hidden must be a tuple of integers from 1 to 4096, not 16"),
    (dict(hidden=(4,) * 9), "hidden must have at most 8 layers .*, not 9"),
    (dict(write_lanes=3), "write_lanes must be a power of two from 1 to 16, not 3"),
    (dict(write_lanes=32), "write_lanes must be an integer from 1 to 16, not 32"),
    (dict(cim=CIMConfig(write_lanes=4)), r"cim.write_lanes must be 1 or write_lanes \(16\)"),
    (dict(inputs=63), r"inputs must be 64 \(inputs of data set digits with input_pool 1\), "
                      "not 63"),
    (dict(classes=3), r"classes must be 10 \(classes of data set digits"),
    (dict(stride=1433), "stride must be coprime with the train-set size 1433 of data set "
                        "digits, not 1433"),
    (dict(hidden=(4096, 4096)), "the model 64-4096-4096-10 has d = 17088522 weights, more "
                                "than the limit MAX_PARAMS = 1048576"),
    (dict(hidden=(1000,), cim=CIMConfig(tile="8x8")), "the model 64-1000-10 needs 1377 CIM "
                                                      "tiles of 8x8, more than the limit "
                                                      "MAX_TILES = 1024"),
    (dict(dataset="nope"), "dataset must be"),
    (dict(loss="l1"), "loss must be one of hinge, mse"),
    (dict(update="adam"), "update must be one of sgd, sign"),
    (dict(batch=0), "batch must be an integer from 1 to 1024, not 0"),
    (dict(eps_shift=1), "eps_shift must leave room"),
    (dict(lr_mult=16), "lr_mult must be an integer from 1 to 15, not 16"),
    (dict(rounding="up"), "rounding must be one of nearest, floor"),
    (dict(seed=-1), "seed must be an integer from 0"),
])
def test_config_errors_name_parameter_and_allowed_values(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainerConfig(**kw)
    with pytest.raises(TypeError, match="steps must be an integer"):
        TrainerConfig(steps="10")
    with pytest.raises(ValueError, match="unknown TrainerConfig keys: foo"):
        TrainerConfig.from_dict({"foo": 1})


def test_config_hash_is_hardware_identity():
    from zohw.hw.trainer import RUNTIME_FIELDS
    c = TrainerConfig()
    assert set(c.run_dict()) == {"seed", "steps", "init", "init_bits", "eval_every", "dataset",
                                 "input_pool"}
    assert set(RUNTIME_FIELDS) | {"dataset", "input_pool"} == set(c.run_dict())
    assert c.replace(seed=9, steps=5, eval_every=5, init="uniform",
                     init_bits=3).config_hash == c.config_hash
    assert c.replace(stride=5).config_hash != c.config_hash      # elaborated: hardware
    assert c.replace(batch=8).config_hash != c.config_hash
    assert c.replace(hidden=(8,)).config_hash != c.config_hash
    assert c.replace(write_lanes=4).config_hash != c.config_hash
    assert c.replace(cim=CIMConfig(tile="64x16")).config_hash != c.config_hash
    assert c.replace(update="sign").lr_shift == 3                 # derived default recomputed
    assert c.replace(hidden=(8,)).init == "uniform"               # derived from the model
    # a tuple survives the JSON round trip (lists come back as tuples)
    import json
    m = TrainerConfig(hidden=(12, 6))
    assert TrainerConfig.from_dict(json.loads(json.dumps(m.as_dict()))) == m


# -- arithmetic ---------------------------------------------------------------------------------

def test_rshift_round():
    v = torch.tensor([-7, -6, -5, -2, -1, 0, 1, 2, 5, 6, 7])
    assert rshift_round(v, 2).tolist() == [-2, -2, -1, -1, 0, 0, 0, 1, 1, 2, 2]
    assert torch.equal(rshift_round(-v, 2), -rshift_round(v, 2))       # symmetric
    assert rshift_round(v, 2, "floor").tolist() == (v >> 2).tolist()
    assert torch.equal(rshift_round(v, 0), v)


@pytest.mark.parametrize("cim", [CIMConfig(), CIMConfig(adc_shift=0),
                                 CIMConfig(input_mode="parallel"), CIMConfig(adc_bits=6)])
@pytest.mark.parametrize("hidden", [(), (16,)], ids=["linear", "mlp"])
def test_stacked_forward_matches_cim_matvec(data, cim, hidden):
    cfg = TrainerConfig(cim=cim, hidden=hidden)
    model = cfg.model
    g = torch.Generator().manual_seed(3)
    w = torch.randint(-2048, 2048, (3, cfg.params), generator=g)
    x = data.x_train[:17]
    assert torch.equal(forward(cfg, w, x), forward(cfg, w, x, exact_reference=True))
    if model == "linear":
        assert torch.equal(forward(cfg, w[0], x), cim_matvec(cim, w[0].view(65, 10), x))


def _scalar_step(cfg, w, z, x, y):
    """An independent, element-by-element rendering of docs/trainer.md §5 (CIM via cim_matvec)."""
    k = cfg.weight_frac - cfg.engine.frac_bits - cfg.eps_shift
    delta = [(zi * cfg.eps_mult) << k if k >= 0 else (zi * cfg.eps_mult) >> -k for zi in z]

    def loss(ws):
        W = torch.tensor(ws, dtype=torch.int64).view(65, 10)
        total = 0
        for b in range(len(y)):
            res = cim_matvec(cfg.cim, W, x[b]).flatten().tolist()
            s = [r >> cfg.logit_shift for r in res]
            lab = int(y[b])
            if cfg.loss == "hinge":
                total += sum(max(0, cfg.margin + s[j] - s[lab]) for j in range(10) if j != lab)
            else:
                total += sum((s[j] - (cfg.target if j == lab else 0)) ** 2 for j in range(10))
        return total

    lp = loss([a + b for a, b in zip(w, delta)])
    lm = loss([a - b for a, b in zip(w, delta)])
    g = max(cfg.diff_min, min(cfg.diff_max, lp - lm))
    gg = (g > 0) - (g < 0) if cfg.update == "sign" else g
    sh = cfg.lr_shift
    lo, hi = cfg.weight_range
    out = []
    for wi, zi in zip(w, z):
        p = gg * zi * cfg.lr_mult
        if cfg.rounding == "floor":
            r = p >> sh
        else:
            r = (abs(p) + (1 << (sh - 1))) >> sh
            r = -r if p < 0 else r
        out.append(max(lo, min(hi, wi - r)))
    return out, lp, lm, g


@pytest.mark.parametrize("kw", [dict(), dict(loss="mse"), dict(update="sign"),
                                dict(rounding="floor", eps_shift=6, lr_mult=3, eps_mult=5),
                                dict(lr_shift=2)])
def test_golden_step_matches_scalar_rendering(data, kw):
    cfg = TrainerConfig(**kw)
    g = torch.Generator().manual_seed(5)
    lo, hi = cfg.weight_range
    w = torch.randint(lo, hi + 1, (cfg.params,), generator=g)
    w[:20] = hi                     # at the saturation limit
    w[20:40] = lo
    z = torch.randint(cfg.engine.word_min, cfg.engine.word_max + 1, (cfg.params,), generator=g)
    z[:5] = 0
    x, y = data.x_train[:4], data.y_train[:4]
    w_new, lp, lm, gd, writes = golden_step(cfg, w, z, x, y)
    ref, rlp, rlm, rg = _scalar_step(cfg, w.tolist(), z.tolist(), x, y)
    assert (lp, lm, gd) == (rlp, rlm, rg)
    assert w_new.tolist() == ref
    assert int(w_new.min()) >= lo and int(w_new.max()) <= hi
    delta = perturbation(cfg, z)
    # perturbation writes never leave the 12-bit range (headroom)
    assert int((w + delta).abs().max()) <= 2048 and int((w - delta).abs().max()) <= 2048
    expected = 2 * (delta != 0).long() + (w_new != w - delta).long()
    assert torch.equal(writes, expected)
    assert torch.all(writes[:5] <= 1)


def test_saturation_holds_weights_in_range(data):
    # a huge step: every update saturates
    cfg = TrainerConfig(lr_shift=0, steps=5, eval_every=5)
    res = train_golden(cfg, data)
    lo, hi = cfg.weight_range
    assert int(res.weights.min()) == lo and int(res.weights.max()) == hi


# -- training -----------------------------------------------------------------------------------

def test_training_is_deterministic_and_learns(data):
    cfg = TrainerConfig(steps=300, eval_every=150)
    a = train_golden(cfg, data)
    b = train_golden(cfg, data)
    assert torch.equal(a.weights, b.weights) and torch.equal(a.l_plus, b.l_plus)
    assert torch.equal(a.write_counts, b.write_counts)
    loss = a.step_loss()
    assert float(loss[-50:].mean()) < 0.92 * float(loss[:50].mean())
    assert a.eval_steps == [0, 150, 300]
    assert a.test_accuracy[0] == pytest.approx(0.0989, abs=1e-3)   # all-zero weights → class 0
    assert a.final_test_accuracy > 0.2
    assert int(a.write_counts.max()) <= 3 * 300
    assert a.cycles == 300 * predicted_cycles_per_step(cfg)
    c = train_golden(cfg.replace(seed=2), data)
    assert not torch.equal(a.weights, c.weights)


def test_chunked_engine_words_equal_one_shot(data, monkeypatch):
    import zohw.sw.train as tr
    from zohw.sw.perturb import golden_perturbations
    cfg = TrainerConfig(steps=12, eval_every=12, engine=EngineConfig(strategy="pezo-block"))
    seen = []

    def source(first, count):
        seen.append((first, count))
        return golden_perturbations(cfg.engine, cfg.seed, cfg.params, count, first_step=first)

    monkeypatch.setattr(tr, "Z_CHUNK", 5)
    a = train_golden(cfg, data, z_source=source)
    assert seen == [(0, 5), (5, 5), (10, 2)]
    full = golden_perturbations(cfg.engine, cfg.seed, cfg.params, 12)
    b = train_golden(cfg, data, z_source=lambda f, n: full[f:f + n])
    assert torch.equal(a.weights, b.weights)


def test_snapshots_are_the_states_of_shorter_runs(data, monkeypatch):
    """A snapshot after n steps (inside a chunk, at a chunk's end, after the last step) is the
    final state of an n-step run: its weights and its write counts."""
    import zohw.sw.train as tr
    monkeypatch.setattr(tr, "Z_CHUNK", 5)
    cfg = TrainerConfig(steps=12, eval_every=12)
    run = train_golden(cfg, data, snapshots=[7, 3, 5, 12])
    assert sorted(run.snapshots) == [3, 5, 7, 12]
    for n, (w, c) in run.snapshots.items():
        short = train_golden(cfg.replace(steps=n, eval_every=n), data)
        assert torch.equal(w, short.weights) and torch.equal(c, short.write_counts), n
    assert torch.equal(run.snapshots[12][1], run.write_counts)
    assert not torch.equal(run.snapshots[3][1], run.snapshots[7][1])
    with pytest.raises(ValueError, match=r"snapshots must be step counts from 1 to 12"):
        train_golden(cfg, data, snapshots=[13])


@pytest.mark.parametrize("kw", [dict(loss="mse"), dict(update="sign"), dict(hidden=(16,)),
                                dict(engine=EngineConfig(strategy="gauss-clt"), lr_decay=50)])
def test_variants_learn(data, kw):
    cfg = TrainerConfig(steps=200, eval_every=200, **kw)
    res = train_golden(cfg, data)
    loss = res.step_loss()
    assert float(loss[-40:].mean()) < float(loss[:40].mean())


def test_mlp_layers_and_init():
    cfg = TrainerConfig(hidden=(16,))
    c1, c2 = cfg.layer_cims
    assert (c1.rows, c1.cols, c2.rows, c2.cols) == (65, 16, 17, 10)
    # every layer's ADC is the tile's: 128 rows of 4-bit cells, 11 bits (exact) by default;
    # a 9-bit template drops 2 LSBs in every layer
    assert c1.adc_bits == c2.adc_bits == 11 and c1.adc_shift == c2.adc_shift == 0
    n1, n2 = TrainerConfig(hidden=(16,), cim=CIMConfig(adc_bits=9)).layer_cims
    assert n1.adc_shift == n2.adc_shift == 2 and n1.adc_bits == n2.adc_bits == 9
    assert c1.tile == c2.tile == "128x32" and c1.write_lanes == c2.write_lanes == 16
    w = init_weights(cfg)
    assert torch.equal(w, init_weights(cfg))
    assert int(w.abs().max()) <= 512 and len(set(w.tolist())) > 100
    assert [t.shape for t in unflatten(cfg, w)] == [(65, 16), (17, 10)]


# -- cycle model --------------------------------------------------------------------------------

def test_cycle_model():
    one = TrainerConfig(write_lanes=1)
    b = cycle_breakdown(one)
    assert b["perturb_plus"] == 650 + 2 and b["forward_plus"] == 1 + 32 * 12 + 10 + 1
    assert predicted_cycles_per_step(one) == sum(b.values()) == 2753
    # write_lanes weights per cycle (default P = 16): a write pass takes ceil(650 / 16) = 41
    cfg = TrainerConfig()
    b = cycle_breakdown(cfg)
    assert (b["perturb_plus"], b["perturb_minus"], b["update"]) == (41 + 2, 41 + 2, 41 + 3)
    assert predicted_cycles_per_step(cfg) == 2 * 43 + 2 * 396 + 1 + 44 + 3 == 926
    assert cycle_breakdown(cfg.replace(write_lanes=4))["perturb_plus"] == 163 + 2
    mlp = TrainerConfig(hidden=(16,))
    assert cycle_breakdown(mlp)["forward_plus"] == 1 + 32 * 12 + 12 + 1 + 10 + 1
    # forward time grows linearly with the batch
    d = (predicted_cycles_per_step(cfg.replace(batch=64))
         - predicted_cycles_per_step(cfg.replace(batch=32)))
    assert d == 2 * 32 * 12
    # macros faster than the loss unit (cpv 3 < 10 classes): the loss unit sets the pace
    fast = TrainerConfig(hidden=(4,), batch=4, cim=CIMConfig(input_mode="parallel"))
    assert cycle_breakdown(fast)["forward_plus"] == 1 + 4 * 10 + (3 + 3 - 10 + 1) + 10 + 1
    assert math.isclose(batch_loss(cfg, torch.zeros(650, dtype=torch.int64),
                                   torch.zeros(1, 65, dtype=torch.int64),
                                   torch.tensor([3])), 9 * 64)


class _SlowMacro(BehaviouralCIMMacro):
    """The behavioural macro as if it took 5 more cycles per vector, with a golden model that
    adds 2**logit_shift to every result (so the golden model's use of it shows)."""

    @property
    def cycles_per_vector(self):
        return super().cycles_per_vector + 5

    def golden(self, weights, x):
        return super().golden(weights, x) + (1 << TrainerConfig().logit_shift)


def test_injected_macro_sets_the_schedule_and_the_golden_layers(data):
    cfg = TrainerConfig(steps=2, eval_every=2)
    plain = cycle_breakdown(cfg)
    slow = cycle_breakdown(cfg, macro=_SlowMacro)
    assert slow["forward_plus"] - plain["forward_plus"] == cfg.batch * 5
    assert slow["perturb_plus"] == plain["perturb_plus"]
    w = torch.zeros(cfg.params, dtype=torch.int64)
    x = data.x_train[:3]
    assert torch.equal(forward(cfg, w, x, macro=_SlowMacro), forward(cfg, w, x) + 512)
    a = train_golden(cfg, data)
    b = train_golden(cfg, data, macro=_SlowMacro)
    assert b.cycles - a.cycles == 2 * 2 * cfg.batch * 5
