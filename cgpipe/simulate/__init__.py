"""Batched CG Langevin dynamics with per-replica health.

Many replicas are integrated in one batch with the BAOAB splitting (Leimkuhler &
Matthews 2013), which samples configurations with small time-step bias. A replica that
blows up — NaN positions, two beads closer than ``min_distance``, or a CG bond
stretched beyond ``max_bond_stretch`` times its prior length — is stopped and recorded
with its time to failure while the others go on.
"""

from cgpipe.simulate.langevin import BAOAB
from cgpipe.simulate.run import simulate_fold

__all__ = ["BAOAB", "simulate_fold"]
