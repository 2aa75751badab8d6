"""Batched CG dynamics of many replicas with per-replica health.

Many replicas are integrated in one batch by a registered :class:`Integrator`
(``simulate.integrator``, built with its section ``simulate.<integrator>``), each at its
own temperature, in a :class:`Simulation` that owns the state, records in blocks and
resumes after a kill. A replica that blows up — NaN positions, two beads closer than
``min_distance``, a CG bond stretched beyond ``max_bond_stretch`` times its reference
length, or bonds or angles that stay outside the reference's range — is stopped and
recorded with its time to failure while the others go on (:class:`Health`).
"""

from cgpipe.simulate.base import INTEGRATORS, EnergyAndForces, Integrator, State
from cgpipe.simulate.health import Health
from cgpipe.simulate.simulation import Simulation
from cgpipe.simulate.stage import run

__all__ = ["INTEGRATORS", "EnergyAndForces", "Health", "Integrator", "Simulation", "State", "run"]
