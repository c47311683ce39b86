"""The contract of a loss plug-in (one module per loss in :mod:`zohw.losses`).

A loss is a sum over the classes of one sample, computed by the loss unit one class per cycle
(:class:`zohw.hw.loss_unit.LossUnit`). A plug-in declares four views of the same function:

* :meth:`Loss.term` — the hardware term of class j (an Amaranth expression, never negative);
  the unit sums it over the C classes of every sample of the mini-batch;
* :meth:`Loss.golden` — the per-sample integer loss in vectorized torch (the golden model);
* :meth:`Loss.float_loss` — the same on real-valued scores (the float references); by default
  :meth:`golden` itself, which works on float tensors as well;
* :meth:`Loss.sample_max` — the largest per-sample loss over scores in ``[smin, smax]`` (the
  width of the accumulator follows from it: the sum is never saturated).

Scores are ``s_j = y_j >> logit_shift`` of the output layer's results; ``cfg`` is the
:class:`zohw.train_config.TrainerConfig` (a loss reads its own knobs from it, e.g. ``margin``).
"""

__all__ = ["Loss"]


class Loss:
    #: Registry name (``TrainerConfig.loss``).
    name = None
    #: One-line description for the CLI help.
    help = ""
    #: TrainerConfig fields the loss reads (documentation and CLI help).
    knobs = ()
    #: Tuned update shift of the linear model with the sgd rule (see
    #: :func:`zohw.train_config.default_lr_shift`).
    sgd_lr_shift = 13

    def term(self, cfg, score, score_y, is_y):
        """Amaranth value: the term of one class (``score``) given the true class's score
        ``score_y`` and whether this class is the true one (``is_y``); never negative."""
        raise NotImplementedError

    def golden(self, cfg, s, labels):
        """Per-sample loss of scores ``s`` ``[..., C]`` (int64 or float) with ``labels``
        broadcastable to ``s.shape[:-1]``: a tensor of shape ``s.shape[:-1]``."""
        raise NotImplementedError

    def float_loss(self, cfg, s, labels):
        """Per-sample loss on real-valued scores (no floor): by default :meth:`golden`."""
        return self.golden(cfg, s, labels)

    def sample_max(self, cfg, smin, smax):
        """Largest per-sample loss for every score in ``[smin, smax]``."""
        raise NotImplementedError

    @staticmethod
    def true_scores(s, labels):
        """``s_y`` of every sample, shaped ``[..., 1]``."""
        idx = labels.expand(s.shape[:-1]).unsqueeze(-1)
        return s.gather(-1, idx)

    @staticmethod
    def one_hot(s, labels, value):
        """Zeros like ``s`` with ``value`` at the true class of every sample."""
        idx = labels.expand(s.shape[:-1]).unsqueeze(-1)
        return (s * 0).scatter(-1, idx, value)

    def __repr__(self):
        return f"<loss {self.name}>"
