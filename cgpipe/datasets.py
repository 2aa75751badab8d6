"""Facts about the public datasets cgpipe downloads, spelled once.

The systems sheet is checked against them when the workflow starts (so this module
imports nothing heavy), and the download and ingest steps read them. Their base URLs
are configuration (``download.mdshare_url``, ``download.mdcath_url``), defaulted in
the config schema.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class MdshareDataset:
    """One mdshare dataset: a topology PDB and trajectories (positions only, nm).

    Attributes
    ----------
    temperature
        K at which the data were simulated.
    topology
        File name of the topology.
    trajectories
        File names of the trajectories, in order.
    """

    temperature: float
    topology: str
    trajectories: tuple[str, ...]

    @property
    def n_trajectories(self) -> int:
        return len(self.trajectories)


# Alanine dipeptide: 3 x 250 ns, one frame per ps, 300 K, explicit water removed.
MDSHARE_DATASETS: dict[str, MdshareDataset] = {
    "alanine-dipeptide": MdshareDataset(
        temperature=300.0,
        topology="alanine-dipeptide-nowater.pdb",
        trajectories=tuple(f"alanine-dipeptide-{i}-250ns-nowater.xtc" for i in range(3)),
    ),
}
# filename -> (MD5 hex digest, size in bytes), from mdshare 0.4.2's catalogue.
MDSHARE_CATALOGUE: dict[str, tuple[str, int]] = {
    "alanine-dipeptide-nowater.pdb": ("728635667ed4937cf4a0e5b7c801d9ea", 1813),
    "alanine-dipeptide-0-250ns-nowater.xtc": ("e82ba584d8e64491f30bd1d9dd019687", 42909936),
    "alanine-dipeptide-1-250ns-nowater.xtc": ("96b7686aa28a459d51a0d77c2dd0316e", 42911308),
    "alanine-dipeptide-2-250ns-nowater.xtc": ("6d3a8d9aecb3aa0e0a1ea9b195b7dfe0", 42907500),
}

# mdCATH: one HDF5 file per CATH domain; 5 replicas at each of 5 temperatures (K),
# one frame per ns, positions in Å and forces in kcal/mol/Å.
MDCATH_FILE = "mdcath_dataset_{domain}.h5"
MDCATH_TEMPERATURES = (320, 348, 379, 413, 450)
MDCATH_REPLICAS = 5
