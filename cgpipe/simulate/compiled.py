"""The model's energy and forces for simulation: SchNet filters tabulated, the call
compiled with ``torch.compile``, each checked once against the plain call, or eager
and exact.

Eagerly, a force call of a small CG model is hundreds of tiny operators whose Python and
dispatch overhead, not their arithmetic, sets the cost: on one CPU thread the default
CGSchNet takes about 3.7 ms per call at 1 replica eagerly and 0.6 ms compiled (Inductor
fuses the forward and the backward into a few C++ loops). Compiling costs tens of seconds
once per run; the batch dimension is compiled dynamic, so removing failed replicas does
not compile again.

The compiled forces are checked against the eager ones on the start positions; a failed
compilation (no C++ compiler, an operator Inductor does not handle) or a mismatch falls
back to eager with the reason logged. Before that, the filters of every SchNet in the
model are tabulated (:mod:`cgpipe.models.filter_table`) and the tabulated forces checked
against the exact ones in the same way.
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

TABLE_RTOL = 1e-4
"""Largest force difference of tabulated filters from exact ones, relative to the largest
exact force (the table's own error is ~1e-5; single precision adds a few 1e-6)."""


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
    model: EnergyModel, example: torch.Tensor, *, compile: bool, filter_table: int = 0
) -> EnergyAndForces:
    """The function the integrator calls: ``model``'s energies and forces, with SchNet
    filters tabulated at ``filter_table`` grid intervals per Gaussian width (0: exact)
    where the forces on ``example`` [n, n_beads, 3] agree with exact ones, compiled where
    ``compile`` and it works and agrees with eager on ``example``."""
    if filter_table:
        tabulate(model, example, filter_table)
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
    difference, scale = _difference(forces, reference)
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


def tabulate(model: EnergyModel, example: torch.Tensor, points_per_width: int) -> None:
    """Tabulate the filters of every SchNet in ``model`` (frozen: in eval mode), or none if
    the forces on ``example`` then differ from the exact ones by more than
    :data:`TABLE_RTOL`."""
    from cgpipe.models.schnet import SchNet

    networks = [module for module in model.modules() if isinstance(module, SchNet)]
    if not networks:
        return
    for network in networks:
        network.tabulate(0)  # exact filters for the reference forces
    exact = model.energy_and_forces(example)[1]
    for network in networks:
        network.tabulate(points_per_width)
    tabulated = model.energy_and_forces(example)[1]
    difference, scale = _difference(tabulated, exact)
    if not difference <= TABLE_RTOL * scale:
        for network in networks:
            network.tabulate(0)
        log.warning(
            "tabulated filters give forces %.3g kJ/mol/nm from exact ones (largest %.3g); "
            "running with exact filters",
            difference,
            scale,
        )
        return
    log.info(
        "SchNet filters tabulated, %d points per Gaussian width (forces within %.2g "
        "kJ/mol/nm of exact)",
        points_per_width,
        difference,
    )


def _difference(forces: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """The largest force difference from ``reference`` and the largest reference force
    (1 where all are zero), kJ/mol/nm."""
    return float((forces - reference).abs().max()), float(reference.abs().max()) or 1.0
