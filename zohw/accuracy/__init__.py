"""The accuracy study: every perturbation strategy trained in hardware arithmetic (the
golden model) beside float MeZO and first-order SGD — :mod:`.study` (one model, by default the
linear digits classifier; ``--verify-rtl`` co-simulates each row's full run) and :mod:`.scale`
(several models of a larger data set, e.g. ``--dataset mnist-5k --model linear --model
mlp:32/pool2``, with a cost table).

``python -m zohw.accuracy --out docs/accuracy [--readme README.md]`` runs it (``make accuracy``);
``--render-only`` re-renders the Markdown, plot and README table from the stored JSON.
"""

from .scale import parse_model, plot_scale, render_scale_markdown, run_scale
from .study import (PEZO_FAMILY, main, plot_study, render_markdown, run_study, summarize,
                    update_readme)

__all__ = ["PEZO_FAMILY", "run_study", "summarize", "render_markdown", "plot_study",
           "update_readme", "main", "parse_model", "run_scale", "render_scale_markdown",
           "plot_scale"]
