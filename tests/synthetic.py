"""Synthetic inputs in public datasets' layouts, small enough for tests."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

DOMAIN = "1abcA00"


def write_mdcath(
    path: Path,
    pdb_text: str,
    coords_angstrom: np.ndarray,
    forces_kcal: np.ndarray,
    *,
    temperatures: tuple[str, ...] = ("320", "348"),
    replicas: tuple[str, ...] = ("0", "1"),
    datasets: tuple[str, ...] = ("coords", "forces"),
) -> Path:
    """A file in mdCATH's layout (mdcath-only-protein-v1.0) with the given data in
    every temperature and replica group."""
    n_frames, n_atoms, _ = coords_angstrom.shape
    with h5py.File(path, "w") as handle:
        handle.attrs["layout"] = "mdcath-only-protein-v1.0"
        domain = handle.create_group(DOMAIN)
        domain.attrs.update(numChains=1, numProteinAtoms=n_atoms, numResidues=3)
        for name, value in (("chain", b"A"), ("element", b"C"), ("resname", b"ALA")):
            domain.create_dataset(name, data=np.array([value] * n_atoms))
        domain.create_dataset("resid", data=np.ones(n_atoms, dtype=np.int64))
        domain.create_dataset("z", data=np.full(n_atoms, 6, dtype=np.int64))
        domain.create_dataset("pdb", data=pdb_text.encode())
        domain.create_dataset("psf", data=b"PSF\n")
        domain.create_dataset("pdbProteinAtoms", data=pdb_text.encode())
        for temperature in temperatures:
            for replica in replicas:
                group = domain.create_group(f"{temperature}/{replica}")
                group.attrs["numFrames"] = n_frames
                if "coords" in datasets:
                    group.create_dataset("coords", data=coords_angstrom.astype(np.float32))
                    group["coords"].attrs["unit"] = "Angstrom"
                if "forces" in datasets:
                    group.create_dataset("forces", data=forces_kcal.astype(np.float32))
                    group["forces"].attrs["unit"] = "kcal/mol/Angstrom"
                group.create_dataset("box", data=np.eye(3, dtype=np.float32) * 5.0)
                group.create_dataset("gyrationRadius", data=np.ones(n_frames))
                group.create_dataset("rmsd", data=np.zeros(n_frames, dtype=np.float32))
                group.create_dataset("rmsf", data=np.zeros(3, dtype=np.float32))
                group.create_dataset("dssp", data=np.array([[b"C"] * 3] * n_frames))
    return path
