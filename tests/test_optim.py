"""``zohw.optim.ZOOptimizer``: a torch optimizer whose z are the engine's exact words.

The z a training run applies are read back from the parameters themselves (``(w + eps·z − w) /
(eps·lsb)`` recovers the integer words exactly) and compared with ``zohw sim perturb --dump``,
the dump of the words the co-simulated RTL was checked against; a shifted seed is caught.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import zohw.optim as optim
from zohw.config import SOURCES, EngineConfig
from zohw.errors import ConfigError
from zohw.optim import GAUSSIAN, ZOOptimizer
from zohw.strategies import STRATEGIES
from zohw.sw.perturb import golden_perturbations
from zohw.sw.train import single_thread

SEED = 42
STEPS = 300
EPS = 2.0 ** -8
#: Small enough for a quick Verilator build; R = 2 sources so the rotation is exercised.
OTF = EngineConfig(strategy="pezo-otf", lanes=4, width=7, otf_sources=2)
OTF_CLI = ["--rng", "pezo-otf", "--lanes", "4", "--width", "7", "--otf-sources", "2"]


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def _regression():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 8, generator=gen)
    y = torch.tanh(x @ torch.randn(8, 1, generator=gen))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1))
    return model, x, y


def _train_recording(config, seed, steps=STEPS, lr=2e-3):
    """Train the small regression MLP; return (words applied per step [steps, d], loss before,
    loss after). The words are recovered from the parameters the first closure call sees."""
    model, x, y = _regression()
    opt = ZOOptimizer(model.parameters(), lr=lr, eps=EPS, z=config, seed=seed)
    state = {}

    def closure():
        if state.pop("record", False):
            units = (_flat(model) - state["before"]).double() / (EPS * config.lsb)
            words = units.round()
            assert (units - words).abs().max() < 1e-3       # an exact multiple of eps·lsb
            state["words"].append(words.to(torch.int64))
        return torch.nn.functional.mse_loss(model(x), y)

    state["words"] = []
    with single_thread(), torch.no_grad():
        before = float(closure())
        for _ in range(steps):
            state["before"], state["record"] = _flat(model), True
            opt.step(closure)
        after = float(closure())
    return torch.stack(state["words"]), before, after


@pytest.fixture(scope="module")
def trained():
    return _train_recording(OTF, SEED)


@pytest.fixture(scope="module")
def cli_dump(tmp_path_factory):
    """``zohw sim perturb --dump`` of the same configuration, seed, d and steps (co-simulated:
    the dumped words are the ones the RTL was compared with)."""
    tmp = tmp_path_factory.mktemp("dump")
    out, dump = tmp / "r.json", tmp / "z.npz"
    d = sum(p.numel() for p in _regression()[0].parameters())
    argv = ["sim", "perturb", *OTF_CLI, "--params", str(d), "--steps", str(STEPS),
            "--seed", str(SEED), "--json", str(out), "--dump", str(dump)]
    proc = subprocess.run([sys.executable, "-m", "zohw.cli", *argv], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert doc["passed"] and doc["mismatches"] == 0 and doc["steps"] == STEPS
    with np.load(dump) as f:
        return torch.from_numpy(f["z"]), float(f["lsb"])


def test_training_applies_the_rtl_words_and_learns(trained, cli_dump):
    words, before, after = trained
    z, lsb = cli_dump
    assert lsb == OTF.lsb == 2.0 ** -4
    assert words.shape == z.shape == (STEPS, 61)
    assert torch.equal(words, z)
    assert after < 0.6 * before, (before, after)


def test_shifted_seed_is_caught(trained, cli_dump):
    words, _, _ = trained
    z, _ = cli_dump
    wrong = golden_perturbations(OTF, SEED + 1, 61, STEPS)
    assert not torch.equal(wrong, z)
    assert (wrong != z).float().mean() > 0.3
    # and an optimizer loaded with the shifted seed applies words that differ from the dump
    shifted, _, _ = _train_recording(OTF, SEED + 1, steps=4)
    assert (shifted != z[:4]).any(dim=1).all()
    # one step late is caught too: the stream is a function of the step
    assert not torch.equal(words[1:], z[:-1])


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_matches_the_golden_stream_in_any_chunking(strategy, source):
    config = EngineConfig(strategy=strategy, lanes=4, width=7, pool=16, source=source)
    model = torch.nn.Linear(13, 7)                                  # d = 98, not a multiple of 4
    expected = golden_perturbations(config, 7, 98, 6).double() * config.lsb
    for chunk in (9, 98, 1 << 20):
        opt = ZOOptimizer(model.parameters(), z=config, seed=7, chunk=chunk)
        for step in (0, 5):
            assert torch.equal(opt.perturbation(step).double(), expected[step]), (chunk, step)


def test_step_is_mezo_with_the_stream():
    """One step against the formulas, with z from the golden model; the step index advances."""
    model = torch.nn.Linear(5, 3)
    w0 = _flat(model)
    opt = ZOOptimizer(model.parameters(), lr=0.125, eps=EPS, z=OTF, seed=3, first_step=2,
                      weight_decay=0.5)
    target = torch.arange(18.0)
    seen = []

    def closure():
        seen.append(_flat(model))
        return ((seen[-1] - target) ** 2).sum()

    loss = opt.step(closure)
    z = golden_perturbations(OTF, 3, 18, 1, first_step=2)[0].float() * OTF.lsb
    assert torch.allclose(seen[0], w0 + EPS * z) and torch.allclose(seen[1], w0 - EPS * z)
    lp, lm = (((w - target) ** 2).sum().item() for w in seen)
    g = (lp - lm) / (2 * EPS)
    assert opt.last["step"] == 2 and opt.step_index == 3
    assert opt.last["projected_grad"] == pytest.approx(g, rel=1e-4)
    assert float(loss) == pytest.approx((lp + lm) / 2, rel=1e-5)
    assert torch.allclose(_flat(model), w0 * (1 - 0.125 * 0.5) - 0.125 * g * z, atol=1e-4)
    # the step index survives a state_dict round trip
    again = ZOOptimizer(model.parameters(), z=OTF, seed=3)
    again.load_state_dict(opt.state_dict())
    assert again.step_index == 3


def test_million_parameters_in_chunks(monkeypatch):
    """d ≈ 10**6 (two parameters, the chunks straddle them): no generator call covers more than
    one chunk, every pass covers the step, and the update matches the whole z computed at once."""
    calls = []
    real = optim.packed_states

    def counting(source, init, start, count):
        calls.append(count)
        return real(source, init, start, count)

    monkeypatch.setattr(optim, "packed_states", counting)
    config = EngineConfig(strategy="pezo-otf")                      # P = 16
    big = torch.nn.Parameter(torch.zeros(1000, 1000))
    small = torch.nn.Parameter(torch.zeros(7))
    chunk = 1 << 16
    opt = ZOOptimizer([big, small], lr=0.5, eps=EPS, z=config, seed=9, chunk=chunk)
    d = 1_000_007
    target = torch.ones(d)
    with single_thread():
        opt.step(lambda: ((torch.cat([big.reshape(-1), small]) - target) ** 2).sum())
    transfers = -(-d // 16)
    assert max(calls) * 16 <= chunk + 16
    assert len(calls) == 3 * -(-d // chunk) and sum(calls) == 3 * transfers
    assert opt.stats == {"passes": 3, "chunks": 3 * 16, "largest_chunk": chunk}
    calls.clear()
    z = opt.perturbation(0)                                          # all at once, for checking
    g = opt.last["projected_grad"]
    w = torch.cat([big.detach().reshape(-1), small.detach()])
    assert torch.allclose(w, -0.5 * g * z, atol=1e-3)
    assert sum(calls) == transfers             # chunks of a multiple of P share no transfer


def test_gaussian_baseline_regenerates_and_learns():
    model, x, y = _regression()
    opt = ZOOptimizer(model.parameters(), lr=2e-3, eps=1e-3, z=GAUSSIAN, seed=1, chunk=10)
    z0 = opt.perturbation(0)
    assert torch.equal(z0, opt.perturbation(0))                    # MeZO's seed trick
    assert not torch.equal(z0, opt.perturbation(1))
    assert 0.5 < z0.std() < 1.5
    with single_thread(), torch.no_grad():
        before = torch.nn.functional.mse_loss(model(x), y).item()
        for _ in range(200):
            opt.step(lambda: torch.nn.functional.mse_loss(model(x), y))
        after = torch.nn.functional.mse_loss(model(x), y).item()
    assert after < 0.6 * before


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": 0}, "lr must be a positive finite number, not 0"),
    ({"eps": float("nan")}, "eps must be a positive finite number, not nan"),
    ({"weight_decay": -1}, "weight_decay must be a non-negative finite number, not -1"),
    ({"chunk": 0}, "chunk must be an integer at least 1, not 0"),
    ({"seed": 1 << 32}, "seed must be an integer from 0 to 4294967295, not 4294967296"),
    ({"first_step": -1}, "first_step must be an integer at least 0, not -1"),
    ({"z": "gauss"}, "z must be 'gaussian', a strategy name (gauss-clt,"),
])
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ConfigError) as exc:
        ZOOptimizer(torch.nn.Linear(2, 2).parameters(), **kwargs)
    assert message in str(exc.value)


def test_closure_is_required_and_eps_is_shared():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="closure must be a function"):
        ZOOptimizer(model.parameters()).step(None)
    with pytest.raises(ConfigError, match=r"eps must be the same in every parameter group"):
        ZOOptimizer([{"params": [model.weight]}, {"params": [model.bias], "eps": 0.5}],
                    eps=1e-3)


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train_cnn.py"


def test_cnn_example_at_reduced_size(tmp_path):
    """examples/train_cnn.py, three strategies on digits in a few seconds: plot and summary."""
    out = tmp_path / "cnn"
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--steps", "30", "--eval-every", "10",
                           "--channels", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "summary.json"]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "summary.json").read_text())
    assert list(doc["curves"]) == [GAUSSIAN, "pezo-otf", "rademacher"]
    # conv 1→2 (3×3 + bias) and linear 2·4·4 → 10
    assert doc["params"] == 2 * 9 + 2 + 32 * 10 + 10
    for c in doc["curves"].values():
        assert c["step"] == [0, 10, 20, 30]
        assert len(c["train_loss"]) == len(c["test_accuracy"]) == 4
        assert all(0.0 <= a <= 1.0 for a in c["test_accuracy"])
    # one start for all: same weights, so the same first evaluation
    assert len({c["train_loss"][0] for c in doc["curves"].values()}) == 1
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == f"wrote {out / 'curves.png'} {out / 'summary.json'}"
    assert lines[-2].startswith("trained 3 CNNs (350 parameters, 30 steps) on digits")


def test_cnn_example_refuses_unknown_strategy(tmp_path):
    out = tmp_path / "cnn"
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--strategies", "gaussian,pezo",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--strategies must name gaussian or strategies of gauss-clt" in proc.stderr
    assert "not pezo" in proc.stderr and not out.exists()
