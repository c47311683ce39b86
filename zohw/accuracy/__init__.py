"""The digits accuracy study: every perturbation strategy trained in hardware arithmetic (the
golden model) beside float MeZO and first-order SGD — :mod:`.study`.

``python -m zohw.accuracy --out docs/accuracy [--readme README.md]`` runs it (``make accuracy``);
``--render-only`` re-renders the Markdown, plot and README table from the stored JSON.
"""

from .study import (PEZO_FAMILY, main, plot_study, render_markdown, run_study, summarize,
                    update_readme)

__all__ = ["PEZO_FAMILY", "run_study", "summarize", "render_markdown", "plot_study",
           "update_readme", "main"]
