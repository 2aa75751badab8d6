"""The model's energy and forces compiled with ``torch.compile``, checked, or eager.

Eagerly, a force call of a small CG model is hundreds of tiny operators whose Python and
dispatch overhead, not their arithmetic, sets the cost: on one CPU thread the default
CGSchNet takes about 3.7 ms per call at 1 replica eagerly and 0.6 ms compiled (Inductor
fuses the forward and the backward into a few C++ loops). Compiling costs tens of seconds
once per run; the batch dimension is compiled dynamic, so removing failed replicas does
not compile again.

The compiled forces are checked against the eager ones on the start positions; a failed
compilation (no C++ compiler, an operator Inductor does not handle) or a mismatch falls
back to eager with the reason logged.
"""

from __future__ import annotations

import logging
import time

import torch

from cgpipe.models.base import EnergyModel
from cgpipe.simulate.base import EnergyAndForces

log = logging.getLogger(__name__)

RTOL = 1e-3
"""Largest force difference allowed, relative to the largest eager force."""


def compiled_forces(energy: torch.nn.Module | object) -> EnergyAndForces:
    """Energies and forces (-dE/dx by autograd) of a compiled ``energy`` callable."""
    compiled = torch.compile(energy, dynamic=True)

    def energy_and_forces(positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            x = positions.detach().requires_grad_(True)
            energies = compiled(x)
            (gradient,) = torch.autograd.grad(energies.sum(), x)
        return energies.detach(), -gradient

    return energy_and_forces


def energy_and_forces(
    model: EnergyModel, example: torch.Tensor, *, compile: bool
) -> EnergyAndForces:
    """The function the integrator calls: ``model``'s energies and forces, compiled where
    ``compile`` and it works and agrees with eager on ``example`` [n, n_beads, 3]."""
    eager = model.energy_and_forces
    if not compile:
        return eager
    start = time.perf_counter()
    try:
        fast = compiled_forces(model.energy)
        energies, forces = fast(example)
    except Exception as error:  # Inductor fails in many ways; eager always works
        log.warning("model not compiled (%s: %s); running eagerly", type(error).__name__, error)
        return eager
    reference = eager(example)[1]
    scale = float(reference.abs().max()) or 1.0
    difference = float((forces - reference).abs().max())
    if not difference <= RTOL * scale:
        log.warning(
            "compiled forces differ from eager ones by %.3g kJ/mol/nm (largest %.3g); "
            "running eagerly",
            difference,
            scale,
        )
        return eager
    log.info(
        "model compiled in %.0f s (forces within %.2g kJ/mol/nm of eager)",
        time.perf_counter() - start,
        difference,
    )
    return fast
