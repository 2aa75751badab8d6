"""OpenMM generation of reference trajectories (positions and forces), with restart.

Each trajectory starts from its own structure: the system's prepared structure is
minimised, then run for ``start_steps`` at ``start_temperature`` (Langevin, NVT at the
prepared box, with a seed of its own), so that trajectories do not share one start
(a shared start correlates them and, for a symmetric prepared structure, biases them).
Nothing of that run is recorded. The start is given Maxwell-Boltzmann velocities at the
target temperature and equilibrated for ``equilibration_steps`` (in explicit water under
a Monte Carlo barostat, after which recording runs at the equilibrated volume), then
recorded: positions (nm) and the potential's forces (kJ/mol/nm) every ``save_every``
steps. With ``start_steps: 0`` every trajectory starts from the minimised prepared
structure.

Long runs are cut into blocks of ``checkpoint_interval`` steps. After each block the
frames and an OpenMM checkpoint (positions, velocities, box, random-number state) go
to ``<output>.checkpoint/``; a killed job started again resumes from the last block
and, on the same platform, produces the same trajectory as an uninterrupted run.
"""

from __future__ import annotations

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

from cgpipe.errors import InputError
from cgpipe.geometry import kabsch, rmsd, superpose
from cgpipe.io import Provenance, TrajectoryWriter, sha256sum
from cgpipe.io.blocks import Blocks, fingerprint
from cgpipe.reference.structure import (
    WATER_AND_IONS,
    create_system,
    force_classes,
    forcefield_files,
    load_forcefield,
    load_structure,
    resolve_structure,
)
from cgpipe.seeds import stage_seed

log = logging.getLogger(__name__)

_PLATFORM_PREFERENCE = ("CUDA", "OpenCL", "CPU", "Reference")
_BAROSTAT_INTERVAL = 25  # steps between Monte Carlo volume moves
_FORCE_UNIT = unit.kilojoule_per_mole / unit.nanometer
_ENERGY_UNIT = unit.kilojoule_per_mole


def recording_seed(master_seed: int, system: str, index: int) -> int:
    """Seed of trajectory ``index``'s equilibration and recording (velocities, Langevin noise)."""
    return stage_seed(master_seed, "reference", system, index=index)


def start_seed(master_seed: int, system: str, index: int) -> int:
    """Seed of trajectory ``index``'s high-temperature start run: a stream of its own."""
    return stage_seed(master_seed, "reference-start", system, index=index)


def choose_platform(name: str | None = None) -> openmm.Platform:
    """The named OpenMM platform, or the fastest available (CUDA, OpenCL, CPU).

    ``name`` (or the environment variable ``CGPIPE_OPENMM_PLATFORM``) overrides the choice.
    """
    name = name or os.environ.get("CGPIPE_OPENMM_PLATFORM")
    available = [
        openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())
    ]
    if name:
        if name not in available:
            raise InputError(f"OpenMM platform {name!r} is not available; have {available}")
        return openmm.Platform.getPlatformByName(name)
    for candidate in _PLATFORM_PREFERENCE:
        if candidate in available:
            return openmm.Platform.getPlatformByName(candidate)
    raise RuntimeError("no OpenMM platform available")


def platform_properties(platform: openmm.Platform, threads: int) -> dict[str, str]:
    if platform.getName() == "CPU":
        return {"Threads": str(threads)}
    if platform.getName() in ("CUDA", "OpenCL"):
        # Single-precision forces, double-precision integration: the usual trade-off.
        return {"Precision": "mixed"}
    return {}


class ReferenceSystem:
    """A prepared structure made ready to simulate: OpenMM system, solute atoms, seed.

    Parameters
    ----------
    structure
        A prepared structure (path or ``package:relative/path``) with every hydrogen,
        and water for explicit solvent.
    params
        The ``reference`` config section.
    temperature
        K.
    """

    def __init__(
        self, structure: str | os.PathLike[str], params: dict[str, Any], temperature: float
    ):
        self.path = resolve_structure(os.fspath(structure))
        self.params = params
        self.temperature = temperature
        self.topology, self.positions = load_structure(self.path)
        self.explicit = params["solvent"] == "tip3p"
        if self.explicit and self.topology.getPeriodicBoxVectors() is None:
            raise InputError(f"{self.path}: explicit water needs a periodic box (CRYST1 record)")
        self.forcefield = load_forcefield(params)
        self.solute = np.array(
            [a.index for a in self.topology.atoms() if a.residue.name not in WATER_AND_IONS]
        )
        if not len(self.solute):
            raise InputError(f"{self.path}: no solute atoms (only water and ions)")

    def system(self, *, barostat: bool, seed: int = 0) -> openmm.System:
        """The OpenMM system; in explicit water with ``barostat``, a Monte Carlo barostat
        whose volume moves draw from ``seed`` (0: OpenMM picks one, not reproducible)."""
        system = create_system(self.topology, self.forcefield, self.params, str(self.path))
        # What the provenance records: the forces of the recording system, barostat aside.
        self.force_classes = force_classes(system)
        if barostat and self.explicit:
            barostat_force = openmm.MonteCarloBarostat(
                self.params["pressure"] * unit.bar,
                self.temperature * unit.kelvin,
                _BAROSTAT_INTERVAL,
            )
            barostat_force.setRandomNumberSeed(seed)
            system.addForce(barostat_force)
        return system

    def simulation(
        self,
        system: openmm.System,
        seed: int,
        platform: openmm.Platform,
        threads: int,
        temperature: float | None = None,
    ) -> app.Simulation:
        """A Langevin simulation of ``system`` at ``temperature`` (K; default: the target)."""
        integrator = openmm.LangevinMiddleIntegrator(
            (self.temperature if temperature is None else temperature) * unit.kelvin,
            self.params["friction"] / unit.picosecond,
            self.params["timestep"] * unit.picoseconds,
        )
        integrator.setRandomNumberSeed(seed)
        return app.Simulation(
            self.topology, system, integrator, platform, platform_properties(platform, threads)
        )

    def solute_topology(self) -> md.Topology:
        return md.Topology.from_openmm(self.topology).subset(self.solute)

    def start_facts(self, context: openmm.Context) -> dict[str, float]:
        """The structure in ``context``: potential energy (kJ/mol, whole simulated system)
        and RMSD (nm) of the solute's heavy atoms from the prepared structure, superposed."""
        state = context.getState(getEnergy=True, getPositions=True)
        atoms = list(self.topology.atoms())
        heavy = [
            i
            for i in self.solute
            if atoms[i].element is not None and atoms[i].element.atomic_number > 1
        ]
        start = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)[heavy][None]
        prepared = np.array(self.positions.value_in_unit(unit.nanometer))[heavy][None]
        rotation, translation = kabsch(start, prepared)
        return {
            "start_potential_energy": state.getPotentialEnergy().value_in_unit(_ENERGY_UNIT),
            "start_rmsd": float(rmsd(superpose(start, rotation, translation), prepared)[0]),
        }


def hot_start(
    reference: ReferenceSystem, seed: int, platform: openmm.Platform, threads: int
) -> unit.Quantity:
    """All-atom positions (a Quantity in nm) of an independent start: the prepared structure
    minimised, then run for ``start_steps`` at ``start_temperature`` (K) from velocities and
    Langevin noise drawn with ``seed`` (see :func:`start_seed`). Nothing of it is recorded.

    In explicit water the run is NVT at the prepared box: the barostat of the equilibration
    that follows, at the target temperature, then sets the volume.
    """
    params = reference.params
    simulation = reference.simulation(
        reference.system(barostat=False), seed, platform, threads, params["start_temperature"]
    )
    simulation.context.setPositions(reference.positions)
    if reference.explicit:
        simulation.context.setPeriodicBoxVectors(*reference.topology.getPeriodicBoxVectors())
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(params["start_temperature"] * unit.kelvin, seed)
    simulation.step(params["start_steps"])
    return simulation.context.getState(getPositions=True).getPositions(asNumpy=True)


def _equilibrate(
    reference: ReferenceSystem,
    seeds: tuple[int, int],
    platform: openmm.Platform,
    threads: int,
) -> tuple[app.Simulation, dict[str, float]]:
    """Start (hot run, or minimisation alone), draw velocities, equilibrate.

    ``seeds`` are the recording seed and the start seed. Returns the simulation that
    records and the facts of the start structure (see :meth:`ReferenceSystem.start_facts`).
    """
    seed, seed_of_start = seeds
    steps = reference.params["equilibration_steps"]
    hot = reference.params["start_steps"] > 0
    positions = hot_start(reference, seed_of_start, platform, threads) if hot else None
    simulation = reference.simulation(
        reference.system(barostat=True, seed=seed), seed, platform, threads
    )
    simulation.context.setPositions(reference.positions if positions is None else positions)
    if reference.explicit:
        simulation.context.setPeriodicBoxVectors(*reference.topology.getPeriodicBoxVectors())
    if not hot:
        # A hot start is not minimised again: that would only take it to the bottom of its basin.
        simulation.minimizeEnergy()
    start = reference.start_facts(simulation.context)
    simulation.context.setVelocitiesToTemperature(reference.temperature * unit.kelvin, seed)
    if steps:
        simulation.step(steps)
    if not reference.explicit:
        return simulation, start
    # Recording runs at the equilibrated volume: a new context without the barostat.
    state = simulation.context.getState(getPositions=True, getVelocities=True)
    production = reference.simulation(reference.system(barostat=False), seed, platform, threads)
    production.context.setPeriodicBoxVectors(*state.getPeriodicBoxVectors())
    production.context.setPositions(state.getPositions())
    production.context.setVelocities(state.getVelocities())
    return production, start


def generate_trajectory(
    structure: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    system: str,
    index: int,
    temperature: float,
    params: dict[str, Any],
    master_seed: int,
    threads: int = 1,
    platform_name: str | None = None,
) -> dict[str, Any]:
    """Simulate one reference trajectory and write it to ``output``; resume if interrupted.

    Parameters
    ----------
    structure
        The prepared structure (see :mod:`cgpipe.reference.structure`).
    system, index
        System name and trajectory number; with ``master_seed`` they fix the seed.
    temperature
        K.
    params
        The ``reference`` config section: forcefield, solvent, timestep (ps), friction
        (1/ps), constraints, start_temperature (K), start_steps, equilibration_steps,
        n_steps, save_every, checkpoint_interval.

    Returns
    -------
    The provenance ``extra`` record: platform, ns/day, frames, restarts, and the start:
    ``start_temperature`` (K), ``start_steps``, ``start_seed``, ``start_potential_energy``
    (kJ/mol, whole simulated system, before equilibration) and ``start_rmsd`` (nm, solute
    heavy atoms from the prepared structure, superposed).
    """
    output = Path(output)
    reference = ReferenceSystem(structure, params, temperature)
    save_every = params["save_every"]
    n_frames = params["n_steps"] // save_every
    if n_frames < 1:
        raise InputError(
            f"reference.n_steps={params['n_steps']} < save_every={save_every}: no frame"
        )
    frames_per_block = max(1, params["checkpoint_interval"] // save_every)
    n_blocks = -(-n_frames // frames_per_block)
    seed = recording_seed(master_seed, system, index)
    seed_of_start = start_seed(master_seed, system, index)
    platform = choose_platform(platform_name)
    recorded = {k: v for k, v in params.items() if k not in ("n_trajectories",)}
    checkpoints = Blocks(
        output.with_name(output.name + ".checkpoint"),
        fingerprint(
            params=recorded,
            temperature=temperature,
            seed=seed,
            structure=sha256sum(reference.path),
            platform=platform.getName(),
        ),
    )

    resumed = checkpoints.load()
    if resumed is not None:
        simulation = reference.simulation(reference.system(barostat=False), seed, platform, threads)
        try:
            simulation.context.loadCheckpoint(resumed["state"])
        except Exception as error:  # OpenMM raises a bare Exception for foreign checkpoints
            log.warning(
                "cannot load the checkpoint in %s (%s); starting over", checkpoints.folder, error
            )
            resumed = None
    if resumed is None:
        checkpoints.reset()
        simulation, start_record = _equilibrate(reference, (seed, seed_of_start), platform, threads)
        checkpoints.save_state(
            simulation.context.createCheckpoint(),
            n_blocks=0,
            n_frames=0,
            seconds=0.0,
            restarts=0,
            start=start_record,
        )
        done_blocks, done_frames, seconds, restarts = 0, 0, 0.0, 0
    else:
        start_record = resumed["start"]
        done_blocks, done_frames = resumed["n_blocks"], resumed["n_frames"]
        seconds, restarts = resumed["seconds"], resumed["restarts"] + 1
        log.info("%s trajectory %d: resuming at frame %d", system, index, done_frames)

    solute = reference.solute
    n_solute = len(solute)
    progress = tqdm(
        total=n_frames,
        initial=done_frames,
        desc=f"{system} traj {index}",
        unit="frame",
        file=sys.stderr,
        mininterval=5,
    )
    with progress:
        for block in range(done_blocks, n_blocks):
            size = min(frames_per_block, n_frames - done_frames)
            coordinates = np.empty((size, n_solute, 3), dtype=np.float32)
            forces = np.empty((size, n_solute, 3), dtype=np.float32)
            start = time.perf_counter()
            for frame in range(size):
                simulation.step(save_every)
                state = simulation.context.getState(getPositions=True, getForces=True)
                coordinates[frame] = state.getPositions(asNumpy=True)[solute].value_in_unit(
                    unit.nanometer
                )
                forces[frame] = state.getForces(asNumpy=True)[solute].value_in_unit(_FORCE_UNIT)
                progress.update()
            seconds += time.perf_counter() - start
            done_frames += size
            checkpoints.save_block(block, coordinates=coordinates, forces=forces)
            checkpoints.save_state(
                simulation.context.createCheckpoint(),
                n_blocks=block + 1,
                n_frames=done_frames,
                seconds=seconds,
                restarts=restarts,
                start=start_record,
            )

    simulated_ns = n_frames * save_every * params["timestep"] * 1e-3
    ns_per_day = simulated_ns / seconds * 86400.0 if seconds > 0 else float("nan")
    log.info("%s trajectory %d: %.1f ns/day on %s", system, index, ns_per_day, platform.getName())
    extra = {
        "platform": platform.getName(),
        "ns_per_day": ns_per_day,
        "trajectory": index,
        "frames": n_frames,
        "restarts": restarts,
        "start_temperature": params["start_temperature"],
        "start_steps": params["start_steps"],
        "start_seed": seed_of_start,
        **start_record,
        "simulated_atoms": reference.topology.getNumAtoms(),
        "solute_atoms": n_solute,
        "forcefield_files": forcefield_files(params),
        "force_classes": reference.force_classes,
    }
    provenance = Provenance(
        stage="reference",
        config={"system": system, "temperature": temperature, **recorded},
        inputs=[reference.path],
        seed=seed,
        extra=extra,
    )
    step_ps = params["timestep"] * save_every
    with TrajectoryWriter(
        output, reference.solute_topology(), provenance, with_forces=True
    ) as writer:
        first = 0
        for coordinates, forces in checkpoints.blocks(n_blocks, "coordinates", "forces"):
            times = step_ps * (np.arange(first, first + len(coordinates)) + 1)
            writer.append(coordinates, times, forces)
            first += len(coordinates)
    checkpoints.remove()
    return extra
