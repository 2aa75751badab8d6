import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest

from cgpipe.io import read_trajectory
from cgpipe.reference import generate_trajectory, resolve_structure
from tests.conftest import ALA2


def test_saved_forces_are_the_forces_at_the_saved_positions(
    ala2_reference, ala2_structure, tiny_reference_params
):
    data = read_trajectory(ala2_reference[0])
    assert data.n_frames == tiny_reference_params["n_steps"] // tiny_reference_params["save_every"]
    pdb = app.PDBFile(str(ala2_structure))
    system = app.ForceField(*tiny_reference_params["forcefield"]).createSystem(
        pdb.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds
    )
    context = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    for frame in (0, data.n_frames - 1):
        context.setPositions(data.coordinates[frame].astype(np.float64))
        expected = (
            context.getState(getForces=True)
            .getForces(asNumpy=True)
            .value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        )
        np.testing.assert_allclose(data.forces[frame], expected, rtol=1e-3, atol=0.5)


def test_provenance_of_a_generated_trajectory(ala2_reference):
    record = read_trajectory(ala2_reference[1]).provenance
    assert record["stage"] == "reference"
    assert record["extra"]["ns_per_day"] > 0 and record["extra"]["platform"]
    assert record["seed"] > 0 and record["config"]["temperature"] == 300.0
    assert len(record["inputs"]) == 1


def test_trajectories_differ_by_seed(ala2_reference):
    a, b = (read_trajectory(p) for p in ala2_reference)
    assert a.provenance["seed"] != b.provenance["seed"]
    assert not np.allclose(a.coordinates, b.coordinates)


def test_structure_resolution_errors(tmp_path, tiny_reference_params):
    assert resolve_structure(ALA2).name == "alanine-dipeptide.pdb"
    with pytest.raises(FileNotFoundError, match="package 'nopackage' is not installed"):
        resolve_structure("nopackage:x.pdb")
    with pytest.raises(FileNotFoundError, match="no file at"):
        resolve_structure(str(tmp_path / "missing.pdb"))
    empty = tmp_path / "empty.pdb"
    empty.write_text("END\n")
    with pytest.raises(ValueError, match="holds no atoms"):
        generate_trajectory(
            str(empty),
            tmp_path / "out.h5",
            system="x",
            index=0,
            temperature=300.0,
            params=tiny_reference_params,
            master_seed=1,
        )
    assert not (tmp_path / "out.h5").exists()
