"""The heavy-atom map, a user's map file (validated on load), and the mapping stage's
refusal of a map that splits a holonomic constraint."""

import copy

import mdtraj as md
import numpy as np
import pandas as pd
import pytest

from cgpipe.config import ConfigError, load_config, load_systems, system_config
from cgpipe.errors import InputError
from cgpipe.mapping import mapping_method, run
from cgpipe.mapping.groups import components, neighbours
from tests.conftest import build_mapping_on


def test_heavy_map_of_alanine_dipeptide_is_ten_united_atoms(ala2_topology):
    mapping = build_mapping_on("heavy", ala2_topology)
    atoms = list(ala2_topology.atoms)
    assert mapping.n_beads == 10  # ACE: CH3 C O, ALA: N CA CB C O, NME: N CH3
    xi, xi_f = mapping.coordinate_map, mapping.force_map
    for bead in range(mapping.n_beads):
        (centre,) = np.flatnonzero(xi[bead])
        assert atoms[centre].element is not md.element.hydrogen
        # Each hydrogen's force goes to the bead of the heavy atom it is bonded to.
        for atom in np.flatnonzero(xi_f[bead]):
            if atoms[atom].element is md.element.hydrogen:
                bonded = {b.atom1.index + b.atom2.index - atom for b in ala2_topology.bonds
                          if atom in (b.atom1.index, b.atom2.index)}  # fmt: skip
                assert bonded == {centre}
    assert len(mapping.bonds) == 9  # the heavy-atom tree of the molecule
    assert mapping.bead_masses.sum() == pytest.approx(sum(a.element.mass for a in atoms))


def _two_bead_rows(topology):
    """ACE + ALA's N and H as bead 0 (centre of geometry), the rest as bead 1 (centre of
    mass), hydrogens with their heavy atoms."""
    atoms = list(topology.atoms)
    first = [a.index for a in atoms if a.residue.index == 0] + [
        a.index for a in atoms if a.residue.index == 1 and a.name in ("N", "H")
    ]
    second = [a.index for a in atoms if a.index not in first]
    masses = np.array([a.element.mass for a in atoms])
    rows = [(0, a, 1.0 / len(first), "HEAD") for a in first]
    rows += [(1, a, masses[a] / masses[second].sum(), "TAIL") for a in second]
    return pd.DataFrame(rows, columns=["bead", "atom", "weight", "bead_name"]), first, second


def test_a_user_map_file_is_read_as_written(tmp_path, ala2_topology):
    table, first, second = _two_bead_rows(ala2_topology)
    path = tmp_path / "map.tsv"
    table.to_csv(path, sep="\t", index=False)
    mapping = mapping_method("mine", {"files": {"mine": str(path)}}).build(ala2_topology, None)
    assert mapping.name == "mine" and mapping.n_beads == 2
    xi = mapping.coordinate_map
    np.testing.assert_allclose(xi[0, first], 1.0 / len(first))
    np.testing.assert_allclose(xi.sum(axis=1), 1.0)
    assert np.count_nonzero(mapping.force_map, axis=1).tolist() == [len(first), len(second)]
    assert [a.name for a in mapping.topology.atoms] == ["HEAD", "TAIL"]
    assert mapping.bonds.tolist() == [[0, 1]]  # the N-CA bond joins the two beads
    assert mapping.bead_types.tolist() == [0, 1]
    # Bead 0's coordinates: the centre of geometry of its atoms, for any frame.
    x = np.random.default_rng(0).normal(size=(22, 3))
    np.testing.assert_allclose((xi @ x)[0], x[first].mean(axis=0))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.drop(columns="weight"), r"missing columns \['weight'\]"),
        (lambda t: t.assign(atom=t.atom.where(t.index != 3, 22)), "row 4: atom 22 is outside"),
        (lambda t: t.assign(atom=t.atom.astype(object).where(t.index != 2, "CA")), "row 3: atom"),
        (lambda t: t.assign(weight=t.weight.where(t.index != 0, 0.5)), "weights of bead 0 sum to"),
        (lambda t: t.assign(weight=t.weight.where(t.index != 0, -0.1)), "row 1: weight"),
        (lambda t: pd.concat([t, t.iloc[[5]]]), "row 23: atom .* appears twice in bead"),
        (lambda t: t.assign(bead=t.bead.replace(1, 2)), "bead 1 has no row"),
        (lambda t: t.assign(colour="red"), r"unknown columns \['colour'\]"),
    ],
)
def test_a_bad_map_file_is_refused_naming_what_is_wrong(tmp_path, ala2_topology, edit, message):
    table, _, _ = _two_bead_rows(ala2_topology)
    path = tmp_path / "map.csv"
    edit(table).to_csv(path, index=False)
    method = mapping_method("mine", {"files": {"mine": str(path)}})
    with pytest.raises(InputError, match=f"{path}.*{message}"):
        method.build(ala2_topology, None)


def test_a_missing_map_file_is_refused(tmp_path, ala2_topology):
    method = mapping_method("mine", {"files": {"mine": str(tmp_path / "no.csv")}})
    with pytest.raises(InputError, match="no.csv: the map file does not exist"):
        method.build(ala2_topology, None)


def test_a_map_splitting_a_constraint_is_refused_naming_the_atoms(
    tmp_path, ala2_reference, ala2_topology, test_config
):
    # The reference ran with HBonds; a map that puts ALA's H apart from its N splits one.
    table, first, _ = _two_bead_rows(ala2_topology)
    atoms = list(ala2_topology.atoms)
    h = next(a.index for a in atoms if a.residue.index == 1 and a.name == "H")
    table.loc[table.atom == h, "bead"] = 1
    table.loc[table.bead == 0, "weight"] = 1.0 / (len(first) - 1)
    masses = np.array([a.element.mass for a in atoms])
    tail = table.bead == 1
    table.loc[tail, "weight"] = masses[table.atom[tail]] / masses[table.atom[tail]].sum()
    table = table.drop(columns="bead_name")
    path = tmp_path / "map.csv"
    table.to_csv(path, index=False)
    cfg = copy.deepcopy(test_config)
    cfg["mapping"]["files"] = {"mine": str(path)}
    output = tmp_path / "mine.parquet"
    with pytest.raises(InputError, match=rf"constraints HBonds hold atoms .*\({atoms[h]}\)"):
        run(ala2_reference, output, name="mine", cfg=cfg)
    assert not output.exists()


def test_a_user_map_runs_as_a_mapping_and_records_its_file(tmp_path, ala2_reference, test_config):
    topology = md.load(str(ala2_reference[0]), frame=0).topology
    table, _, _ = _two_bead_rows(topology)
    path = tmp_path / "map.parquet"
    table.to_parquet(path)
    cfg = copy.deepcopy(test_config)
    cfg["mapping"]["files"] = {"mine": str(path)}
    mapping = run(ala2_reference, tmp_path / "mine.parquet", name="mine", cfg=cfg)
    assert all(
        len(components(neighbours(topology), np.flatnonzero(row).tolist())) == 1
        for row in mapping.coordinate_map
    )
    from cgpipe.io import read_provenance

    record = read_provenance(tmp_path / "mine.parquet")
    assert record["config"]["file"] == str(path) and str(path) in record["inputs"]


def test_a_user_map_may_not_shadow_a_registered_one(tmp_path):
    sheet = tmp_path / "systems.tsv"
    sheet.write_text(
        "system\tstructure\tmappings\n"
        "ala2\topenmmtools:data/alanine-dipeptide-gbsa/alanine-dipeptide.pdb\tcalpha\n"
    )
    row = load_systems(sheet).loc["ala2"]
    with pytest.raises(ConfigError, match="mapping.files.calpha: a user map may not take"):
        system_config(load_config({"mapping": {"files": {"calpha": "x.csv"}}}), row)


def test_two_beads_of_an_isolated_molecule_feel_equal_and_opposite_forces(
    tmp_path, ala2_reference, ala2_topology
):
    # Newton's third law, independent of cgpipe: the reference (GBn2, no external field)
    # has zero total force per frame, so a map splitting the molecule in two beads that
    # aggregates every atom's force must give F_0 = -F_1 (the reason a force regulariser
    # can be zeroed by merging everything into one bead).
    from cgpipe.forces import project
    from cgpipe.io import read_trajectory

    table, _, _ = _two_bead_rows(ala2_topology)
    path = tmp_path / "map.tsv"
    table.to_csv(path, sep="\t", index=False)
    mapping = mapping_method("mine", {"files": {"mine": str(path)}}).build(ala2_topology, None)
    forces = project(read_trajectory(ala2_reference[0]), mapping).forces.astype(np.float64)
    scale = np.linalg.norm(forces[:, 0], axis=1)
    assert scale.min() > 10.0  # kJ/mol/nm: the beads do push on each other
    np.testing.assert_allclose(forces[:, 0] + forces[:, 1], 0.0, atol=1e-3 * scale.max())
