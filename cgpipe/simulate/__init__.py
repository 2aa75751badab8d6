"""Batched CG dynamics of many replicas with per-replica health.

Many replicas are integrated in one batch by a registered :class:`Integrator`
(``simulate.integrator``, built with its section ``simulate.<integrator>``). A replica
that blows up — NaN positions, two beads closer than ``min_distance``, or a CG bond
stretched beyond ``max_bond_stretch`` times its prior length — is stopped and recorded
with its time to failure while the others go on.
"""

from cgpipe.simulate.base import INTEGRATORS, ForceFunction, Integrator
from cgpipe.simulate.stage import replica_health, run

__all__ = ["INTEGRATORS", "ForceFunction", "Integrator", "replica_health", "run"]
