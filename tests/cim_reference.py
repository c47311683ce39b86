"""The CIM macro's arithmetic written out element by element from docs/cim.md, for the tests
(independent of the vectorised golden model :func:`zohw.sw.cim.cim_matvec`)."""

import torch


def scalar_reference(cfg, w, x, per_tile=True):
    """Element-by-element transcription of docs/cim.md (independent of the vectorised model):
    every row tile of ``tile_rows`` rows has its own ADC per column. ``per_tile=False`` is the
    deliberately wrong model: one ADC over all the rows of a column."""
    tile_rows = int(cfg.tile.split("x")[0]) if per_tile else cfg.rows
    out = []
    for xv in x.tolist():
        row = []
        for c in range(cfg.cols):
            y = 0
            for t0 in range(0, cfg.rows, tile_rows):
                for k in range(cfg.slices):
                    for i in range(cfg.input_passes):
                        a = 0
                        for r in range(t0, min(t0 + tile_rows, cfg.rows)):
                            u = int(w[r, c]) + (1 << (cfg.weight_bits - 1))
                            cell = (u >> (k * cfg.cell_bits)) & ((1 << cfg.cell_bits) - 1)
                            drive = (xv[r] >> i) & 1 if cfg.input_mode == "serial" else xv[r]
                            a += cell * drive
                        q = min(a >> cfg.adc_shift, (1 << cfg.adc_bits) - 1)
                        y += (q << cfg.adc_shift) << (k * cfg.cell_bits + i)
            y -= (1 << (cfg.weight_bits - 1)) * sum(xv)
            row.append(y)
        out.append(row)
    return torch.tensor(out, dtype=torch.int64)
