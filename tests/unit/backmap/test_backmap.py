import numpy as np

from cgpipe.backmap import backmap_nearest
from cgpipe.geometry import kabsch, rmsd, superpose
from cgpipe.io import read_trajectory
from cgpipe.mapping import build_fixed_mapping


def _rotation(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_kabsch_recovers_a_rigid_motion():
    rng = np.random.default_rng(0)
    mobile = rng.normal(size=(4, 10, 3))
    rotations = np.stack([_rotation(rng) for _ in range(4)])
    target = np.einsum("fij,fpj->fpi", rotations, mobile) + rng.normal(size=(4, 1, 3))
    rotation, translation = kabsch(mobile, target)
    np.testing.assert_allclose(rotation, rotations, atol=1e-10)
    np.testing.assert_allclose(superpose(mobile, rotation, translation), target, atol=1e-10)
    assert np.allclose(np.linalg.det(rotation), 1.0)


def test_backmapping_a_moved_template_returns_it_in_place(ala2_reference):
    reference = read_trajectory(ala2_reference[0])
    mapping = build_fixed_mapping("backbone", reference.topology)
    templates = reference.coordinates.astype(np.float64)
    rng = np.random.default_rng(1)
    pick = [3, 11]
    rotations = np.stack([_rotation(rng) for _ in pick])
    moved = np.einsum("fij,fpj->fpi", rotations, templates[pick]) + 2.0
    cg = np.einsum("ba,fad->fbd", mapping.coordinate_map, moved)
    positions, template, cg_rmsd = backmap_nearest(cg, templates, mapping.coordinate_map)
    assert template.tolist() == pick
    np.testing.assert_allclose(cg_rmsd, 0.0, atol=1e-5)
    assert rmsd(positions, moved).max() < 1e-4
