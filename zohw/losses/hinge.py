"""Multi-class hinge loss (Weston–Watkins): ``sum_{j != y} max(0, margin + s_j - s_y)``."""

from amaranth.hdl import Mux

from .base import Loss


class Hinge(Loss):
    name = "hinge"
    help = "multi-class hinge, sum over j != y of max(0, margin + s_j - s_y)"
    knobs = ("margin",)
    sgd_lr_shift = 13

    def term(self, cfg, score, score_y, is_y):
        t = cfg.margin + score - score_y
        return Mux(is_y | (t < 0), 0, t)

    def golden(self, cfg, s, labels):
        # the j = y term is exactly margin: summing all classes and subtracting it is exact
        return (cfg.margin + s - self.true_scores(s, labels)).clamp(min=0).sum(-1) - cfg.margin

    def sample_max(self, cfg, smin, smax):
        return (cfg.classes - 1) * (cfg.margin + smax - smin)


LOSS = Hinge()
