"""Squared error against one-hot targets: ``sum_j (s_j - t_j)**2``, ``t_y = target``."""

from amaranth.hdl import Mux

from .base import Loss


class MSE(Loss):
    name = "mse"
    help = "squared error, sum over j of (s_j - t_j)**2 with t_y = target, 0 elsewhere"
    knobs = ("target",)
    # its loss differences are about 2|s - t| ≈ 2**4 times the hinge loss's
    sgd_lr_shift = 17

    def term(self, cfg, score, score_y, is_y):
        e = score - Mux(is_y, cfg.target, 0)
        return e * e

    def golden(self, cfg, s, labels):
        return ((s - self.one_hot(s, labels, cfg.target)) ** 2).sum(-1)

    def sample_max(self, cfg, smin, smax):
        t = cfg.target
        return cfg.classes * max((smin - t) ** 2, (smax - t) ** 2, smin ** 2, smax ** 2)


LOSS = MSE()
