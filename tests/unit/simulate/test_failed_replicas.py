"""Failed replicas count against a model: a prior made to break in the alpha_L region.

The fold's fitted prior plus a test-only term that is exactly zero wherever phi <= 0 (the
reference's basins) and, wherever phi > 0, pulls the first bond of the phi dihedral apart
with a force far beyond any bond's stiffness: a replica that wanders into alpha_L blows
up there and the simulate stage stops it. The evaluation then scores the frames it did
not live to save as escaped mass, and the verdict moves outside the floor, where scoring
the survivors alone would see a model that simply never visits alpha_L.
"""

from __future__ import annotations

import copy

import mdtraj as md
import numpy as np
import pytest
import torch

from cgpipe import keys, paths
from cgpipe.evaluate import METRICS, EvaluationContext
from cgpipe.io import Provenance, read_table, read_trajectory
from cgpipe.models import MODELS, load_model, save_model
from cgpipe.models.priors import PRIOR_TERMS, PriorTerm
from cgpipe.models.priors.geometry import dihedral_angles
from cgpipe.observables import phi_psi
from cgpipe.units import thermal_energy
from tests.unit.simulate.conftest import FOLD, simulate_fold

CLIFF = "alpha_l_cliff"
PULL = 1e6  # kJ/mol/nm at sin(phi) = 1: some 100 times what any fitted bond resists


class AlphaLCliff(PriorTerm):
    """-PULL sin(phi)^2 |r_ab| where phi > 0 and 0 elsewhere (continuous with its first
    derivative at phi = 0): phi of ``quadruple``, r_ab its first bond."""

    def __init__(self, quadruple: list[int]) -> None:
        super().__init__()
        self.hparams = {"quadruple": list(map(int, quadruple))}
        self.tuples("quadruple", [self.hparams["quadruple"]], 4)

    def __len__(self) -> int:
        return 1

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        phi = dihedral_angles(positions, self.quadruple)[..., 0]
        a, b = self.quadruple[0, 0], self.quadruple[0, 1]
        bond = torch.linalg.vector_norm(positions[..., b, :] - positions[..., a, :], dim=-1)
        return -PULL * torch.relu(torch.sin(phi)) ** 2 * bond


@pytest.fixture
def cliff_model(fold_inputs, test_config, tmp_path):
    """The fold's prior model with the cliff added, saved; the term registered meanwhile."""
    PRIOR_TERMS.register(CLIFF)(AlphaLCliff)
    try:
        fitted = load_model(fold_inputs["model"])
        reference = read_trajectory(fold_inputs["cg"])
        frame = md.Trajectory(reference.coordinates[:1], reference.topology)
        quadruple = md.compute_phi(frame)[0][0].tolist()
        hparams = copy.deepcopy(fitted.hparams)
        hparams["prior"]["terms"][CLIFF] = {"quadruple": quadruple}
        model = MODELS.get("prior")(**hparams)
        path = tmp_path / "cliff.pt"
        save_model(path, model, Provenance("test"), temperature=test_config["temperature"])
        yield path, quadruple
    finally:
        PRIOR_TERMS.unregister(CLIFF)
    assert CLIFF not in PRIOR_TERMS


def test_a_prior_that_breaks_in_alpha_l_is_scored_with_its_lost_frames(
    cliff_model, fold_inputs, test_config, tmp_path
):
    model_path, quadruple = cliff_model
    reference = read_trajectory(fold_inputs["cg"])
    # The prior's dihedral is the reference's phi (mdtraj's sign convention): the cliff
    # sits where alpha_L is.
    prior_phi = dihedral_angles(
        torch.as_tensor(reference.coordinates), torch.as_tensor([quadruple])
    )[:, 0].numpy()
    np.testing.assert_allclose(prior_phi, phi_psi(reference)[:, 0], atol=1e-4)

    cfg = copy.deepcopy(test_config)
    cfg["simulate"].update(n_replicas=16, n_steps=2000, save_every=20)  # 4 ps each
    simulation = tmp_path / "simulate"
    simulate_fold({**fold_inputs, "model": model_path}, simulation, cfg, seed=11)
    health = read_table(simulation / paths.HEALTH_FILE)
    trajectory = read_trajectory(simulation / paths.TRAJECTORY_FILE)
    failed = health[~health[keys.STABLE]]
    # A mix of failed and surviving replicas is the test (11 and 5 on the machine it was
    # written on; the trajectories are chaotic, so other CPUs give others).
    assert len(failed) >= 3 and len(health) - len(failed) >= 2
    # They died at once, as the cliff kills: a bond torn apart, positions lost, or (some
    # CPUs) a torn-off bead thrown onto another; never by a slow drift out of range.
    assert set(failed[keys.FAILURE_REASON]) <= {"bond_stretch", "nan", "collision"}
    assert "bond_stretch" in set(failed[keys.FAILURE_REASON])
    # A failed replica keeps its frames up to the save that found it broken.
    interval = cfg["simulate"]["save_every"] * cfg["simulate"]["timestep"]
    np.testing.assert_array_equal(
        failed[keys.N_FRAMES], np.round(failed[keys.TIME_TO_FAILURE] / interval) - 1
    )
    assert trajectory.n_frames == health[keys.N_FRAMES].sum()
    # Nothing that the simulation kept lies in alpha_L: its replicas died there.
    assert (phi_psi(trajectory)[:, 0] <= 0).all()

    folds = [
        {"traj": simulation / paths.TRAJECTORY_FILE, "health": simulation / paths.HEALTH_FILE}
        for _ in range(cfg["train"]["n_folds"])
    ]
    context = EvaluationContext(
        reference,
        folds,
        n_folds=cfg["train"]["n_folds"],
        kT=thermal_energy(cfg["temperature"]),
        bins=cfg["evaluate"]["bins"],
        only=FOLD,
    )
    sample = context.sample(FOLD)
    n_saves = cfg["simulate"]["n_steps"] // cfg["simulate"]["save_every"]
    assert sample.length == n_saves
    lost = dict(zip(health[keys.REPLICA], n_saves - health[keys.N_FRAMES], strict=True))
    assert sample.escaped.tolist() == [lost[r] for r in sample.replicas]
    stability = METRICS.get("stability")(**cfg["evaluate"].get("stability", {}))
    with context.serving(stability):
        stable = {metric: value for _, metric, value in stability.rows(context)}
    assert stable[keys.STABLE_FRACTION] == pytest.approx(1 - len(failed) / len(health))
    assert stable[keys.SURVIVAL_PREFIX + "100pct"] == stable[keys.STABLE_FRACTION]
    metric = METRICS.get("free_energy")(**cfg["evaluate"]["free_energy"])
    with context.serving(metric):
        rows = {row[1]: row for row in metric.rows(context)}
        (projection,) = [p for p in context.projections(FOLD) if p.name == "phi_psi"]
        survivors = metric._compare(
            context,
            projection,
            FOLD,
            context.simulation_projected(FOLD, projection),
            sample.resampling(escaped=False),
        )[0]
    score, floor = rows[keys.JS_PHI_PSI], rows[keys.JS_PHI_PSI + "_floor"]
    # The escaped bin holds about half the replicas' time: the score rises well above
    # the survivors' alone (0.48 against 0.38 where it was written) and lies outside the
    # floor (0.05 [0, 0.20]; the tiny reference's floor is wide).
    assert score[2] > survivors.score.value + 0.03
    assert score[3] > floor[4]
