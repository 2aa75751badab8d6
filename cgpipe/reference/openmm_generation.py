"""OpenMM generation of reference trajectories (positions and forces)."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import mdtraj as md
import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
from tqdm import tqdm

from cgpipe.io import Provenance, TrajectoryData, write_trajectory
from cgpipe.seeds import derive_seed

log = logging.getLogger(__name__)

_CONSTRAINTS = {
    "none": None,
    "HBonds": app.HBonds,
    "AllBonds": app.AllBonds,
    "HAngles": app.HAngles,
}
_PLATFORM_PREFERENCE = ("CUDA", "OpenCL", "CPU", "Reference")


def resolve_structure(spec: str) -> Path:
    """Path of a structure given as a file path or as ``package:relative/path``.

    The package form finds a file shipped inside an installed package without
    importing the package.
    """
    if ":" in spec and not Path(spec).exists():
        package, relative = spec.split(":", 1)
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise FileNotFoundError(f"structure {spec!r}: package {package!r} is not installed")
        path = Path(next(iter(found.submodule_search_locations))) / relative
    else:
        path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"structure {spec!r}: no file at {path}")
    return path


def _load_structure(path: Path) -> tuple[app.Topology, Any]:
    is_cif = path.suffix.lower() in (".cif", ".mmcif", ".pdbx")
    if not is_cif and not any(line.startswith(("ATOM", "HETATM")) for line in open(path)):
        raise ValueError(f"{path}: the structure holds no atoms (no ATOM or HETATM record)")
    try:
        structure = app.PDBxFile(str(path)) if is_cif else app.PDBFile(str(path))
    except Exception as error:  # OpenMM's parsers raise assorted types on malformed files
        raise ValueError(f"{path}: cannot read the structure ({error})") from error
    if structure.topology.getNumAtoms() == 0:
        raise ValueError(f"{path}: the structure holds no atoms")
    return structure.topology, structure.positions


def choose_platform(name: str | None = None) -> openmm.Platform:
    """The named OpenMM platform, or the fastest available (CUDA, OpenCL, CPU)."""
    name = name or os.environ.get("CGPIPE_OPENMM_PLATFORM")
    available = [
        openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())
    ]
    if name:
        if name not in available:
            raise ValueError(f"OpenMM platform {name!r} is not available; have {available}")
        return openmm.Platform.getPlatformByName(name)
    for candidate in _PLATFORM_PREFERENCE:
        if candidate in available:
            return openmm.Platform.getPlatformByName(candidate)
    raise RuntimeError("no OpenMM platform available")


def generate_trajectory(
    structure: str,
    output: str | os.PathLike[str],
    *,
    system: str,
    index: int,
    temperature: float,
    params: dict[str, Any],
    master_seed: int,
    threads: int = 1,
    platform_name: str | None = None,
) -> TrajectoryData:
    """Simulate one reference trajectory and write it to ``output``.

    Parameters
    ----------
    structure
        Structure spec for :func:`resolve_structure`.
    system, index
        System name and trajectory number; with ``master_seed`` they fix the seed.
    temperature
        K.
    params
        The ``reference`` config section: forcefield, timestep (ps), friction (1/ps),
        constraints, equilibration_steps, n_steps, save_every.
    """
    path = resolve_structure(structure)
    topology, positions = _load_structure(path)
    forcefield = app.ForceField(*params["forcefield"])
    try:
        omm_system = forcefield.createSystem(
            topology,
            nonbondedMethod=app.NoCutoff,
            constraints=_CONSTRAINTS[params["constraints"]],
        )
    except ValueError as error:
        raise ValueError(
            f"{path}: force field {params['forcefield']} cannot build it: {error}"
        ) from error
    seed = derive_seed(master_seed, "reference", system, index)
    integrator = openmm.LangevinMiddleIntegrator(
        temperature * unit.kelvin,
        params["friction"] / unit.picosecond,
        params["timestep"] * unit.picoseconds,
    )
    integrator.setRandomNumberSeed(seed)
    platform = choose_platform(platform_name)
    properties = {"Threads": str(threads)} if platform.getName() == "CPU" else {}
    simulation = app.Simulation(topology, omm_system, integrator, platform, properties)
    simulation.context.setPositions(positions)
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(temperature * unit.kelvin, seed)
    if params["equilibration_steps"]:
        simulation.step(params["equilibration_steps"])

    save_every = params["save_every"]
    n_frames = params["n_steps"] // save_every
    if n_frames < 1:
        raise ValueError(
            f"reference.n_steps={params['n_steps']} < save_every={save_every}: no frame"
        )
    n_atoms = topology.getNumAtoms()
    coordinates = np.empty((n_frames, n_atoms, 3), dtype=np.float32)
    forces = np.empty((n_frames, n_atoms, 3), dtype=np.float32)
    start = time.perf_counter()
    for frame in tqdm(
        range(n_frames), desc=f"{system} traj {index}", file=sys.stderr, mininterval=5
    ):
        simulation.step(save_every)
        state = simulation.context.getState(getPositions=True, getForces=True)
        coordinates[frame] = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        forces[frame] = state.getForces(asNumpy=True).value_in_unit(
            unit.kilojoule_per_mole / unit.nanometer
        )
    elapsed = time.perf_counter() - start
    ns_per_day = n_frames * save_every * params["timestep"] * 1e-3 / elapsed * 86400.0
    log.info("%s trajectory %d: %.1f ns/day on %s", system, index, ns_per_day, platform.getName())
    time_ps = params["timestep"] * save_every * (np.arange(n_frames) + 1)
    data = TrajectoryData(md.Topology.from_openmm(topology), coordinates, time_ps, forces)
    provenance = Provenance(
        stage="reference",
        config={"system": system, "structure": structure, "temperature": temperature, **params},
        inputs=[path],
        seed=seed,
        extra={"platform": platform.getName(), "ns_per_day": ns_per_day, "trajectory": index},
    )
    write_trajectory(output, data, provenance)
    return data
