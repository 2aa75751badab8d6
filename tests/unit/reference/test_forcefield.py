"""The system cgpipe builds equals OpenMM's documented recipe for the same force field and
solvent; a solvent given twice is refused before any job runs.

The recipe is OpenMM's user guide, written out here independently of cgpipe's code:
``ForceField("amber14-all.xml", <solvent file>)`` and ``createSystem(topology,
nonbondedMethod=NoCutoff, constraints=HBonds)`` in vacuum and implicit solvent,
``nonbondedMethod=PME`` with the water model's file in explicit water.
"""

from __future__ import annotations

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest

from cgpipe.config import ConfigError, load_config, system_config
from cgpipe.forcefields import forcefield_problem, is_solvent_file, solvent_files
from cgpipe.reference import prepare_structure
from cgpipe.reference.openmm_generation import ReferenceSystem
from cgpipe.reference.structure import check_system, load_forcefield
from tests.conftest import ALA2

_KJ_NM = unit.kilojoule_per_mole / unit.nanometer
# The documented recipe's files for amber14 per solvent.
_RECIPE_FILES = {
    "vacuum": ["amber14-all.xml"],
    "obc2": ["amber14-all.xml", "implicit/obc2.xml"],
    "gbn2": ["amber14-all.xml", "implicit/gbn2.xml"],
    "tip3p": ["amber14-all.xml", "amber14/tip3p.xml"],
}


def _energy_and_forces(system: openmm.System, pdb: app.PDBFile) -> tuple[float, np.ndarray]:
    context = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    box = pdb.topology.getPeriodicBoxVectors()
    if box is not None:
        context.setPeriodicBoxVectors(*box)
    context.setPositions(pdb.positions)
    state = context.getState(getEnergy=True, getForces=True)
    return (
        state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
        state.getForces(asNumpy=True).value_in_unit(_KJ_NM),
    )


@pytest.fixture(scope="module")
def solvated_ala2(tmp_path_factory) -> str:
    """Alanine dipeptide in a small TIP3P box (the smallest that a 0.6 nm cutoff allows)."""
    params = {
        **load_config(None)["reference"],
        "solvent": "tip3p",
        "solvent_padding": 0.6,
        "nonbonded_cutoff": 0.6,
    }
    path = tmp_path_factory.mktemp("solvated") / "structure.pdb"
    prepare_structure(path, system="ala2", params=params, seed=1, structure=ALA2)
    return str(path)


@pytest.mark.parametrize("solvent", ["vacuum", "obc2", "gbn2", "tip3p"])
def test_cgpipe_system_equals_openmm_recipe(solvent, solvated_ala2):
    params = {**load_config(None)["reference"], "solvent": solvent}
    structure = ALA2
    if solvent == "tip3p":
        params["nonbonded_cutoff"] = 0.6
        structure = solvated_ala2
    reference = ReferenceSystem(structure, params, 300.0)
    ours = reference.system(barostat=False)
    pdb = app.PDBFile(str(reference.path))
    recipe = app.ForceField(*_RECIPE_FILES[solvent]).createSystem(
        pdb.topology,
        nonbondedMethod=app.PME if solvent == "tip3p" else app.NoCutoff,
        nonbondedCutoff=0.6 * unit.nanometer,
        constraints=app.HBonds,
    )
    energy, forces = _energy_and_forces(ours, pdb)
    expected_energy, expected_forces = _energy_and_forces(recipe, pdb)
    assert energy == pytest.approx(expected_energy, rel=1e-6)
    scale = np.abs(expected_forces).max()
    assert np.abs(forces - expected_forces).max() <= 1e-6 * scale
    assert sorted(reference.force_classes) == sorted(type(f).__name__ for f in recipe.getForces())


def test_a_doubled_implicit_solvent_changes_the_energy_and_is_refused():
    """What the 0.1 default did: amber14-all + gbn2 in forcefield, and solvent gbn2."""
    pdb = app.PDBFile(str(ReferenceSystem(ALA2, load_config(None)["reference"], 300.0).path))
    doubled = app.ForceField("amber14-all.xml", "implicit/gbn2.xml", "implicit/gbn2.xml")
    system = doubled.createSystem(pdb.topology, nonbondedMethod=app.NoCutoff)
    single = app.ForceField("amber14-all.xml", "implicit/gbn2.xml")
    once = single.createSystem(pdb.topology, nonbondedMethod=app.NoCutoff)
    assert _energy_and_forces(system, pdb)[0] < _energy_and_forces(once, pdb)[0] - 10.0
    with pytest.raises(ValueError, match=r"2 implicit-solvent forces \(expected 1\)"):
        check_system(system, {"forcefield": ["amber14-all.xml"], "solvent": "gbn2"}, "ala2")


def test_a_config_with_the_solvent_twice_is_refused():
    with pytest.raises(ConfigError, match=r"reference\.forcefield .*implicit/gbn2\.xml"):
        load_config({"reference": {"forcefield": ["amber14-all.xml", "implicit/gbn2.xml"]}})
    with pytest.raises(ConfigError, match="twice"):
        load_config({"reference": {"forcefield": ["amber14-all.xml", "amber14-all.xml"]}})
    with pytest.raises(ConfigError, match=r"amber14/tip3p\.xml"):
        load_config(
            {
                "reference": {
                    "forcefield": ["amber14-all.xml", "amber14/tip3p.xml"],
                    "solvent": "tip3p",
                }
            }
        )
    # Through a systems-sheet override, the error names the system.
    config = load_config(None)
    row = {"system": "x", "source": "openmm", "forcefield": "amber14-all.xml,implicit/obc2.xml"}
    with pytest.raises(ConfigError, match="system x"):
        system_config(config, row)
    with pytest.raises(ValueError, match="twice"):
        load_forcefield({"forcefield": ["amber14-all.xml"] * 2, "solvent": "vacuum"})


def test_solvent_files_are_recognised():
    for name in ("implicit/gbn2.xml", "amber14/tip3p.xml", "charmm36/water.xml", "tip4pew.xml"):
        assert is_solvent_file(name), name
    for name in (
        "amber14-all.xml",
        "charmm36.xml",
        "amber99sbildn.xml",
        "amber14/protein.ff14SB.xml",
    ):
        assert not is_solvent_file(name), name
    # A water model in the solute's files is harmless where no water is added.
    assert forcefield_problem(["amber14-all.xml", "amber14/tip3p.xml"], "gbn2") is None
    assert solvent_files(["amber14-all.xml"], "gbn2") == ["implicit/gbn2.xml"]


def test_every_shipped_config_gives_each_file_once():
    from tests.conftest import REPO

    for path in [REPO / "config/config.yaml", *sorted((REPO / "config").glob("**/*.yaml"))]:
        reference = load_config(path)["reference"]
        assert forcefield_problem(reference["forcefield"], reference["solvent"]) is None, path
