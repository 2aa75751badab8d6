"""mdshare and mdCATH files, built small and synthetic from the alanine-dipeptide
structure, turned into reference artifacts: units, times, provenance, and refusals."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mdtraj as md
import numpy as np
import openmm.unit as unit
import pytest

from cgpipe.io import read_trajectory
from cgpipe.reference.download import fetch_mdcath
from cgpipe.reference.ingest import (
    KCAL_PER_MOL_ANGSTROM_TO_KJ_PER_MOL_NM,
    ingest_mdcath,
    ingest_mdshare,
)
from tests.synthetic import DOMAIN, write_mdcath

N_FRAMES = 6


@pytest.fixture
def ala2_frames(ala2_structure: Path) -> md.Trajectory:
    """Six frames of alanine dipeptide: the structure, jiggled by ~0.01 nm."""
    structure = md.load(str(ala2_structure))
    rng = np.random.default_rng(7)
    xyz = structure.xyz + rng.normal(0.0, 0.01, size=(N_FRAMES, structure.n_atoms, 3))
    return md.Trajectory(
        xyz.astype(np.float32), structure.topology, time=np.arange(N_FRAMES) * 1.0 + 1.0
    )


@pytest.fixture
def mdcath_arrays(ala2_frames) -> tuple[np.ndarray, np.ndarray]:
    """Positions in Å and forces in kcal/mol/Å, as mdCATH stores them."""
    rng = np.random.default_rng(11)
    coords = (ala2_frames.xyz * 10.0).astype(np.float32)
    forces = rng.normal(0.0, 20.0, size=coords.shape).astype(np.float32)
    return coords, forces


@pytest.fixture
def mdcath_h5(tmp_path, ala2_structure, mdcath_arrays) -> Path:
    coords, forces = mdcath_arrays
    return write_mdcath(
        tmp_path / f"mdcath_dataset_{DOMAIN}.h5", ala2_structure.read_text(), coords, forces
    )


def _assert_nothing_written(output: Path) -> None:
    assert not output.exists()
    assert not output.parent.exists() or not any(output.parent.iterdir())


# --- mdCATH ------------------------------------------------------------------------------


def test_force_conversion_factor_agrees_with_openmm_units():
    expected = (1.0 * unit.kilocalorie_per_mole / unit.angstrom).value_in_unit(
        unit.kilojoule_per_mole / unit.nanometer
    )
    assert KCAL_PER_MOL_ANGSTROM_TO_KJ_PER_MOL_NM == pytest.approx(expected, rel=1e-12)
    assert KCAL_PER_MOL_ANGSTROM_TO_KJ_PER_MOL_NM == pytest.approx(41.84, rel=1e-12)


def test_mdcath_is_converted_to_nm_and_kj_per_mol_nm(tmp_path, mdcath_h5, mdcath_arrays):
    coords, forces = mdcath_arrays
    output = tmp_path / "results" / "traj_0.h5"
    records = [{"url": "http://example/x.h5", "sha256": "ab", "pinned": True}]

    returned = ingest_mdcath(
        mdcath_h5, output, system="ala2", temperature=348, replica=1, download=records
    )

    data = read_trajectory(output)
    assert data.topology.n_atoms == 22 and data.n_frames == N_FRAMES
    np.testing.assert_allclose(data.coordinates, coords.astype(np.float64) * 0.1, rtol=1e-6)
    np.testing.assert_allclose(data.forces, forces.astype(np.float64) * 41.84, rtol=1e-6)
    np.testing.assert_array_equal(data.time, 1000.0 * np.arange(1, N_FRAMES + 1))
    np.testing.assert_array_equal(returned.coordinates, data.coordinates)
    np.testing.assert_array_equal(returned.forces, data.forces)

    record = data.provenance
    assert record["stage"] == "reference"
    assert record["config"]["temperature"] == 348 and record["config"]["replica"] == 1
    extra = record["extra"]
    assert extra["units"]["coordinates"] == "Å -> nm, x0.1"
    assert extra["units"]["forces"] == "kcal/mol/Å -> kJ/mol/nm, x41.84"
    assert extra["source"] == "mdcath" and extra["domain"] == DOMAIN
    assert extra["layout"] == "mdcath-only-protein-v1.0"
    assert extra["download"] == records
    assert list(record["inputs"]) == [str(mdcath_h5)]

    # mdtraj reads the artifact as-is: positions in nm, time in ps
    trajectory = md.load(str(output))
    assert trajectory.n_atoms == 22
    np.testing.assert_allclose(trajectory.xyz, coords * 0.1, rtol=1e-6)
    np.testing.assert_allclose(trajectory.time, 1000.0 * np.arange(1, N_FRAMES + 1))


def test_mdcath_stride_keeps_the_file_times(tmp_path, mdcath_h5, mdcath_arrays):
    coords, _ = mdcath_arrays
    data = ingest_mdcath(
        mdcath_h5, tmp_path / "out.h5", system="ala2", temperature=320, replica=0, stride=2
    )
    np.testing.assert_array_equal(data.time, [1000.0, 3000.0, 5000.0])
    np.testing.assert_allclose(data.coordinates, coords[::2] * 0.1, rtol=1e-6)


def test_nan_forces_are_refused_naming_the_frame(tmp_path, ala2_structure, mdcath_arrays):
    coords, forces = mdcath_arrays
    forces = forces.copy()
    forces[4, 7, 1] = np.nan
    h5_path = write_mdcath(tmp_path / "bad.h5", ala2_structure.read_text(), coords, forces)
    output = tmp_path / "results" / "traj_0.h5"

    with pytest.raises(ValueError) as caught:
        ingest_mdcath(h5_path, output, system="ala2", temperature=320, replica=0)
    message = str(caught.value)
    assert str(h5_path) in message and f"{DOMAIN}/320/0/forces" in message
    assert "frame 4 atom 7" in message
    _assert_nothing_written(output)

    # with a stride the frame is still named in the file's own numbering
    with pytest.raises(ValueError, match="frame 4 atom 7"):
        ingest_mdcath(h5_path, output, system="ala2", temperature=320, replica=0, stride=2)
    _assert_nothing_written(output)


def test_infinite_coords_are_refused(tmp_path, ala2_structure, mdcath_arrays):
    coords, forces = mdcath_arrays
    coords = coords.copy()
    coords[2, 0, 0] = np.inf
    h5_path = write_mdcath(tmp_path / "bad.h5", ala2_structure.read_text(), coords, forces)
    output = tmp_path / "results" / "traj_0.h5"

    with pytest.raises(ValueError, match=rf"{DOMAIN}/320/0/coords .*frame 2 atom 0"):
        ingest_mdcath(h5_path, output, system="ala2", temperature=320, replica=0)
    _assert_nothing_written(output)


def test_mdcath_atom_count_mismatch(tmp_path, ala2_structure, mdcath_arrays):
    coords, forces = mdcath_arrays
    h5_path = write_mdcath(
        tmp_path / "short.h5", ala2_structure.read_text(), coords[:, :21], forces[:, :21]
    )
    output = tmp_path / "results" / "traj_0.h5"

    with pytest.raises(ValueError) as caught:
        ingest_mdcath(h5_path, output, system="ala2", temperature=320, replica=0)
    message = str(caught.value)
    assert str(h5_path) in message and "has 21 atoms" in message and "has 22" in message
    _assert_nothing_written(output)


def test_missing_temperature_lists_the_available_ones(tmp_path, mdcath_h5):
    output = tmp_path / "results" / "out.h5"
    with pytest.raises(ValueError) as caught:
        ingest_mdcath(mdcath_h5, output, system="ala2", temperature=413, replica=0)
    message = str(caught.value)
    assert str(mdcath_h5) in message and f"{DOMAIN}/413" in message
    assert "available: ['320', '348']" in message
    _assert_nothing_written(output)


def test_missing_replica_and_missing_dataset(tmp_path, ala2_structure, mdcath_h5, mdcath_arrays):
    output = tmp_path / "results" / "out.h5"
    with pytest.raises(
        ValueError, match=rf"no replica group {DOMAIN}/320/4; available: \['0', '1'\]"
    ):
        ingest_mdcath(mdcath_h5, output, system="ala2", temperature=320, replica=4)

    coords, forces = mdcath_arrays
    h5_path = write_mdcath(
        tmp_path / "noforces.h5", ala2_structure.read_text(), coords, forces, datasets=("coords",)
    )
    with pytest.raises(ValueError, match=rf"noforces.h5: no '{DOMAIN}/320/0/forces' dataset"):
        ingest_mdcath(h5_path, output, system="ala2", temperature=320, replica=0)
    _assert_nothing_written(output)


def test_download_then_ingest_over_local_http(http_server, tmp_path, mdcath_h5, monkeypatch):
    served = http_server.root / mdcath_h5.name
    served.write_bytes(mdcath_h5.read_bytes())
    folder = tmp_path / "resources" / "download" / "ala2"

    record = fetch_mdcath(DOMAIN, folder, base_url=http_server.url(""), retries=0)
    output = tmp_path / "results" / "reference" / "ala2" / "traj_0.h5"
    data = ingest_mdcath(
        record.path,
        output,
        system="ala2",
        temperature=320,
        replica=1,
        download=[record.to_dict()],
    )

    assert record.pinned and (folder / f"mdcath_dataset_{DOMAIN}.h5.sha256").exists()
    provenance = read_trajectory(output).provenance
    (downloaded,) = provenance["extra"]["download"]
    assert downloaded["url"] == http_server.url(f"mdcath_dataset_{DOMAIN}.h5")
    assert downloaded["sha256"] == hashlib.sha256(served.read_bytes()).hexdigest()
    assert provenance["inputs"][str(record.path)] == downloaded["sha256"]
    assert data.forces is not None and data.n_frames == N_FRAMES


# --- mdshare -----------------------------------------------------------------------------


def test_mdshare_positions_only(tmp_path, ala2_structure, ala2_frames):
    xtc = tmp_path / "alanine-dipeptide-0-250ns-nowater.xtc"
    ala2_frames.save_xtc(str(xtc))
    output = tmp_path / "results" / "traj_2.h5"
    records = [{"url": "http://example/a.pdb"}, {"url": "http://example/a.xtc"}]

    ingest_mdshare(ala2_structure, xtc, output, system="ala2", index=2, download=records)

    data = read_trajectory(output)
    assert data.forces is None and data.n_frames == N_FRAMES
    # XTC keeps positions to 0.001 nm
    np.testing.assert_allclose(data.coordinates, ala2_frames.xyz, atol=1e-3)
    np.testing.assert_allclose(data.time, ala2_frames.time)
    extra = data.provenance["extra"]
    assert extra["source"] == "mdshare" and extra["dataset"] == "alanine-dipeptide"
    assert extra["trajectory"] == 2 and extra["forces"] is None
    assert extra["download"] == records
    assert md.load(str(output)).n_frames == N_FRAMES


def test_mdshare_stride(tmp_path, ala2_structure, ala2_frames):
    xtc = tmp_path / "a.xtc"
    ala2_frames.save_xtc(str(xtc))
    data = ingest_mdshare(ala2_structure, xtc, tmp_path / "o.h5", system="a", index=0, stride=3)
    np.testing.assert_allclose(data.time, ala2_frames.time[::3])


def test_mdshare_atom_count_mismatch(tmp_path, ala2_structure, ala2_frames):
    xtc = tmp_path / "short.xtc"
    ala2_frames.atom_slice(range(21)).save_xtc(str(xtc))
    output = tmp_path / "results" / "traj_0.h5"

    with pytest.raises(ValueError) as caught:
        ingest_mdshare(ala2_structure, xtc, output, system="ala2", index=0)
    message = str(caught.value)
    assert str(xtc) in message and "has 21 atoms" in message and "has 22" in message
    _assert_nothing_written(output)


def test_mdshare_unreadable_xtc_is_refused(tmp_path, ala2_structure, ala2_frames):
    whole = tmp_path / "whole.xtc"
    ala2_frames.save_xtc(str(whole))
    cut = tmp_path / "cut.xtc"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2 + 7])
    output = tmp_path / "results" / "traj_0.h5"

    with pytest.raises(ValueError, match=r"cut\.xtc: not a readable XTC trajectory"):
        ingest_mdshare(ala2_structure, cut, output, system="ala2", index=0)
    _assert_nothing_written(output)
