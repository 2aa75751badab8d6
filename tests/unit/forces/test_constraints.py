"""Holonomic constraints and the force map: the constrained pairs are OpenMM's, and a map
that splits one between beads is refused before the forces stage writes anything."""

import json
import shutil

import h5py
import mdtraj as md
import numpy as np
import pytest
from openmm import app

from cgpipe import keys
from cgpipe.constraints import CONSTRAINTS, check_constraints, constrained_pairs
from cgpipe.errors import InputError
from cgpipe.forces import FORCE_MAPS, run
from cgpipe.io import Provenance, read_trajectory
from cgpipe.mapping import write_mapping
from cgpipe.paths import resolved_config_path
from cgpipe.reference.structure import CONSTRAINTS as OPENMM_CONSTRAINTS
from tests.conftest import build_mapping_on, shared_force_mapping

SPLIT = (
    "forces across a constraint cannot be projected; use constraints HBonds or a map that "
    "keeps constrained atoms in one bead"
)


@pytest.mark.parametrize("constraints", CONSTRAINTS)
def test_constrained_pairs_are_those_openmm_constrains(constraints, ala2_structure, ala2_topology):
    # The reference's own engine is the independent judge: the pairs OpenMM's
    # createSystem constrains for alanine dipeptide (12 X-H bonds, 21 bonds, and 9 H-C-H
    # pairs of its three methyl groups on top for HAngles).
    pdb = app.PDBFile(str(ala2_structure))
    system = app.ForceField("amber14-all.xml").createSystem(
        pdb.topology, nonbondedMethod=app.NoCutoff, constraints=OPENMM_CONSTRAINTS[constraints]
    )
    expected = sorted(
        tuple(sorted(system.getConstraintParameters(k)[:2]))
        for k in range(system.getNumConstraints())
    )
    assert constrained_pairs(ala2_topology, constraints) == expected
    assert len(expected) == {"none": 0, "HBonds": 12, "AllBonds": 21, "HAngles": 30}[constraints]


def test_an_angle_at_an_oxygen_is_constrained_with_one_hydrogen():
    # Methanol H3C-O-H: HAngles holds the C...H(O) pair (H-O-X) and each H...H of the
    # methyl (H-C-H), not H(C)...O (one hydrogen, a carbon in the middle).
    topology = md.Topology()
    residue = topology.add_residue("MOH", topology.add_chain())
    c = topology.add_atom("C", md.element.carbon, residue)
    o = topology.add_atom("O", md.element.oxygen, residue)
    ho = topology.add_atom("HO", md.element.hydrogen, residue)
    topology.add_bond(c, o)
    topology.add_bond(o, ho)
    for name in ("H1", "H2", "H3"):
        topology.add_bond(c, topology.add_atom(name, md.element.hydrogen, residue))
    angle_pairs = set(constrained_pairs(topology, "HAngles")) - set(
        constrained_pairs(topology, "AllBonds")
    )
    assert angle_pairs == {(0, 2), (3, 4), (3, 5), (4, 5)}


def _basic(mapping):
    return FORCE_MAPS.get("basic")().matrix(mapping, None)


def _ala2_dimer(topology: md.Topology) -> md.Topology:
    """Two alanine-dipeptide molecules: calpha then has two beads, one per molecule."""
    return topology.join(topology)


@pytest.mark.parametrize("name", ["backbone", "backbone_cb", "calpha"])
def test_hydrogen_constraints_stay_inside_the_beads(name, ala2_topology):
    # Every hydrogen joins its heavy atom's bead, so no X-H constraint crosses a bead.
    topology = _ala2_dimer(ala2_topology) if name == "calpha" else ala2_topology
    mapping = build_mapping_on(name, topology)
    check_constraints(topology, "HBonds", mapping, _basic(mapping), "traj_0.h5")
    check_constraints(topology, "none", mapping, _basic(mapping), "traj_0.h5")
    check_constraints(topology, None, mapping, _basic(mapping), "traj_0.h5")  # downloaded


def test_one_bead_per_molecule_keeps_even_all_bonds(ala2_topology):
    topology = _ala2_dimer(ala2_topology)
    mapping = build_mapping_on("calpha", topology)
    for constraints in ("AllBonds", "HAngles"):
        check_constraints(topology, constraints, mapping, _basic(mapping), "traj_0.h5")


@pytest.mark.parametrize("constraints", ["AllBonds", "HAngles"])
@pytest.mark.parametrize("name", ["backbone", "backbone_cb"])
def test_bonds_between_beads_cannot_be_constrained(name, constraints, ala2_topology):
    mapping = build_mapping_on(name, ala2_topology)
    with pytest.raises(InputError) as error:
        check_constraints(ala2_topology, constraints, mapping, _basic(mapping), "traj_0.h5")
    # Sorted pairs: the methyl and carbonyl of ACE are bead 0; C-N is the first split.
    assert str(error.value) == (
        f"traj_0.h5: constraints {constraints} hold atoms 4 (ACE1-C) and 6 (ALA2-N) together, "
        f"but mapping {name!r} puts them in beads 0 and 1: {SPLIT}"
    )


def test_a_shared_force_must_be_shared_alike_by_a_constrained_pair():
    # The projected constraint force is (Xi_f[:, i] - Xi_f[:, j]) lambda (r_i - r_j): atom 2
    # sends half its force to each bead, atom 0 all of its force to bead 0.
    mapping, topology = shared_force_mapping()
    atoms = list(topology.atoms)
    topology.add_bond(atoms[0], atoms[2])
    with pytest.raises(InputError, match=r"in beads 0 and \{0: 0.5, 1: 0.5\}: forces across"):
        check_constraints(topology, "AllBonds", mapping, mapping.force_map, "toy.h5")
    check_constraints(topology, "HBonds", mapping, mapping.force_map, "toy.h5")  # no H


def test_unknown_or_uncheckable_constraints_are_refused(ala2_topology):
    mapping = build_mapping_on("backbone", ala2_topology)
    with pytest.raises(
        InputError, match=r"traj_0.h5: the provenance records constraints 'h-bonds'"
    ):
        check_constraints(ala2_topology, "h-bonds", mapping, _basic(mapping), "traj_0.h5")
    bare = md.Topology.from_dataframe(ala2_topology.to_dataframe()[0])  # no bonds
    with pytest.raises(InputError, match="constraints HBonds were applied, but the topology"):
        check_constraints(bare, "HBonds", mapping, _basic(mapping), "traj_0.h5")


def _with_constraints(source, target, constraints):
    """A copy of reference ``source`` whose provenance says it was run with ``constraints``
    (``None``: the key removed, as for downloaded data)."""
    shutil.copy(source, target)
    with h5py.File(target, "r+") as handle:
        record = json.loads(handle.attrs[keys.PROVENANCE])
        record["config"].pop("constraints", None)
        if constraints is not None:
            record["config"]["constraints"] = constraints
        handle.attrs[keys.PROVENANCE] = json.dumps(record)
    return target


@pytest.fixture
def backbone_path(tmp_path, ala2_topology):
    path = tmp_path / "backbone.parquet"
    write_mapping(path, build_mapping_on("backbone", ala2_topology), Provenance("mapping"))
    return path


def test_the_stage_refuses_a_map_across_constraints_and_writes_nothing(
    tmp_path, ala2_reference, backbone_path, test_config
):
    assert read_trajectory(ala2_reference[0]).provenance["config"]["constraints"] == "HBonds"
    references = [
        ala2_reference[0],
        _with_constraints(ala2_reference[1], tmp_path / "traj_1.h5", "AllBonds"),
    ]
    output = tmp_path / "cg.h5"
    with pytest.raises(InputError) as error:
        run(references, backbone_path, output, cfg=test_config)
    assert str(error.value).startswith(
        f"{references[1]}: constraints AllBonds hold atoms 4 (ACE1-C) and 6 (ALA2-N) together, "
        "but mapping 'backbone' puts them in beads 0 and 1"
    )
    assert not output.exists() and not resolved_config_path(output).exists()


@pytest.mark.parametrize("constraints", [None, "none", "HBonds"])
def test_the_stage_projects_what_the_constraints_allow(
    constraints, tmp_path, ala2_reference, backbone_path, test_config
):
    reference = _with_constraints(ala2_reference[0], tmp_path / "traj_0.h5", constraints)
    output = tmp_path / "cg.h5"
    run([reference], backbone_path, output, cfg=test_config)
    assert read_trajectory(output).coordinates.shape == (20, 5, 3)
    assert np.isfinite(read_trajectory(output).forces).all()
