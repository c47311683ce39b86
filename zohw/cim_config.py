"""The configuration object of a compute-in-memory (CIM) MAC macro.

:class:`CIMConfig` drives the interface signature and the behavioural macro
(:mod:`zohw.hw.cim`) and the bit-exact golden model (:mod:`zohw.sw.cim`). The arithmetic is
documented in ``docs/cim.md``; in short:

* a weight ``w`` is signed ``weight_bits`` two's complement; the array stores it in offset binary
  ``u = w + 2**(weight_bits - 1)``, split into ``slices = weight_bits // cell_bits`` cells of
  ``cell_bits`` (slice k holds bits ``[k*cell_bits, (k+1)*cell_bits)`` of ``u``);
* an input ``x`` is unsigned ``input_bits``; ``input_mode="serial"`` applies one bit-plane per
  pass (``input_bits`` passes per slice), ``"parallel"`` applies the whole value in one pass;
* each pass produces one analog column sum per column, digitised by an ADC that drops
  :attr:`CIMConfig.adc_shift` LSBs (truncation) and saturates at ``2**adc_bits - 1`` (clipping);
* the digital periphery shift-adds the reconstructed partial sums and subtracts the offset term
  ``2**(weight_bits - 1) * sum(x)``.
"""

import hashlib
import json
from dataclasses import dataclass, fields, asdict

from zohw.validate import integer as _int

__all__ = ["INPUT_MODES", "CIMConfig", "DIGITS_CIM"]

INPUT_MODES = ("serial", "parallel")


def _signed_width(lo, hi):
    """Bits of the narrowest two's complement format holding every integer in [lo, hi]."""
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


@dataclass(frozen=True)
class CIMConfig:
    """Configuration of one CIM MAC macro (a ``rows`` × ``cols`` weight array).

    Parameters
    ----------
    rows : int
        Array rows = length of the input vector (1 to 1024).
    cols : int
        Array columns = length of the result vector (1 to 256).
    weight_bits : int
        Bits of a signed weight (2 to 16).
    cell_bits : int
        Bits stored per (multi-level) cell: a divisor of ``weight_bits`` (1 to 8).
    input_bits : int
        Bits of an unsigned input element (1 to 8).
    adc_bits : int
        Resolution of the column ADC (1 to 24).
    input_mode : str
        ``"serial"`` (one input bit-plane per pass) or ``"parallel"`` (the whole input, one pass).
    write_lanes : int
        Weights written per cycle through the write port (1 to 64).
    adc_shift : int or None
        LSBs the ADC drops. None (the default) derives the shift that maps the full-scale column
        sum onto the ADC range without clipping: ``max(0, bitlength(full_scale) - adc_bits)``.
        A smaller value (0 to that default) makes the ADC finer but lets large column sums clip.
    """

    rows: int = 65
    cols: int = 10
    weight_bits: int = 12
    cell_bits: int = 4
    input_bits: int = 4
    adc_bits: int = 8
    input_mode: str = "serial"
    write_lanes: int = 1
    adc_shift: int | None = None

    def __post_init__(self):
        _int("rows", self.rows, 1, 1024)
        _int("cols", self.cols, 1, 256)
        _int("weight_bits", self.weight_bits, 2, 16)
        _int("cell_bits", self.cell_bits, 1, 8)
        if self.weight_bits % self.cell_bits:
            divisors = [d for d in range(1, 9) if self.weight_bits % d == 0]
            raise ValueError(
                f"cell_bits must divide weight_bits ({self.weight_bits}): one of "
                f"{', '.join(map(str, divisors))}, not {self.cell_bits}")
        _int("input_bits", self.input_bits, 1, 8)
        _int("adc_bits", self.adc_bits, 1, 24)
        if not isinstance(self.input_mode, str):
            raise TypeError(f"input_mode must be a string, not {self.input_mode!r}")
        if self.input_mode not in INPUT_MODES:
            raise ValueError(
                f"input_mode must be one of {', '.join(INPUT_MODES)}, not {self.input_mode!r}")
        _int("write_lanes", self.write_lanes, 1, 64)
        if self.adc_shift is None:
            object.__setattr__(self, "adc_shift", self.default_adc_shift)
        _int("adc_shift", self.adc_shift, 0, self.default_adc_shift)

    # -- identity ------------------------------------------------------------------------------

    def as_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown CIM configuration keys: {', '.join(sorted(unknown))}")
        return cls(**d)

    @property
    def config_hash(self):
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def name(self):
        mode = "s" if self.input_mode == "serial" else "p"
        return (f"cim{self.rows}x{self.cols}-w{self.weight_bits}c{self.cell_bits}"
                f"-x{self.input_bits}{mode}-adc{self.adc_bits}t{self.adc_shift}")

    def summary(self):
        return (f"rows={self.rows} cols={self.cols} weight_bits={self.weight_bits} "
                f"cell_bits={self.cell_bits} input_bits={self.input_bits} "
                f"input_mode={self.input_mode} adc_bits={self.adc_bits} "
                f"adc_shift={self.adc_shift} write_lanes={self.write_lanes}")

    # -- weight and input formats --------------------------------------------------------------

    @property
    def slices(self):
        """S, cells per weight."""
        return self.weight_bits // self.cell_bits

    @property
    def weight_offset(self):
        """Offset of the offset-binary cell encoding: ``u = w + weight_offset``."""
        return 1 << (self.weight_bits - 1)

    @property
    def weight_min(self):
        return -(1 << (self.weight_bits - 1))

    @property
    def weight_max(self):
        return (1 << (self.weight_bits - 1)) - 1

    @property
    def input_max(self):
        return (1 << self.input_bits) - 1

    @property
    def words(self):
        """Weights in the array (``rows * cols``); flat index ``r * cols + c``."""
        return self.rows * self.cols

    @property
    def write_groups(self):
        """Addresses of the write port: group g holds flat indices g*write_lanes + j."""
        return -(-self.words // self.write_lanes)

    # -- passes and the ADC --------------------------------------------------------------------

    @property
    def input_passes(self):
        """Passes per slice: ``input_bits`` (serial) or 1 (parallel)."""
        return self.input_bits if self.input_mode == "serial" else 1

    @property
    def passes(self):
        """Analog passes (ADC conversions per column) per input vector."""
        return self.slices * self.input_passes

    @property
    def cell_max(self):
        return (1 << self.cell_bits) - 1

    @property
    def plane_max(self):
        """Largest value applied to a row in one pass (1 serial, ``input_max`` parallel)."""
        return 1 if self.input_mode == "serial" else self.input_max

    @property
    def full_scale(self):
        """A_max: the largest analog column sum, ``rows * cell_max * plane_max``."""
        return self.rows * self.cell_max * self.plane_max

    @property
    def column_sum_bits(self):
        """Bits of an (exact) column sum."""
        return self.full_scale.bit_length()

    @property
    def default_adc_shift(self):
        return max(0, self.column_sum_bits - self.adc_bits)

    @property
    def adc_max(self):
        """Largest ADC code (the clipping level): ``2**adc_bits - 1``."""
        return (1 << self.adc_bits) - 1

    @property
    def adc_exact(self):
        """True when the ADC reproduces every column sum exactly (no truncation, no clipping)."""
        return self.adc_shift == 0 and self.full_scale <= self.adc_max

    @property
    def adc_can_clip(self):
        """True when some column sums saturate the ADC (``A_max >> adc_shift > adc_max``);
        never the case with the default ``adc_shift``."""
        return (self.full_scale >> self.adc_shift) > self.adc_max

    def pass_shift(self, k, i=0):
        """Weight of pass (slice k, input bit i) in the shift-add: ``k*cell_bits + i``."""
        return k * self.cell_bits + i

    # -- results -------------------------------------------------------------------------------

    @property
    def result_min(self):
        """Lower bound of every result: ``-2**(weight_bits-1) * rows * input_max``."""
        return self.weight_min * self.rows * self.input_max

    @property
    def result_max(self):
        """Upper bound of every result: ``(2**(weight_bits-1) - 1) * rows * input_max``.

        The ADC only ever loses value (truncation and clipping round column sums down), so the
        results stay within the range of the exact products W^T x.
        """
        return self.weight_max * self.rows * self.input_max

    @property
    def result_bits(self):
        """Bits of a signed result element (a column of the result stream)."""
        return _signed_width(self.result_min, self.result_max)

    @property
    def pass_error_bound(self):
        """Largest loss of one ADC conversion: ``A - (q << adc_shift)`` for 0 <= A <= A_max."""
        trunc = (1 << self.adc_shift) - 1
        clip = self.full_scale - (self.adc_max << self.adc_shift)
        return max(trunc, clip)

    @property
    def error_bound(self):
        """Bound on ``W^T x - Y`` for every column: the result is never larger than the exact
        product and at most this much smaller.

        Each pass (k, i) loses at most :attr:`pass_error_bound` before it is weighted by
        ``2**(k*cell_bits + i)``, so the bound is ``pass_error_bound * sum_k 2**(k*cell_bits) *
        sum_i 2**i``. Zero when :attr:`adc_exact`.
        """
        slice_weight = sum(1 << (k * self.cell_bits) for k in range(self.slices))
        input_weight = sum(1 << i for i in range(self.input_passes))
        return self.pass_error_bound * slice_weight * input_weight

    # -- timing of the behavioural macro -------------------------------------------------------

    @property
    def cycles_per_vector(self):
        """Latency of :class:`zohw.hw.cim.BehaviouralCIMMacro` per vector: one pass per cycle.

        If the input transfer happens at clock edge n, the result is first valid (sampled) at
        edge ``n + cycles_per_vector``; with an always-ready result stream the macro accepts one
        vector every ``cycles_per_vector`` cycles.
        """
        return self.passes


#: The configuration of the digits trainer: 64 pixels + a constant bias input, 10 classes.
DIGITS_CIM = CIMConfig()
