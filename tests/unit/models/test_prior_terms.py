"""Every registered prior term, fitted on a branched chain: physics (invariance under
rotation and translation, forces = -grad E, the improper's handedness) and plumbing
(plain constructor arguments, the prior as their sum, the angle wall's height)."""

import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cgpipe.bonded import improper_quadruples
from cgpipe.errors import InputError
from cgpipe.models import Prior, fit_prior
from cgpipe.models.neighbours import pair_distances
from cgpipe.models.priors import PRIOR_TERMS
from cgpipe.models.priors.geometry import dihedral_angles
from cgpipe.units import thermal_energy

# C(0)-N(1)-CA(2)-C(4)-N(5) with CB(3) on CA: alanine dipeptide's backbone_cb map, so
# every term has members (dihedrals, an improper at CA, 1-3 pairs, non-bonded pairs).
BONDS = np.array([[0, 1], [1, 2], [2, 3], [2, 4], [4, 5]])
TEMPLATE = np.array(
    [
        [0.00, 0.00, 0.00],
        [0.13, 0.05, 0.00],
        [0.20, 0.16, 0.02],
        [0.18, 0.22, 0.16],
        [0.35, 0.13, -0.02],
        [0.42, 0.24, -0.05],
    ]
)
TEMPERATURE = 300.0


@pytest.fixture(scope="module")
def prior() -> Prior:
    frames = TEMPLATE + np.random.default_rng(0).normal(scale=0.015, size=(2000, 6, 3))
    return fit_prior(frames, BONDS, TEMPERATURE, bins=20).double()


@pytest.fixture(scope="module")
def positions() -> torch.Tensor:
    """[8, 6, 3] float64: frames near the template, and squeezed ones that reach into the
    angle wall and the repulsion."""
    rng = np.random.default_rng(1)
    near = TEMPLATE + rng.normal(scale=0.02, size=(4, 6, 3))
    centre = TEMPLATE.mean(axis=0)
    squeezed = centre + 0.6 * (TEMPLATE - centre) + rng.normal(scale=0.01, size=(4, 6, 3))
    return torch.tensor(np.concatenate([near, squeezed]))


def _rigid_motion(x: torch.Tensor, seed: int) -> torch.Tensor:
    rotation = torch.tensor(Rotation.random(random_state=seed).as_matrix())
    return x @ rotation.T + torch.tensor([0.7, -1.3, 2.1], dtype=x.dtype)


def test_the_registry_holds_one_term_per_module():
    assert PRIOR_TERMS.names() == [
        "angle_wall",
        "angles",
        "bonds",
        "dihedrals",
        "impropers",
        "repulsion",
    ]
    for name in PRIOR_TERMS.names():
        assert PRIOR_TERMS.get(name).__module__ == f"cgpipe.models.priors.{name}"


@pytest.mark.parametrize("name", PRIOR_TERMS.names())
def test_every_term_is_fitted_and_acts_on_the_test_frames(prior, positions, name):
    term = prior.terms[name]
    assert len(term) > 0
    energy = term(positions)
    assert energy.shape == (len(positions),) and torch.isfinite(energy).all()
    assert energy.abs().max() > 0  # the derivative tests below are not vacuous


@pytest.mark.parametrize("name", PRIOR_TERMS.names())
def test_energy_is_invariant_under_rotation_and_translation(prior, positions, name):
    term = prior.terms[name]
    for seed in range(3):
        torch.testing.assert_close(
            term(_rigid_motion(positions, seed)), term(positions), rtol=1e-9, atol=1e-9
        )


@pytest.mark.parametrize("name", PRIOR_TERMS.names())
def test_forces_are_minus_the_energy_gradient(prior, positions, name):
    term = prior.terms[name]
    x = positions.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(term(x).sum(), x)
    step = 1e-6
    rng = np.random.default_rng(2)
    for frame in range(len(positions)):
        for bead, axis in zip(rng.integers(0, 6, 3), rng.integers(0, 3, 3), strict=True):
            shifted = positions.clone()
            shifted[frame, bead, axis] += step
            up = term(shifted)[frame]
            shifted[frame, bead, axis] -= 2 * step
            down = term(shifted)[frame]
            numeric = float(up - down) / (2 * step)
            assert numeric == pytest.approx(
                float(gradient[frame, bead, axis]), rel=1e-5, abs=1e-4
            ), (frame, bead, axis)


def test_the_improper_changes_sign_under_reflection(prior, positions):
    quadruples = torch.as_tensor(improper_quadruples(BONDS))
    mirror = positions * torch.tensor([-1.0, 1.0, 1.0], dtype=positions.dtype)
    torch.testing.assert_close(
        dihedral_angles(mirror, quadruples), -dihedral_angles(positions, quadruples)
    )
    # The fitted improper holds the template's handedness: its mirror image costs more.
    impropers = prior.terms["impropers"]
    assert (impropers(mirror[:4]) > impropers(positions[:4]) + 4 * thermal_energy(300)).all()
    # Distances and angles cannot tell the two apart.
    for name in ("bonds", "angles", "angle_wall", "repulsion"):
        torch.testing.assert_close(prior.terms[name](mirror), prior.terms[name](positions))


@pytest.mark.parametrize("name", PRIOR_TERMS.names())
def test_a_term_is_rebuilt_from_its_json_arguments(prior, positions, name):
    term = prior.terms[name]
    rebuilt = type(term)(**json.loads(json.dumps(term.hparams))).double()
    torch.testing.assert_close(rebuilt(positions), term(positions))
    assert rebuilt.name == name


def test_the_prior_is_the_sum_of_its_terms(prior, positions):
    total = sum(term(positions) for term in prior.terms.values())
    torch.testing.assert_close(prior(positions), total)
    rebuilt = Prior(**json.loads(json.dumps(prior.hparams))).double()
    torch.testing.assert_close(rebuilt(positions), prior(positions))
    assert prior.bonds.tolist() == BONDS.tolist()
    assert prior.bond_r0.shape == (len(BONDS),)
    assert prior.temperature == TEMPERATURE


def test_an_option_no_term_reads_is_refused():
    with pytest.raises(TypeError, match=r"no prior term reads the options \['dihedral_ordre'\]"):
        fit_prior(TEMPLATE[None], BONDS, TEMPERATURE, dihedral_ordre=4)


def test_the_angle_wall_is_flat_above_its_onset_and_its_height_at_the_contact():
    # Three beads, the angle spread over 40-140 degrees, bonds of 0.38 +- 0.01 nm.
    rng = np.random.default_rng(3)
    theta = np.radians(rng.uniform(40, 140, 20000))
    b = rng.normal(0.38, 0.01, size=(2, len(theta)))
    frames = np.zeros((len(theta), 3, 3))
    frames[:, 0, 0] = b[0]
    frames[:, 2] = b[1, :, None] * np.stack([np.cos(theta), np.sin(theta), 0 * theta], axis=1)
    options = {"repulsion_quantile": 0.001, "angle_wall_onset_quantile": 0.05}
    wall = fit_prior(frames, [[0, 1], [1, 2]], TEMPERATURE, angle_wall_height=20, **options)
    wall = wall.terms["angle_wall"].double()
    r = pair_distances(torch.tensor(frames), wall.pairs)[:, 0].numpy()
    contact, onset = np.quantile(r, [0.001, 0.05])
    assert float(wall.onset[0]) == pytest.approx(onset, rel=1e-6)

    def at(distance: float) -> float:
        x = torch.tensor([[[distance, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
        return float(wall(x.double()))

    assert at(contact) == pytest.approx(20 * thermal_energy(TEMPERATURE), rel=1e-6)
    assert at(onset + 1e-6) == 0.0 and at(np.quantile(r, 0.5)) == 0.0
    with pytest.raises(InputError, match="angle_wall_onset_quantile=0.001 must exceed"):
        fit_prior(frames, [[0, 1], [1, 2]], TEMPERATURE, angle_wall_onset_quantile=0.001)


def test_a_stiff_angle_holds_its_end_beads_and_gets_no_wall_a_soft_one_does():
    # Angles of 110 +- 1 degrees: the 1-3 distance's 0.1 % and 1 % quantiles lie ~0.002 nm
    # apart, closer than the 0.01 nm over which the wall may rise at the most, and the
    # angle folded shut costs ~6000 kT: a wall would only push on the data's own tail.
    rng = np.random.default_rng(4)

    def frames_of(spread_degrees):
        theta = np.radians(rng.normal(110, spread_degrees, 20000))
        frames = np.zeros((len(theta), 3, 3))
        frames[:, 0, 0] = 0.15
        frames[:, 2] = 0.15 * np.stack([np.cos(theta), np.sin(theta), 0 * theta], axis=1)
        return frames + rng.normal(scale=1e-4, size=frames.shape)

    stiff = fit_prior(frames_of(1), [[0, 1], [1, 2]], TEMPERATURE).terms["angle_wall"]
    assert len(stiff) == 0
    # 110 +- 25 degrees: ~10 kT folded shut, the tail 0.01 nm or more wide: a wall at the
    # 1 % quantile, 20 kT high at the 0.1 % one.
    frames = frames_of(25)
    soft = fit_prior(frames, [[0, 1], [1, 2]], TEMPERATURE).terms["angle_wall"]
    r = pair_distances(torch.tensor(frames), soft.pairs.long())[:, 0].numpy()
    contact, onset = np.quantile(r, [0.001, 0.01])
    assert onset - contact >= 0.01
    assert float(soft.onset[0]) == pytest.approx(onset, rel=1e-6)
    height = 0.5 * float(soft.k[0]) * (onset - contact) ** 2
    assert height == pytest.approx(20 * thermal_energy(TEMPERATURE), rel=1e-4)
