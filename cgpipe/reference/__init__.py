"""Reference data: all-atom Langevin trajectories with forces, generated with OpenMM.

Each trajectory is minimised, given Maxwell-Boltzmann velocities, equilibrated and then
recorded: positions (nm) and the potential's forces (kJ/mol/nm) every ``save_every``
steps, into the mdtraj-readable HDF5 artifact of :mod:`cgpipe.io.trajectory`.
"""

from cgpipe.reference.openmm_generation import generate_trajectory, resolve_structure

__all__ = ["generate_trajectory", "resolve_structure"]
