"""The reference's force field on backmapped structures: energies as OpenMM gives them,
and a restrained minimisation that lowers them and keeps the heavy atoms in place."""

from __future__ import annotations

import copy

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest

from cgpipe.backmap import fit
from cgpipe.backmap.energy import ForceField
from cgpipe.errors import InputError
from cgpipe.io import read_table, read_trajectory
from cgpipe.paths import BACKMAP_HELDOUT_FILE


@pytest.fixture(scope="module")
def forcefield(ala2_structure, ala2_reference, tiny_reference_params):
    topology = read_trajectory(ala2_reference[0]).topology
    return ForceField(ala2_structure, tiny_reference_params, topology)


def test_energies_are_openmms_for_the_same_force_field(
    forcefield, ala2_structure, ala2_reference, tiny_reference_params
):
    frames = read_trajectory(ala2_reference[0]).coordinates[:5]
    expected = _openmm_energies(ala2_structure, tiny_reference_params, frames)
    np.testing.assert_allclose(forcefield.energies(frames), expected, rtol=1e-5, atol=1e-3)


def _openmm_energies(structure, params, frames: np.ndarray) -> list[float]:
    """Independent of our wrapper: OpenMM's own recipe for GBn2 with amber14."""
    pdb = app.PDBFile(str(structure))
    files = [*params["forcefield"], "implicit/gbn2.xml"]
    system = app.ForceField(*files).createSystem(pdb.topology, nonbondedMethod=app.NoCutoff)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001))
    expected = []
    for x in frames:
        context.setPositions(x.astype(np.float64))
        energy = context.getState(getEnergy=True).getPotentialEnergy()
        expected.append(energy.value_in_unit(unit.kilojoule_per_mole))
    return expected


def test_minimisation_lowers_the_energy_and_keeps_heavy_atoms(forcefield, ala2_reference):
    frames = read_trajectory(ala2_reference[0]).coordinates[:4]
    rng = np.random.default_rng(0)
    noisy = frames + rng.normal(scale=0.01, size=frames.shape).astype(np.float32)
    minimised = forcefield.minimise(noisy)
    before, after = forcefield.energies(noisy), forcefield.energies(minimised)
    assert (after < before - 100).all()  # 0.01 nm of noise costs hundreds of kJ/mol
    heavy = forcefield.heavy
    moved = np.sqrt(((minimised[:, heavy] - noisy[:, heavy]) ** 2).sum(-1).mean(-1))
    assert (moved < 0.02).all()


def test_explicit_water_has_no_solute_energy(ala2_structure, ala2_reference, tiny_reference_params):
    params = {**tiny_reference_params, "solvent": "tip3p"}
    topology = read_trajectory(ala2_reference[0]).topology
    with pytest.raises(InputError, match="explicit water"):
        ForceField(ala2_structure, params, topology)


def test_fit_scores_energies_before_and_after_minimisation(
    tmp_path, backmap_inputs, test_config, ala2_structure, tiny_reference_params
):
    cfg = copy.deepcopy(test_config)
    cfg["reference"] = {**cfg["reference"], **tiny_reference_params}
    cfg["backmap"]["minimise"] = True

    def scores_of(method: str):
        folder = tmp_path / method
        inputs = backmap_inputs["references"], backmap_inputs["mapping"], folder
        fit(*inputs, fold=1, method=method, cfg=cfg, seed=3, structure=ala2_structure)
        return read_table(folder / BACKMAP_HELDOUT_FILE).set_index("metric")

    scores = scores_of("nearest")
    energy = scores.loc["potential_energy"]
    assert np.isfinite(energy[["value", "floor"]].to_numpy(dtype=float)).all()
    assert scores.loc["potential_energy", "unit"] == "kJ/mol"
    # Retrieval gives real frames of another time: their energies are real frames' energies.
    assert abs(energy["value"] - energy["floor"]) < 100
    assert scores.loc["potential_energy_minimised", "value"] < energy["value"]
    assert "bond_fraction_minimised" in scores.index
    # The minimised rows' floor is the true frames minimised the same way, not as they
    # were: minimised, real frames' energy falls and their angles move to the force
    # field's equilibria, and retrieval's real frames, minimised, score as that floor.
    minimised = scores.loc["potential_energy_minimised"]
    assert minimised["floor"] < energy["floor"] - 50
    assert abs(minimised["value"] - minimised["floor"]) < 100
    angles = scores.loc[["angle_deviation", "angle_deviation_minimised"], "floor"]
    assert angles.iloc[1] != pytest.approx(angles.iloc[0], rel=0.05)
    # The negative control is scored as drawn: minimised, the force field would clear
    # its clashes for it.
    scores = scores_of("scatter")
    assert "potential_energy" in scores.index
    assert not scores.index.str.endswith("_minimised").any()


def _turn_alanine(frames: np.ndarray, topology, height: float) -> np.ndarray:
    """Frames with alanine's CB side (CB, its hydrogens and HA) moved along the normal of
    the N-CA-C plane so that CB lies at ``height`` times its distance from it (-1: the
    mirror image, a D-alanine at the same backbone; 0.05: nearly flat)."""
    residue = next(r for r in topology.residues if r.name == "ALA")
    index = {atom.name: atom.index for atom in residue.atoms}
    side = [index[name] for name in ("CB", "HB1", "HB2", "HB3", "HA")]
    out = np.array(frames, dtype=np.float64)
    for x in out:
        ca, n, c = (x[index[name]] for name in ("CA", "N", "C"))
        normal = np.cross(n - ca, c - ca)
        normal /= np.linalg.norm(normal)
        cb = (x[index["CB"]] - ca) @ normal
        x[side] += (height - 1.0) * cb * normal
    return out.astype(np.float32)


def test_minimisation_keeps_each_stereocentre_at_the_hand_it_was_drawn_with(
    forcefield, ala2_structure, ala2_reference, tiny_reference_params
):
    # The chiral-volume restraint holds every hand as drawn, at least half the prepared
    # structure's volume from flat: a clash cannot push a CB through its CA, and a wrong
    # hand is not mended for the metrics to miss.
    from cgpipe.backmap import energy
    from cgpipe.backmap.quality import Geometry, chirality
    from cgpipe.geometry import chiral_volumes

    trajectory = read_trajectory(ala2_reference[0])
    geometry = Geometry.from_topology(trajectory.topology)
    frames = trajectory.coordinates[:3]
    mirrored = _turn_alanine(frames, trajectory.topology, -1.0)
    assert (chirality(frames, geometry) == 1).all()
    assert (chirality(mirrored, geometry) == -1).all()
    np.testing.assert_array_equal(chirality(forcefield.minimise(frames), geometry), 1)
    np.testing.assert_array_equal(chirality(forcefield.minimise(mirrored), geometry), -1)
    # Nearly flat: pushed out to half the prepared structure's volume at least, on its own
    # side; the restraint's energy there is 0.5 k (least - volume)^2 of numpy's volume.
    flat = _turn_alanine(frames, trajectory.topology, 0.05)
    prepared = app.PDBFile(str(ala2_structure)).getPositions(asNumpy=True)
    least = 0.5 * np.abs(chiral_volumes(prepared.value_in_unit(unit.nanometer), geometry.chiral))
    volume = chiral_volumes(forcefield.minimise(flat), geometry.chiral)
    assert (volume >= least * 0.999).all(), (volume, least)
    flat_volume = chiral_volumes(flat[-1], geometry.chiral)
    assert (0 < flat_volume).all() and (flat_volume < 0.2 * least).all()
    context = forcefield.context
    context.setPositions(flat[-1].astype(np.float64))
    energies = []
    for k in (0.0, energy.CHIRAL_K):
        context.setParameter("chiral_k", k)
        state = context.getState(getEnergy=True)
        energies.append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    context.setParameter("chiral_k", 0.0)
    expected = 0.5 * energy.CHIRAL_K * ((least - flat_volume) ** 2).sum()
    np.testing.assert_allclose(energies[1] - energies[0], expected, rtol=1e-4)
    # Neither restraint is in the energies, even of structures they pushed on (minimised:
    # the bonds to hydrogen, constraints here, are at their lengths as in the recipe).
    minimised = forcefield.minimise(flat)
    expected = _openmm_energies(ala2_structure, tiny_reference_params, minimised)
    np.testing.assert_allclose(forcefield.energies(minimised), expected, rtol=1e-5, atol=1e-3)
