"""A zeroth-order ``torch.optim`` optimizer driven by the hardware's exact perturbation words.

:class:`ZOOptimizer` trains any :class:`torch.nn.Module` the way MeZO (Malladi et al., arXiv
2305.17333) and the zohw trainer do: no back-propagation, two forward passes per step.

One step ``s`` (``d`` = the number of elements of every parameter given, in parameter-group
order, each parameter flattened row-major)::

    w += eps * z_s            ; L+ = closure()
    w -= 2 * eps * z_s        ; L- = closure()
    g  = (L+ - L-) / (2 * eps)                     # projected gradient, one scalar
    w += eps * z_s            # restore ...
    w  = w * (1 - lr * weight_decay) - lr * g * z_s  # ... and update, in the same pass

``z_s`` is never stored: it is regenerated for each of the three passes, ``chunk`` words at a
time, as the engine replays a step from its checkpoint. Memory beyond the model is O(chunk).

Where ``z`` comes from (argument ``z``):

- a strategy name of :data:`zohw.strategies.STRATEGIES`, or an :class:`~zohw.config.EngineConfig`:
  the exact words the RTL engine of that configuration emits after loading ``seed``, times the
  LSB ``2**-frac_bits``. Optimizer step ``s`` is engine step ``s`` (counted from
  ``first_step``); element ``k`` of the flat parameter vector is lane ``k mod P`` of transfer
  ``k // P`` of the step — :func:`zohw.sw.perturb.golden_perturbations` ``(config, seed, d,
  steps)[s, k]``, which ``zohw sim perturb --dump`` writes and the co-simulation checks against
  the RTL. For the transfers of one chunk, the stream generators' states are computed by
  jump-ahead — the golden model's GF(2) matrix powers (:func:`zohw.sw.perturb.linear_sequence`),
  cached and applied to packed 32-bit states through byte tables (:func:`packed_states`) — and
  mapped to words by the strategy's own golden word map (``golden_words``).
- ``"gaussian"``: the float baseline, ``torch.randn`` from a ``torch.Generator`` seeded with
  ``(seed, step)`` (MeZO's seed trick). Its words depend on ``chunk`` as well (each chunk is
  one ``randn`` call).
"""

import functools
import math
import numbers

import torch

from zohw.config import EngineConfig
from zohw.errors import ConfigError
from zohw.sources import mix_seed
from zohw.strategies import STRATEGIES
from zohw.sw.train import single_thread

__all__ = ["ZOOptimizer", "WordStream", "GaussianStream", "make_stream", "packed_states",
           "PackedFields", "GAUSSIAN", "DEFAULT_CHUNK"]

#: ``z`` of the float baseline.
GAUSSIAN = "gaussian"
#: Words generated at a time unless ``chunk`` is given (1 MiB of float32).
DEFAULT_CHUNK = 1 << 18


def _check_int(name, value, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo or (
            hi is not None and value > hi):
        allowed = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
        raise ConfigError(f"{name} must be an integer {allowed}, not {value!r}")
    return int(value)


def _check_float(name, value, *, positive):
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value) and (value > 0 if positive else value >= 0))
    if not ok:
        raise ConfigError(f"{name} must be a {'positive' if positive else 'non-negative'} "
                          f"finite number, not {value!r}")
    return float(value)


# -- packed generator states: the golden model's GF(2) jump-ahead, 32 bits per int64 ----------

@functools.lru_cache(maxsize=None)
def _power(source, k):
    """``M**(2**k)`` of ``source``'s step matrix, as a float32 GF(2) matrix (cached)."""
    from zohw.sources import step_matrix

    if k == 0:
        return torch.tensor(step_matrix(source), dtype=torch.float32)
    m = _power(source, k - 1)
    return torch.remainder(m @ m, 2.0)


_BYTES = ((torch.arange(256)[:, None] >> torch.arange(8)) & 1).to(torch.float32)   # [256, 8]
_WEIGHTS = torch.ones(32, dtype=torch.int64) << torch.arange(32)


@functools.lru_cache(maxsize=None)
def _tables(source, k):
    """Byte tables of ``M**(2**k)``: int64 [4, 256]; the image of a packed state x is the XOR of
    ``T[i][(x >> 8i) & 255]`` over its four bytes (the matrix is linear over GF(2))."""
    m = _power(source, k)
    cols = m.T.reshape(4, 8, 32)                       # images of the unit vectors, by byte
    images = torch.remainder(_BYTES @ cols, 2.0)       # [4, 256, 32]
    return (images.to(torch.int64) * _WEIGHTS).sum(-1)


def _apply_packed(tables, x):
    out = tables[0][x & 255]
    for i in range(1, 4):
        out ^= tables[i][(x >> (8 * i)) & 255]
    return out


def packed_states(source, init, start, count):
    """States ``M**(start + i) @ init`` of n 32-bit generators for i in range(count): int64
    [count, n] — :func:`zohw.sw.perturb.linear_sequence` packed, with cached matrix powers."""
    x = torch.tensor(init, dtype=torch.int64)
    e, k = start, 0
    while e:                                           # jump ahead: M**start
        if e & 1:
            x = _apply_packed(_tables(source, k), x)
        e >>= 1
        k += 1
    seq, k = x[None], 0
    while seq.shape[0] < count:                        # doubling: [0, L) -> [0, 2L)
        seq = torch.cat([seq, _apply_packed(_tables(source, k), seq[:count - seq.shape[0]])])
        k += 1
    return seq


class PackedFields:
    """:class:`zohw.strategies.base.GoldenFields` over packed generator states (int64 [count,
    n], generator 0 in the low bits of the wide word): the same ``unsigned``/``signed``."""

    def __init__(self, states, layout):
        self._states, self._layout = states, layout

    def unsigned(self, name):
        lsb, width, count = self._layout[name]
        n = self._states.shape[1]
        bit = lsb + width * torch.arange(count)
        g, sh = bit // 32, bit % 32
        v = self._states[:, g] >> sh
        if bool((sh + width > 32).any()):                               # across two words
            v = v | (self._states[:, (g + 1).clamp(max=n - 1)] << (32 - sh))
        return v & ((1 << width) - 1)

    def signed(self, name):
        v, width = self.unsigned(name), self._layout[name][1]
        return v - ((v >> (width - 1)) & 1) * (1 << width)


class WordStream:
    """The exact word stream of one engine configuration and seed, in chunks.

    :meth:`chunks` yields the words of flat indices ``[k0, k1)`` of a step of ``d`` weights as
    int64 tensors of at most ``chunk`` words, generating only the transfers they lie in.
    Generator strategies need O(chunk) memory; pool strategies (``pezo-shift``,
    ``pezo-block``) keep their N pool words and one step's pool row addresses (int16, d/P·P
    entries: their strategies expose rows per whole step only, see docs/optim.md).
    """

    exact = True

    def __init__(self, config, seed):
        from zohw.sw.perturb import golden_pool

        self._config, self._seed = config, seed
        self._strategy = config.strategy_object
        self._pool = None
        if self._strategy.pool:
            self._pool = golden_pool(config, seed).reshape(config.pool_rows, config.lanes)
        self._rows_key, self._rows = None, None
        # the stream generators' seeds, as zohw.sw.perturb.stream_bits loads them
        base, n = self._strategy.stream_base, self._strategy.stream_generators(config)
        self._init = [mix_seed(seed, base + g) for g in range(n)]

    @property
    def config(self):
        return self._config

    @property
    def seed(self):
        return self._seed

    @property
    def scale(self):
        """Value of one word: the LSB 2**-frac_bits."""
        return self._config.lsb

    def _rows_of_step(self, C, step):
        if self._rows_key != (C, step):
            rows = self._strategy.golden_rows(self._config, self._seed, C, 1, step)
            self._rows_key, self._rows = (C, step), rows.to(torch.int16)
        return self._rows

    def words(self, step, d, k0, k1):
        """int64 words of flat indices ``k0 … k1 - 1`` of step ``step`` (``d`` weights)."""
        from zohw.sw.perturb import cycles_per_step

        cfg, P = self._config, self._config.lanes
        C = cycles_per_step(cfg, d)
        t0, t1 = k0 // P, -(-k1 // P)
        start = step * C + t0
        positions = torch.arange(start, start + t1 - t0)
        reads = None
        if self._pool is not None:
            rows = self._rows_of_step(C, step)[t0:t1].to(torch.int64)
            reads = self._pool[rows, torch.arange(P)]
        fields = None
        if self._init:
            states = packed_states(cfg.source, self._init, start + 1, t1 - t0)
            fields = PackedFields(states, self._strategy.stream_layout(cfg))
        w = self._strategy.golden_words(cfg, fields, positions, reads).reshape(-1)
        return w[k0 - t0 * P:k1 - t0 * P]

    def chunks(self, step, d, chunk):
        for k0 in range(0, d, chunk):
            yield self.words(step, d, k0, min(d, k0 + chunk))


class GaussianStream:
    """``torch.randn`` words, regenerated from a generator seeded with ``(seed, step)``."""

    exact = False
    scale = 1.0
    config = None

    def __init__(self, seed):
        self._seed = seed

    @property
    def seed(self):
        return self._seed

    def chunks(self, step, d, chunk):
        gen = torch.Generator().manual_seed((self._seed << 32) + step)
        for k0 in range(0, d, chunk):
            yield torch.randn(min(chunk, d - k0), generator=gen)


def make_stream(z, seed):
    """The word stream of ``z``: ``"gaussian"``, a strategy name or an EngineConfig."""
    seed = _check_int("seed", seed, 0, 0xFFFF_FFFF)
    if isinstance(z, EngineConfig):
        return WordStream(z, seed)
    if z == GAUSSIAN:
        return GaussianStream(seed)
    if isinstance(z, str) and z in STRATEGIES:
        return WordStream(EngineConfig(strategy=z), seed)
    raise ConfigError(f"z must be {GAUSSIAN!r}, a strategy name ({', '.join(STRATEGIES)}) or an "
                      f"EngineConfig, not {z!r}")


class ZOOptimizer(torch.optim.Optimizer):
    """Zeroth-order (SPSA / MeZO) optimizer whose perturbations are a zohw engine's words.

    Parameters
    ----------
    params : iterable of tensors or of dicts (parameter groups)
        Every element of every parameter is perturbed (d = their total size); the flat order —
        groups in order, parameters in order, each flattened row-major — maps parameter
        element k to word k of the engine step. Parameters must be contiguous.
    lr : float
        Learning rate (per group): ``w -= lr * g * z``.
    eps : float
        Perturbation scale: the loss is probed at ``w ± eps * z``. One value for all groups.
    z : str or EngineConfig
        ``"gaussian"`` (float baseline, ``torch.randn``), a strategy name (its default
        :class:`~zohw.config.EngineConfig`) or an EngineConfig (lanes, width, knobs, source):
        the exact words of that engine, times its LSB.
    seed : int
        32-bit seed, the value loaded into the engine (``zohw sim perturb --seed``).
    chunk : int
        Words generated at a time; memory for z is O(chunk). Results of exact strategies do
        not depend on it.
    weight_decay : float
        Decoupled from g: ``w *= 1 - lr * weight_decay`` in the update pass (per group).
    first_step : int
        Engine step of the first :meth:`step` (to resume a run; also kept in ``state_dict``).

    :meth:`step` takes a closure that evaluates the model and returns the loss (no
    ``backward`` needed; it runs under ``torch.no_grad``), calls it twice and returns the mean
    of the two losses as a float tensor. After a step, :attr:`last` holds ``loss_plus``,
    ``loss_minus``, ``projected_grad`` and ``step`` (the engine step it used); :attr:`stats`
    counts ``passes``, ``chunks`` and the ``largest_chunk`` generated.
    """

    def __init__(self, params, lr=1e-3, eps=1e-3, *, z="pezo-otf", seed=0,
                 chunk=DEFAULT_CHUNK, weight_decay=0.0, first_step=0):
        lr = _check_float("lr", lr, positive=True)
        eps = _check_float("eps", eps, positive=True)
        weight_decay = _check_float("weight_decay", weight_decay, positive=False)
        self._chunk = _check_int("chunk", chunk, 1)
        self._stream = make_stream(z, seed)
        super().__init__(params, {"lr": lr, "eps": eps, "weight_decay": weight_decay})
        for group in self.param_groups:
            _check_float("lr", group["lr"], positive=True)
            _check_float("weight_decay", group["weight_decay"], positive=False)
            if group["eps"] != eps:
                raise ConfigError(f"eps must be the same in every parameter group ({eps}), "
                                  f"not {group['eps']!r}")
            for p in group["params"]:
                if not p.is_contiguous():
                    raise ConfigError(f"parameters must be contiguous, not one of shape "
                                      f"{tuple(p.shape)} and strides {p.stride()}")
        self._anchor = self.param_groups[0]["params"][0]
        self.state[self._anchor]["zo_step"] = _check_int("first_step", first_step, 0)
        self.last = None
        self.stats = {"passes": 0, "chunks": 0, "largest_chunk": 0}

    # -- what the optimizer is --------------------------------------------------------------

    @property
    def stream(self):
        """The word source (:class:`WordStream` or :class:`GaussianStream`)."""
        return self._stream

    @property
    def chunk(self):
        return self._chunk

    @property
    def step_index(self):
        """The engine step the next :meth:`step` uses."""
        return self.state[self._anchor]["zo_step"]

    @property
    def num_params(self):
        """d: elements perturbed per step."""
        return sum(p.numel() for g in self.param_groups for p in g["params"])

    # -- passes ---------------------------------------------------------------------------

    def _pass(self, step, apply):
        """Walk the chunks of step ``step``'s z over the flat parameters: ``apply(flat view,
        z segment, group)`` for each overlap. One intra-op thread: the many small tensor
        operations of a chunk only wait for each other's threads (the closure keeps the
        caller's setting)."""
        with single_thread():
            self._walk(step, apply)

    def _walk(self, step, apply):
        d = self.num_params
        stream, scale = self._stream, self._stream.scale
        segments = ((p.data.view(-1), g) for g in self.param_groups for p in g["params"])
        flat, group = next(segments)
        offset = 0
        self.stats["passes"] += 1
        for words in stream.chunks(step, d, self._chunk):
            self.stats["chunks"] += 1
            self.stats["largest_chunk"] = max(self.stats["largest_chunk"], words.numel())
            words = words.to(dtype=flat.dtype, device=flat.device)
            if scale != 1.0:
                words.mul_(scale)                    # exact: a power of two
            used = 0
            while used < words.numel():
                if offset == flat.numel():
                    flat, group = next(segments)
                    offset = 0
                n = min(words.numel() - used, flat.numel() - offset)
                apply(flat[offset:offset + n], words[used:used + n], group)
                used += n
                offset += n

    def perturbation(self, step=None):
        """The whole z of engine step ``step`` (default: the next) as one flat float tensor of
        d elements, for inspection and tests — this one *is* O(d)."""
        step = self.step_index if step is None else _check_int("step", step, 0)
        dtype = self._anchor.dtype
        with single_thread():
            words = self._stream.chunks(step, self.num_params, self._chunk)
            return torch.cat([w.to(dtype) for w in words]) * self._stream.scale

    @torch.no_grad()
    def step(self, closure):
        """One zeroth-order step: perturb, ``closure()``, perturb back twice, ``closure()``,
        restore and update. Returns ``(L+ + L-) / 2``."""
        if closure is None:
            raise ConfigError("closure must be a function that evaluates the model and returns "
                              "the loss, not None")
        s = self.step_index
        eps = self.param_groups[0]["eps"]
        self._pass(s, lambda w, z, g: w.add_(z, alpha=eps))
        loss_plus = float(closure())
        self._pass(s, lambda w, z, g: w.add_(z, alpha=-2 * eps))
        loss_minus = float(closure())
        grad = (loss_plus - loss_minus) / (2 * eps)

        def update(w, z, g):
            w.add_(z, alpha=eps)
            if g["weight_decay"]:
                w.mul_(1 - g["lr"] * g["weight_decay"])
            w.add_(z, alpha=-g["lr"] * grad)

        self._pass(s, update)
        self.state[self._anchor]["zo_step"] = s + 1
        self.last = {"step": s, "loss_plus": loss_plus, "loss_minus": loss_minus,
                     "projected_grad": grad}
        return torch.tensor((loss_plus + loss_minus) / 2)
