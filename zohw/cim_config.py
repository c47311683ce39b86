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

from dataclasses import dataclass

from zohw.configbase import Config, ConfigError, param

__all__ = ["INPUT_MODES", "CIMConfig", "DIGITS_CIM"]

INPUT_MODES = ("serial", "parallel")


def _signed_width(lo, hi):
    """Bits of the narrowest two's complement format holding every integer in [lo, hi]."""
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


def _default_adc_shift(c):
    """the shift that maps the full-scale column sum onto the ADC range without clipping"""
    return c.default_adc_shift


@dataclass(frozen=True)
class CIMConfig(Config):
    """Configuration of one CIM MAC macro (a ``rows`` × ``cols`` weight array).

    Every field is hardware. The macro's timing (cycles per vector, read latency) is not part
    of the configuration: it belongs to the macro implementation (e.g.
    :attr:`zohw.hw.cim.BehaviouralCIMMacro.cycles_per_vector`).

    ``adc_shift`` left None derives ``max(0, bitlength(full_scale) - adc_bits)``; a smaller value
    makes the ADC finer but lets large column sums clip.
    """

    rows: int = param(65, lo=1, hi=1024, help="array rows = length of the input vector")
    cols: int = param(10, lo=1, hi=256, help="array columns = length of the result vector")
    weight_bits: int = param(12, lo=2, hi=16, help="bits of a signed weight")
    cell_bits: int = param(4, lo=1, hi=8,
                           help="bits stored per (multi-level) cell, a divisor of weight_bits")
    input_bits: int = param(4, lo=1, hi=8, help="bits of an unsigned input element")
    adc_bits: int = param(8, lo=1, hi=24, metavar="BITS", help="resolution of the column ADC")
    input_mode: str = param("serial", choices=INPUT_MODES,
                            help="serial: one input bit-plane per pass; parallel: the whole "
                                 "input in one pass")
    write_lanes: int = param(1, lo=1, hi=64, metavar="N",
                             help="weights written per cycle by the write port")
    adc_shift: int | None = param(None, derive=_default_adc_shift, lo=0,
                                  hi=lambda c: c.default_adc_shift,
                                  help="LSBs the ADC drops")

    def _check(self):
        if self.weight_bits % self.cell_bits:
            divisors = [d for d in range(1, 9) if self.weight_bits % d == 0]
            raise ConfigError(
                f"cell_bits must divide weight_bits ({self.weight_bits}): one of "
                f"{', '.join(map(str, divisors))}, not {self.cell_bits}")

    # -- identity ------------------------------------------------------------------------------

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


#: The configuration of the digits trainer: 64 pixels + a constant bias input, 10 classes.
DIGITS_CIM = CIMConfig()
