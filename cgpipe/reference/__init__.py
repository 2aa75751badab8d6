"""Reference data: all-atom trajectories with forces, generated with OpenMM or downloaded.

- :mod:`~cgpipe.reference.structure`: a system's starting structure, from a package
  file, a PDB/mmCIF file or a sequence; repaired, protonated and solvated.
- :mod:`~cgpipe.reference.openmm_generation`: Langevin trajectories recording positions
  (nm) and forces (kJ/mol/nm) every ``save_every`` steps, with checkpoints and restart.
- :mod:`~cgpipe.reference.download` and :mod:`~cgpipe.reference.ingest`: checksummed
  downloads of public datasets (mdshare, mdCATH) and their conversion to the same
  artifact.

Every path writes the mdtraj-readable HDF5 artifact of :mod:`cgpipe.io.trajectory`.
"""

from cgpipe.reference.openmm_generation import choose_platform, generate_trajectory
from cgpipe.reference.structure import prepare_structure, resolve_structure

__all__ = ["choose_platform", "generate_trajectory", "prepare_structure", "resolve_structure"]
