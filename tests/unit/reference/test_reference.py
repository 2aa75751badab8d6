"""OpenMM generation: saved forces, seeds, solvents, checkpoint and restart."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import openmm
import openmm.unit as unit
import pytest

from cgpipe.io import read_trajectory
from cgpipe.reference import choose_platform, generate_trajectory, prepare_structure
from cgpipe.reference.openmm_generation import ReferenceSystem
from tests.conftest import ALA2


def _forces_at(reference: ReferenceSystem, positions: np.ndarray) -> np.ndarray:
    """Forces of the reference's own system (barostat-free) at all-atom positions, Reference."""
    context = openmm.Context(
        reference.system(barostat=False),
        openmm.VerletIntegrator(0.001),
        openmm.Platform.getPlatformByName("Reference"),
    )
    if reference.explicit:
        context.setPeriodicBoxVectors(*reference.topology.getPeriodicBoxVectors())
    context.setPositions(positions.astype(np.float64))
    state = context.getState(getForces=True)
    return state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)


def test_saved_forces_are_the_forces_at_the_saved_positions(
    ala2_reference, ala2_structure, tiny_reference_params
):
    data = read_trajectory(ala2_reference[0])
    assert data.n_frames == tiny_reference_params["n_steps"] // tiny_reference_params["save_every"]
    reference = ReferenceSystem(ala2_structure, tiny_reference_params, 300.0)
    for frame in (0, data.n_frames - 1):
        expected = _forces_at(reference, data.coordinates[frame])
        np.testing.assert_allclose(data.forces[frame], expected, rtol=1e-3, atol=0.5)


def test_provenance_of_a_generated_trajectory(ala2_reference):
    record = read_trajectory(ala2_reference[1]).provenance
    assert record["stage"] == "reference"
    assert record["extra"]["ns_per_day"] > 0 and record["extra"]["platform"]
    assert record["extra"]["restarts"] == 0
    start = (
        "start_temperature",
        "start_steps",
        "start_seed",
        "start_potential_energy",
        "start_rmsd",
    )
    assert set(start) <= set(record["extra"])
    assert record["seed"] > 0 and record["config"]["temperature"] == 300.0
    assert record["config"]["solvent"] == "gbn2"
    assert record["extra"]["forcefield_files"] == ["amber14-all.xml", "implicit/gbn2.xml"]
    assert sorted(record["extra"]["force_classes"]) == [
        "CMMotionRemover",
        "CustomGBForce",
        "HarmonicAngleForce",
        "HarmonicBondForce",
        "NonbondedForce",
        "PeriodicTorsionForce",
    ]
    assert len(record["inputs"]) == 1


def test_trajectories_differ_by_seed(ala2_reference):
    a, b = (read_trajectory(p) for p in ala2_reference)
    assert a.provenance["seed"] != b.provenance["seed"]
    assert not np.allclose(a.coordinates, b.coordinates)


@pytest.mark.parametrize("solvent", ["vacuum", "obc2"])
def test_implicit_and_vacuum_solvents(tmp_path, ala2_structure, tiny_reference_params, solvent):
    params = {**tiny_reference_params, "solvent": solvent, "n_steps": 100, "start_steps": 100}
    output = tmp_path / "traj.h5"
    generate_trajectory(
        ALA2, output, system="ala2", index=0, temperature=300.0, params=params, master_seed=1
    )
    data = read_trajectory(output)
    reference = ReferenceSystem(ala2_structure, params, 300.0)
    np.testing.assert_allclose(
        data.forces[-1], _forces_at(reference, data.coordinates[-1]), rtol=1e-3, atol=0.5
    )
    assert not output.with_name("traj.h5.checkpoint").exists()


def test_explicit_water_keeps_the_solute_and_the_forces_the_water_exerts(
    tmp_path, tiny_reference_params
):
    params = {
        **tiny_reference_params,
        "solvent": "tip3p",
        "solvent_padding": 0.6,
        "nonbonded_cutoff": 0.6,
        "start_steps": 50,  # the hot start in explicit water: NVT at the prepared box
        "equilibration_steps": 50,
        "n_steps": 60,
    }
    structure = tmp_path / "structure.pdb"
    report = prepare_structure(structure, system="ala2", params=params, seed=1, structure=ALA2)
    assert (
        report["water_molecules"] > 50
        and report["n_atoms"] == 22 + 3 * report["water_molecules"] + report["ions"]
    )
    output = tmp_path / "traj.h5"
    extra = generate_trajectory(
        structure, output, system="ala2", index=0, temperature=300.0, params=params, master_seed=1
    )
    data = read_trajectory(output)
    assert data.topology.n_atoms == 22 and extra["simulated_atoms"] == report["n_atoms"]
    assert extra["start_steps"] == 50 and extra["start_rmsd"] > 0
    assert {r.name for r in data.topology.residues} == {"ACE", "ALA", "NME"}
    # The solute's own forces (in vacuum) differ from the saved ones by the water's pull.
    vacuum = ReferenceSystem(ALA2, {**params, "solvent": "vacuum"}, 300.0)
    own = _forces_at(vacuum, data.coordinates[-1])
    difference = np.linalg.norm(data.forces[-1] - own, axis=-1)
    assert np.median(difference) > 10.0  # kJ/mol/nm: solvation forces are large


_GENERATE = """
import sys
from cgpipe.reference import generate_trajectory
params = {params!r}
generate_trajectory({structure!r}, sys.argv[1], system="ala2", index=3, temperature=300.0,
                    params=params, master_seed=5, threads=1)
"""


def test_a_killed_run_resumes_and_equals_an_uninterrupted_one(tmp_path, tiny_reference_params):
    params = {
        **tiny_reference_params,
        "start_steps": 200,  # a hot start, recorded in the checkpoint for the provenance
        "equilibration_steps": 20,
        "n_steps": 3000,
        "save_every": 10,
        "checkpoint_interval": 200,
    }
    whole = tmp_path / "whole.h5"
    generate_trajectory(
        ALA2, whole, system="ala2", index=3, temperature=300.0, params=params, master_seed=5
    )
    cut = tmp_path / "cut.h5"
    script = _GENERATE.format(params=params, structure=ALA2)
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(cut)], stderr=subprocess.DEVNULL, cwd=os.getcwd()
    )
    block = tmp_path / "cut.h5.checkpoint" / "block_000002.forces.npy"
    deadline = time.monotonic() + 120
    while not block.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert block.exists() and not cut.exists(), "the run was not cut mid-way"
    extra = generate_trajectory(
        ALA2, cut, system="ala2", index=3, temperature=300.0, params=params, master_seed=5
    )
    assert extra["restarts"] == 1
    a, b = read_trajectory(whole), read_trajectory(cut)
    for key in ("start_seed", "start_potential_energy", "start_rmsd"):
        assert a.provenance["extra"][key] == b.provenance["extra"][key]
    np.testing.assert_array_equal(a.coordinates, b.coordinates)
    np.testing.assert_array_equal(a.forces, b.forces)
    np.testing.assert_array_equal(a.time, b.time)
    assert not (tmp_path / "cut.h5.checkpoint").exists()


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path, tiny_reference_params):
    params = {**tiny_reference_params, "n_steps": 200, "checkpoint_interval": 40, "start_steps": 0}
    output = tmp_path / "traj.h5"
    folder = tmp_path / "traj.h5.checkpoint"
    folder.mkdir()
    np.savez(
        folder / "checkpoint.npz",
        state=np.zeros(4, np.uint8),
        meta='{"fingerprint": "other", "n_blocks": 3, "n_frames": 6}',
    )
    extra = generate_trajectory(
        ALA2, output, system="ala2", index=0, temperature=300.0, params=params, master_seed=1
    )
    assert extra["restarts"] == 0 and read_trajectory(output).n_frames == 10


def test_platform_choice(monkeypatch):
    assert choose_platform().getName() in ("CUDA", "OpenCL", "CPU")
    assert choose_platform("Reference").getName() == "Reference"
    monkeypatch.setenv("CGPIPE_OPENMM_PLATFORM", "Reference")
    assert choose_platform().getName() == "Reference"
    with pytest.raises(ValueError, match="'Nope' is not available"):
        choose_platform("Nope")
