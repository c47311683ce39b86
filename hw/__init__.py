"""Amaranth descriptions of the zeroth-order training datapath."""
