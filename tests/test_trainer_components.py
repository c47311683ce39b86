"""Every trainer component alone in Amaranth's simulator, against the golden model.

Stream helpers in the style of Glasgow's ``stream_put``/``stream_get``. Each check has a
companion showing that a wrong golden (or a faulty component) is caught."""

import pytest
import torch
from amaranth.hdl import Module, signed
from amaranth.lib import memory, wiring
from amaranth.sim import Simulator

from zohw.config import EngineConfig
from zohw.hw.cim import CIMSignature
from zohw.hw.controller import Controller, State
from zohw.hw.loss_unit import LossUnit
from zohw.hw.plan import TrainerPlan
from zohw.hw.requantiser import Requantiser
from zohw.hw.sample_memory import SampleMemory
from zohw.hw.update_unit import UpdateUnit
from zohw.hw.write_pipeline import WritePipeline
from zohw.losses import LOSSES, get as get_loss
from zohw.sw.data import batch_indices
from zohw.sw.train import perturbation, update_delta
from zohw.train_config import CLASSES, PIXELS, TrainerConfig


def simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


async def stream_put(ctx, stream, payload, limit=10_000):
    """Offer ``payload`` until a transfer (``ready`` sampled at the clock edge)."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    for _ in range(limit):
        _, _, ready = await ctx.tick().sample(stream.ready)
        if ready:
            ctx.set(stream.valid, 0)
            return
    raise AssertionError(f"{stream} never ready")


async def tick_until(ctx, signal, limit=100_000):
    """Ticks until (and including) the edge at which ``signal`` is high."""
    for _ in range(limit):
        _, _, high = await ctx.tick().sample(signal)
        if high:
            return
    raise AssertionError(f"{signal} never high")


# -- loss unit --------------------------------------------------------------------------------

def loss_unit_run(cfg, ys, labels):
    plan = TrainerPlan(cfg)
    dut = LossUnit(cfg, result_bits=cfg.layer_cims[-1].result_bits, score_bits=plan.score_bits,
                   loss_bits=plan.loss_bits)
    out = {}

    async def bench(ctx):
        ctx.set(dut.active, 1)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for y, lab in zip(ys, labels):
            ctx.set(dut.label.valid, 1)
            ctx.set(dut.label.payload, lab)
            await ctx.tick()
            ctx.set(dut.label.valid, 0)
            await stream_put(ctx, dut.y, y)
        await tick_until(ctx, dut.done)
        out["loss"] = ctx.get(dut.loss)

    simulate(dut, bench)
    return out["loss"]


def random_results(cfg, n, seed):
    last = cfg.layer_cims[-1]
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(last.result_min, last.result_max + 1, (n, CLASSES), generator=g)
    y[0] = last.result_min
    y[1] = last.result_max
    y[2, ::2] = last.result_max
    y[2, 1::2] = last.result_min
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    return y, labels


@pytest.mark.parametrize("name", LOSSES)
def test_loss_unit_matches_golden_loss(name):
    cfg = TrainerConfig(loss=name, batch=6, logit_shift=5)
    y, labels = random_results(cfg, cfg.batch, seed=1)
    got = loss_unit_run(cfg, y.tolist(), labels.tolist())
    golden = get_loss(name).golden(cfg, y >> cfg.logit_shift, labels)
    assert got == int(golden.sum())
    # a wrong golden (another margin/target) is caught
    wrong = cfg.replace(margin=cfg.margin + 1, target=cfg.target + 1)
    assert got != int(get_loss(name).golden(wrong, y >> cfg.logit_shift, labels).sum())


# -- requantiser --------------------------------------------------------------------------------

def test_requantiser_against_golden_under_backpressure():
    hidden, rb, ib, shift = 5, 14, 4, 3
    dut = Requantiser(hidden=hidden, result_bits=rb, input_bits=ib, shift=shift)
    g = torch.Generator().manual_seed(2)
    ys = torch.randint(-40, 200, (12, hidden), generator=g)
    ys[0] = -(1 << (rb - 1))
    ys[1] = (1 << (rb - 1)) - 1
    got = []

    async def producer(ctx):
        for y in ys.tolist():
            await stream_put(ctx, dut.inp, y)

    async def consumer(ctx):
        for k in range(10 * len(ys)):
            ctx.set(dut.out.ready, k % 3 != 1)          # back-pressure one cycle in three
            _, _, valid, ready, payload = await ctx.tick().sample(
                dut.out.valid, dut.out.ready, dut.out.payload)
            if valid and ready:
                got.append(list(payload))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    imax = (1 << ib) - 1
    want = torch.cat([torch.clamp(ys >> shift, 0, imax),
                      torch.full((len(ys), 1), imax, dtype=torch.int64)], 1).tolist()
    assert got == want
    wrong = torch.cat([torch.clamp(ys >> (shift - 1), 0, imax),
                       torch.full((len(ys), 1), imax, dtype=torch.int64)], 1).tolist()
    assert got != wrong


# -- update unit --------------------------------------------------------------------------------

def update_unit_run(cfg, diff, w_orig, z, steps_before=0):
    plan = TrainerPlan(cfg)
    dut = UpdateUnit(cfg, loss_bits=plan.loss_bits, product_bits=plan.product_max.bit_length(),
                     max_shift=plan.max_shift)
    delta = perturbation(cfg, z)
    stored = (w_orig - delta).tolist()
    out = {"w": [], "write": []}

    async def bench(ctx):
        ctx.set(dut.restart, 1)
        await ctx.tick()
        ctx.set(dut.restart, 0)
        for _ in range(steps_before):
            ctx.set(dut.advance, 1)
            await ctx.tick()
        ctx.set(dut.advance, 0)
        ctx.set(dut.diff, diff)
        ctx.set(dut.latch, 1)
        await ctx.tick()
        ctx.set(dut.latch, 0)
        out["g"] = ctx.get(dut.g)
        for wi, di, zi in zip(stored, delta.tolist(), z.tolist()):
            ctx.set(dut.op.en, 1)
            ctx.set(dut.op.w, wi)
            ctx.set(dut.op.delta, di)
            ctx.set(dut.op.z, zi)
            await ctx.tick()
            out["w"].append(ctx.get(dut.op.w_new))
            out["write"].append(ctx.get(dut.op.write))

    simulate(dut, bench)
    return out, stored


@pytest.mark.parametrize("kw, diff, steps_before", [
    (dict(), 777, 0),
    (dict(), -(1 << 20), 0),                                   # g saturates
    (dict(update="sign", rounding="floor"), -5, 0),
    (dict(lr_shift=0, lr_mult=7), 1 << 20, 0),                 # every weight saturates
    (dict(lr_shift=3, lr_decay=2), 40000, 5),                  # decayed shift 3 + 5 // 2
])
def test_update_unit_rounding_and_saturation(kw, diff, steps_before):
    cfg = TrainerConfig(**kw)
    lo, hi = cfg.weight_range
    g = torch.Generator().manual_seed(3)
    n = 48
    w = torch.randint(lo, hi + 1, (n,), generator=g)
    w[:6] = hi
    w[6:12] = lo
    z = torch.randint(cfg.engine.word_min, cfg.engine.word_max + 1, (n,), generator=g)
    z[12:16] = 0
    out, stored = update_unit_run(cfg, diff, w, z, steps_before)
    gsat = max(cfg.diff_min, min(cfg.diff_max, diff))
    assert out["g"] == gsat
    want = torch.clamp(w + update_delta(cfg, gsat, z, steps_before), lo, hi)
    assert out["w"] == want.tolist()
    assert out["write"] == [int(a != b) for a, b in zip(want.tolist(), stored)]
    # a wrong golden (one more shift, no saturation) is caught
    wrong = w + update_delta(cfg.replace(lr_shift=cfg.lr_shift + 1), gsat, z, steps_before)
    assert out["w"] != wrong.tolist()


# -- write pipeline (with the update unit and a weight-memory macro) ------------------------------

class WeightMemoryMacro(wiring.Component):
    """A CIM macro stand-in that only stores weights (no passes: fast in the Python simulator);
    its banked ports (one memory per lane) have the behavioural macro's read latency of 1.
    Injected through the factory."""

    cycles_per_vector = 1
    read_latency = 1

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__(CIMSignature(cfg))

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        for j in range(cfg.write_lanes):
            m.submodules[f"mem{j}"] = mem = memory.Memory(shape=signed(cfg.weight_bits),
                                                          depth=cfg.write_groups, init=[])
            rd, wr = mem.read_port(), mem.write_port()
            m.d.comb += [rd.en.eq(self.read.en), rd.addr.eq(self.read.addr),
                         self.read.data[j].eq(rd.data), wr.en.eq(self.write.en[j]),
                         wr.addr.eq(self.write.addr), wr.data.eq(self.write.data[j])]
        return m


class _WriteHarness(wiring.Component):
    def __init__(self, cfg):
        self.plan = plan = TrainerPlan(cfg, macro=WeightMemoryMacro)
        self.wp = WritePipeline(cfg, read_latency=plan.read_latency, count_bits=8)
        self.uu = UpdateUnit(cfg, loss_bits=plan.loss_bits,
                             product_bits=plan.product_max.bit_length(), max_shift=plan.max_shift,
                             lanes=plan.write_lanes)
        self.macros = [plan.macro(c) for c in cfg.layer_cims]
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.wp, m.submodules.uu = self.wp, self.uu
        wiring.connect(m, self.uu.op, self.wp.upd)
        for l, mac in enumerate(self.macros):
            m.submodules[f"cim{l}"] = mac
            wiring.connect(m, mac.read, getattr(self.wp, f"read{l}"))
            wiring.connect(m, mac.write, getattr(self.wp, f"write{l}"))
        return m


def write_pipeline_run(cfg, w0, z, diff):
    dut = _WriteHarness(cfg)
    wp, uu, d, P = dut.wp, dut.uu, cfg.params, cfg.engine.lanes
    transfers = [z[k:k + P].tolist() + [0] * (P - len(z[k:k + P])) for k in range(0, d, P)]
    out = {"phase_cycles": []}

    async def write_phase(ctx, phase):
        ctx.set(wp.idle, 0)
        ctx.set(phase, 1)
        t, cycles = 0, 0
        while cycles < 4 * d:
            ctx.set(wp.z.valid, t < len(transfers))
            ctx.set(wp.z.payload, transfers[min(t, len(transfers) - 1)])
            fire = ctx.get(wp.z.ready) and t < len(transfers)
            done = ctx.get(wp.done)
            await ctx.tick()
            cycles += 1
            t += fire
            if done:
                break
        ctx.set(phase, 0)
        ctx.set(wp.idle, 1)
        await ctx.tick()                        # a phase of another kind in between
        out["phase_cycles"].append(cycles)

    async def bench(ctx):
        ctx.set(wp.idle, 1)
        ctx.set(uu.restart, 1)
        for i, v in enumerate(w0.tolist()):
            ctx.set(wp.init_en, 1)
            ctx.set(wp.init_addr, i)
            ctx.set(wp.init_data, v)
            await ctx.tick()
        ctx.set(wp.init_en, 0)
        ctx.set(uu.restart, 0)
        await write_phase(ctx, wp.plus)
        await write_phase(ctx, wp.minus)
        ctx.set(uu.diff, diff)
        ctx.set(uu.latch, 1)
        await ctx.tick()
        ctx.set(uu.latch, 0)
        await write_phase(ctx, wp.update)
        w, c = [], []
        for i in range(d):
            ctx.set(wp.rb_addr, i)
            await ctx.tick()
            w.append(ctx.get(wp.rb_weight))
            c.append(ctx.get(wp.rb_count))
        out["weights"], out["counts"] = w, c

    simulate(dut, bench)
    return out, dut.plan


def test_write_pipeline_weights_counts_and_sparse_words():
    """Perturb +, perturb −, update with a sparse word vector (3 of 4 words zero): the final
    weights and the write counts equal the golden step's, zero words are never written, and
    every phase takes the cycle model's cycles."""
    cfg = TrainerConfig()
    lo, hi = cfg.weight_range
    g = torch.Generator().manual_seed(4)
    d = cfg.params
    w0 = torch.randint(lo, hi + 1, (d,), generator=g)
    w0[:8] = hi
    z = torch.randint(cfg.engine.word_min, cfg.engine.word_max + 1, (d,), generator=g)
    z[torch.rand(d, generator=g) < 0.75] = 0
    diff = 3000
    out, plan = write_pipeline_run(cfg, w0, z, diff)
    delta = perturbation(cfg, z)
    w_new = torch.clamp(w0 + update_delta(cfg, diff, z), lo, hi)
    writes = 2 * (delta != 0).long() + (w_new != w0 - delta).long()
    assert out["weights"] == w_new.tolist()
    assert out["counts"] == writes.tolist()
    assert all(c == 0 for c, zi in zip(out["counts"], z.tolist()) if zi == 0)
    rho = float((z != 0).double().mean())
    assert abs(sum(out["counts"]) / d - 3 * rho) < 0.05
    b = plan.cycle_breakdown()
    assert out["phase_cycles"] == [b["perturb_plus"], b["perturb_minus"], b["update"]]
    # a wrong golden (no write suppression: three writes per weight) is caught
    assert out["counts"] != [3] * d


@pytest.mark.parametrize("kw", [
    dict(hidden=(2,), write_lanes=1),                      # one weight per cycle
    dict(hidden=(3,), write_lanes=4),                      # layer 1 ends mid-transfer, tail 3
    dict(hidden=(5, 3), write_lanes=2, engine=EngineConfig(strategy="gauss-clt", lanes=8)),
    dict(hidden=(3,), write_lanes=16),                     # a group is a whole transfer
], ids=["L1", "mlp-L4", "deep-L2-P8", "mlp-L16"])
def test_write_pipeline_banked_lanes(kw):
    """Banked writes for several write_lanes and shapes: the final weights and write counts are
    the golden step's, and every phase takes the cycle model's cycles
    (W = sum of ceil(layer size / L))."""
    cfg = TrainerConfig(**kw)
    lo, hi = cfg.weight_range
    g = torch.Generator().manual_seed(9)
    d = cfg.params
    w0 = torch.randint(lo, hi + 1, (d,), generator=g)
    z = torch.randint(cfg.engine.word_min, cfg.engine.word_max + 1, (d,), generator=g)
    z[torch.rand(d, generator=g) < 0.3] = 0
    diff = -2500
    out, plan = write_pipeline_run(cfg, w0, z, diff)
    delta = perturbation(cfg, z)
    w_new = torch.clamp(w0 + update_delta(cfg, diff, z), lo, hi)
    assert out["weights"] == w_new.tolist()
    assert out["counts"] == (2 * (delta != 0).long() + (w_new != w0 - delta).long()).tolist()
    L = cfg.write_lanes
    groups = sum(-(-n // L) for n in cfg.layer_sizes)
    assert plan.write_pass_cycles == groups
    b = plan.cycle_breakdown()
    assert out["phase_cycles"] == [b["perturb_plus"], b["perturb_minus"], b["update"]]
    assert out["phase_cycles"][0] == groups + 2            # RL = 1, then the write register
    # a wrong cycle model (one weight per cycle) is caught unless L = 1
    assert (out["phase_cycles"][0] == d + 2) == (L == 1)


# -- sample memory ------------------------------------------------------------------------------

def test_sample_memory_draws_in_batch_order():
    ib, cap, stride, batch, n, steps = 4, 16, 7, 3, 11, 4
    dut = SampleMemory(ib, capacity=cap, stride=stride, batch=batch)
    g = torch.Generator().manual_seed(5)
    pixels = torch.randint(0, 1 << ib, (n, PIXELS), generator=g)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    seen = []

    async def bench(ctx):
        ctx.set(dut.writable, 1)
        for p, lab in zip(pixels.tolist(), labels.tolist()):
            await stream_put(ctx, dut.samples, {"x": p, "label": lab})
        ctx.set(dut.writable, 0)
        ctx.set(dut.restart, 1)
        await ctx.tick()
        ctx.set(dut.restart, 0)
        while not ctx.get(dut.ready):
            await ctx.tick()
        ctx.set(dut.x.ready, 1)
        for _ in range(steps):
            for p in range(2):                      # both forward passes of a step
                ctx.set(dut.active, 1)
                got = []
                while len(got) < batch:
                    if ctx.get(dut.x.valid):
                        got.append((list(ctx.get(dut.x.payload)), ctx.get(dut.label)))
                    await ctx.tick()
                ctx.set(dut.next_batch, p == 1)
                await ctx.tick()
                ctx.set(dut.next_batch, 0)
                ctx.set(dut.active, 0)
                await ctx.tick()
                seen.append(got)

    simulate(dut, bench)
    idx = batch_indices(n, batch, 0, steps, stride)
    want = [[(pixels[i].tolist() + [(1 << ib) - 1], int(labels[i])) for i in idx[s].tolist()]
            for s in range(steps) for _ in range(2)]
    assert seen == want
    wrong = batch_indices(n, batch, 0, steps, stride + 1)
    assert [[lab for _, lab in got] for got in seen[::2]] != labels[wrong].tolist()


# -- controller ---------------------------------------------------------------------------------

def test_controller_sequence_results_and_step_cycles():
    W, F, U, steps = 5, 7, 6, 3
    dut = Controller(loss_bits=12, diff_bits=8)
    lengths = {State.PERTURB_PLUS: W, State.PERTURB_MINUS: W, State.UPDATE: U,
               State.FORWARD_PLUS: F, State.FORWARD_MINUS: F}
    trace, results = [], []

    async def bench(ctx):
        ctx.set(dut.steps, steps)
        ctx.set(dut.prepared, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        k, prev = 0, None
        for _ in range(400):
            state = ctx.get(dut.state)
            k = k + 1 if state == prev else 0
            prev = state
            if not trace or trace[-1] != state:
                trace.append(state)
            n = lengths.get(state)
            ctx.set(dut.writes_done, n is not None and state in (State.PERTURB_PLUS,
                                                                 State.PERTURB_MINUS,
                                                                 State.UPDATE) and k == n - 1)
            ctx.set(dut.forward_done, n is not None and state in (State.FORWARD_PLUS,
                                                                  State.FORWARD_MINUS)
                    and k == n - 1)
            step = len(results)
            ctx.set(dut.loss, 100 + step if state in (State.FORWARD_PLUS, State.REPLAY_1,
                                                      State.PERTURB_MINUS) else 40 - step)
            ctx.set(dut.g_step, -step)
            if state == State.DIFF:
                assert ctx.get(dut.diff) == (100 + step) - (40 - step)
            await ctx.tick()
            if ctx.get(dut.step_done):
                results.append((ctx.get(dut.step), ctx.get(dut.l_plus), ctx.get(dut.l_minus),
                                ctx.get(dut.g), ctx.get(dut.step_cycles)))
            if ctx.get(dut.done):
                trace.append(ctx.get(dut.state))
                break

    simulate(dut, bench)
    cycles = 2 * W + 2 * F + U + 1 + 3
    assert results == [(s, 100 + s, 40 - s, -s, cycles) for s in range(steps)]
    assert trace[:12] == [State.LOAD, State.PREP, State.PERTURB_PLUS, State.FORWARD_PLUS,
                          State.REPLAY_1, State.PERTURB_MINUS, State.FORWARD_MINUS, State.DIFF,
                          State.REPLAY_2, State.UPDATE, State.ADVANCE, State.PERTURB_PLUS]
    assert trace[-1] == State.IDLE
    # a wrong expectation (one cycle per phase less) is caught
    assert results[0][4] != cycles - 1


# -- the plan (cycle model) for any shape -------------------------------------------------------

def test_plan_follows_the_shape_lanes_and_tiles():
    """The plan's numbers from first principles for a deep MLP on small tiles with 4 lanes."""
    from zohw.cim_config import CIMConfig

    cfg = TrainerConfig(hidden=(20, 7), write_lanes=4, cim=CIMConfig(tile="32x8"))
    plan = TrainerPlan(cfg)
    sizes = [(64 + 1) * 20, (20 + 1) * 7, (7 + 1) * 10]
    assert list(cfg.layer_sizes) == sizes and plan.params == sum(sizes)
    assert plan.layer_groups == tuple(-(-n // 4) for n in sizes)
    assert plan.write_pass_cycles == sum(-(-n // 4) for n in sizes)
    assert plan.tiles == ((3, 3), (1, 1), (1, 2))
    assert (plan.inputs, plan.classes, plan.label_bits) == (64, 10, 4)
    cpv = cfg.cim.passes
    fw = 1 + cfg.batch * max(cpv, 10) + (3 * cpv - max(cpv, 10) + 2) + 10 + 1
    assert plan.forward_cycles == fw
    b = plan.cycle_breakdown()
    assert b["perturb_plus"] == b["perturb_minus"] == plan.write_pass_cycles + 2
    assert b["update"] == plan.write_pass_cycles + 3
    assert plan.cycles_per_step == 3 * plan.write_pass_cycles + 7 + 2 * fw + 4
    assert plan.capacity == 1433                            # the digits train split
    assert plan.label_queue >= 3 * 3


def test_plan_sample_memory_limit():
    from zohw.errors import ConfigError
    from zohw.hw.plan import SAMPLE_MEMORY_BITS_MAX

    with pytest.raises(ConfigError, match=f"exceeds the limit of {SAMPLE_MEMORY_BITS_MAX} bits"):
        TrainerPlan(TrainerConfig(), capacity=1 << 20)
