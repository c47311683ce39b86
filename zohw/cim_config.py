"""The configuration object of a compute-in-memory (CIM) MAC macro.

:class:`CIMConfig` drives the interface signature and the behavioural macro
(:mod:`zohw.hw.cim`) and the bit-exact golden model (:mod:`zohw.sw.cim`). The arithmetic is
documented in ``docs/cim.md``; in short:

* a weight ``w`` is signed ``weight_bits`` two's complement; the array stores it in offset binary
  ``u = w + 2**(weight_bits - 1)``, split into ``slices = weight_bits // cell_bits`` cells of
  ``cell_bits`` (slice k holds bits ``[k*cell_bits, (k+1)*cell_bits)`` of ``u``);
* an input ``x`` is unsigned ``input_bits``; ``input_mode="serial"`` applies one bit-plane per
  pass (``input_bits`` passes per slice), ``"parallel"`` applies the whole value in one pass;
* the array is built from fixed-size macros (``tile = "ROWSxCOLS"``): the rows are cut into
  :attr:`CIMConfig.row_tiles` row tiles of ``tile_rows`` (the last one partial), the columns
  into :attr:`CIMConfig.col_tiles` column tiles;
* each pass produces one analog column sum per column *and row tile* (only that tile's rows),
  digitised by the tile's ADC that drops :attr:`CIMConfig.adc_shift` LSBs (truncation) and
  saturates at ``2**adc_bits - 1`` (clipping); by default the ADC resolves the tile's full scale
  (``adc_bits = column_sum_bits``: an exact conversion), a smaller ``adc_bits`` truncates;
* the digital periphery shift-adds the reconstructed partial sums of every tile, adds the row
  tiles' results exactly and subtracts the offset term ``2**(weight_bits - 1) * sum(x)``.
"""

import re

from dataclasses import dataclass

from zohw.configbase import Config, ConfigError, param

__all__ = ["INPUT_MODES", "DEFAULT_TILE", "TILE_ROWS_MAX", "TILE_COLS_MAX", "ADC_BITS_MAX",
           "CIMConfig",
           "DIGITS_CIM", "parse_tile"]

INPUT_MODES = ("serial", "parallel")
#: The default macro: 128 rows (a 65-row digits layer fits one row tile) × 32 columns
#: (docs/cim.md: published CIM macros have 64-256 rows); its ADC resolves the 11-bit full
#: scale by default (adc_bits derived: docs/cim.md, "ADC resolution").
DEFAULT_TILE = "128x32"
TILE_ROWS_MAX = 1024
TILE_COLS_MAX = 1024
#: Largest ADC resolution.
ADC_BITS_MAX = 24
_TILE_RE = re.compile(r"([0-9]+)x([0-9]+)")


def parse_tile(text):
    """``"ROWSxCOLS"`` → ``(rows, cols)``; a ConfigError naming ``tile`` otherwise."""
    m = _TILE_RE.fullmatch(text) if isinstance(text, str) else None
    rows, cols = (int(m[1]), int(m[2])) if m else (0, 0)
    if not (1 <= rows <= TILE_ROWS_MAX and 1 <= cols <= TILE_COLS_MAX):
        raise ConfigError(f"tile must be ROWSxCOLS with ROWS from 1 to {TILE_ROWS_MAX} and COLS "
                          f"from 1 to {TILE_COLS_MAX} (e.g. {DEFAULT_TILE}), not {text!r}")
    return rows, cols


def _signed_width(lo, hi):
    """Bits of the narrowest two's complement format holding every integer in [lo, hi]."""
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


def _default_adc_bits(c):
    """the tile's column_sum_bits (at most 24): an exact conversion of every column sum"""
    return min(c.column_sum_bits, ADC_BITS_MAX)


def _default_adc_shift(c):
    """the shift that maps the full-scale column sum onto the ADC range without clipping"""
    return c.default_adc_shift


@dataclass(frozen=True)
class CIMConfig(Config):
    """Configuration of one CIM MAC array (a ``rows`` × ``cols`` weight array, built from
    ``tile`` macros).

    Every field is hardware. The macro's timing (cycles per vector, read latency) is not part
    of the configuration: it belongs to the macro implementation (e.g.
    :attr:`zohw.hw.cim.BehaviouralCIMMacro.cycles_per_vector`).

    ``adc_bits`` left None derives the tile's :attr:`column_sum_bits` (the bits of its full
    scale ``tile_rows * cell_max * plane_max``: an exact conversion; 11 for the default
    128-row tile of 4-bit cells with bit-serial inputs). ``adc_shift`` left None derives
    ``max(0, bitlength(full_scale) - adc_bits)`` from the *tile's* full scale (a macro's ADC is
    sized for its own rows, whatever the layer); a smaller value makes the ADC finer but lets
    large column sums clip.
    """

    rows: int = param(65, lo=1, hi=8192, help="array rows = length of the input vector")
    cols: int = param(10, lo=1, hi=4096, help="array columns = length of the result vector")
    weight_bits: int = param(12, lo=2, hi=16, help="bits of a signed weight")
    cell_bits: int = param(4, lo=1, hi=8,
                           help="bits stored per (multi-level) cell, a divisor of weight_bits")
    input_bits: int = param(4, lo=1, hi=8, help="bits of an unsigned input element")
    adc_bits: int | None = param(None, derive=_default_adc_bits, lo=1, hi=ADC_BITS_MAX,
                                 metavar="BITS",
                                 help="resolution of a tile's column ADC (fewer bits than the "
                                      "tile's column sums truncate: 9 on the 128x32 tile drops "
                                      "2 LSBs and costs MNIST-5k linear 2-3 points, "
                                      "docs/accuracy-mnist-diagnosis.md)")
    input_mode: str = param("serial", choices=INPUT_MODES,
                            help="serial: one input bit-plane per pass; parallel: the whole "
                                 "input in one pass")
    write_lanes: int = param(1, lo=1, hi=64, metavar="N",
                             help="weights written per cycle by the write port")
    tile: str = param(DEFAULT_TILE, kind=str, metavar="ROWSxCOLS",
                      help="the fixed CIM macro size that the array is tiled over; each row "
                           "tile has its own ADC per column")
    adc_shift: int | None = param(None, derive=_default_adc_shift, lo=0,
                                  hi=lambda c: c.default_adc_shift,
                                  help="LSBs the ADC drops")

    def _check(self):
        parse_tile(self.tile)
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
                f"-x{self.input_bits}{mode}-adc{self.adc_bits}t{self.adc_shift}"
                f"-tile{self.tile}")

    def summary(self):
        return (f"rows={self.rows} cols={self.cols} weight_bits={self.weight_bits} "
                f"cell_bits={self.cell_bits} input_bits={self.input_bits} "
                f"input_mode={self.input_mode} adc_bits={self.adc_bits} "
                f"adc_shift={self.adc_shift} write_lanes={self.write_lanes} tile={self.tile}")

    # -- tiling --------------------------------------------------------------------------------

    @property
    def tile_rows(self):
        """Rows of one macro (ROWS of ``tile``)."""
        return parse_tile(self.tile)[0]

    @property
    def tile_cols(self):
        """Columns of one macro (COLS of ``tile``)."""
        return parse_tile(self.tile)[1]

    @property
    def row_tiles(self):
        """Row tiles: ``ceil(rows / tile_rows)``; each adds its own ADC conversions."""
        return -(-self.rows // self.tile_rows)

    @property
    def col_tiles(self):
        """Column tiles: ``ceil(cols / tile_cols)`` (independent, in parallel)."""
        return -(-self.cols // self.tile_cols)

    @property
    def tiles(self):
        """Macros the array occupies: ``row_tiles * col_tiles``."""
        return self.row_tiles * self.col_tiles

    @property
    def padded_rows(self):
        """``row_tiles * tile_rows``: rows past ``rows`` are driven with 0."""
        return self.row_tiles * self.tile_rows

    @property
    def utilisation(self):
        """Fraction of the occupied macros' cells that hold weights:
        ``rows * cols / (tiles * tile_rows * tile_cols)``."""
        return self.words / (self.tiles * self.tile_rows * self.tile_cols)

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
        """A_max: the largest analog column sum of one tile (what its ADC is sized for),
        ``tile_rows * cell_max * plane_max``."""
        return self.tile_rows * self.cell_max * self.plane_max

    @property
    def column_sum_bits(self):
        """Bits of an (exact) column sum of one tile."""
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
        """Largest loss of one ADC conversion: ``A - (q << adc_shift)`` for 0 <= A <= A_max
        (one tile's conversion; a column sums ``row_tiles`` of them per pass)."""
        trunc = (1 << self.adc_shift) - 1
        clip = self.full_scale - (self.adc_max << self.adc_shift)
        return max(trunc, clip)

    @property
    def error_bound(self):
        """Bound on ``W^T x - Y`` for every column: the result is never larger than the exact
        product and at most this much smaller.

        Each pass (k, i) of each row tile loses at most :attr:`pass_error_bound` before it is
        weighted by ``2**(k*cell_bits + i)``, so the bound is ``row_tiles * pass_error_bound *
        sum_k 2**(k*cell_bits) * sum_i 2**i``. Zero when :attr:`adc_exact`.
        """
        slice_weight = sum(1 << (k * self.cell_bits) for k in range(self.slices))
        input_weight = sum(1 << i for i in range(self.input_passes))
        return self.row_tiles * self.pass_error_bound * slice_weight * input_weight


#: The configuration of the digits trainer: 64 pixels + a constant bias input, 10 classes.
DIGITS_CIM = CIMConfig()
