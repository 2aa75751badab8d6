"""Independent starting structures: a hot run per trajectory, its seed, its provenance."""

import mdtraj as md
import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest

from cgpipe.io import read_trajectory
from cgpipe.reference import generate_trajectory
from cgpipe.reference.openmm_generation import (
    ReferenceSystem,
    choose_platform,
    hot_start,
    recording_seed,
    start_seed,
)
from tests.conftest import ALA2

_KB = 0.0083144626  # kJ/mol/K


@pytest.fixture
def params(tiny_reference_params) -> dict:
    return {**tiny_reference_params, "start_temperature": 600.0, "start_steps": 1000}


def _energy_and_minimum(reference: ReferenceSystem, platform: openmm.Platform):
    """A context of the recording system, and its energy (kJ/mol) at the minimised prepared
    structure."""
    context = openmm.Context(
        reference.system(barostat=False), openmm.VerletIntegrator(0.001), platform
    )
    context.setPositions(reference.positions)
    openmm.LocalEnergyMinimizer.minimize(context)
    return context, _energy(context)


def _energy(context: openmm.Context, positions=None) -> float:
    if positions is not None:
        context.setPositions(positions)
    state = context.getState(getEnergy=True)
    return state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def _heavy_atom_rmsd(reference: ReferenceSystem, a: np.ndarray, b: np.ndarray) -> float:
    """nm, superposed (mdtraj's own fit, not cgpipe's)."""
    topology = md.Topology.from_openmm(reference.topology)
    heavy = topology.select("not element H")
    first = md.Trajectory(np.asarray(a)[None], topology)
    second = md.Trajectory(np.asarray(b)[None], topology)
    return float(md.rmsd(first, second, 0, atom_indices=heavy)[0])


def test_start_and_recording_seeds_are_distinct_streams():
    seeds = {recording_seed(1, "ala2", i) for i in range(4)} | {
        start_seed(1, "ala2", i) for i in range(4)
    }
    assert len(seeds) == 8


@pytest.fixture(scope="module")
def hot_starts(tiny_reference_params) -> tuple[ReferenceSystem, list[np.ndarray]]:
    """Starts of 8 trajectories (600 K, 1000 steps), all-atom positions in nm."""
    params = {**tiny_reference_params, "start_temperature": 600.0, "start_steps": 1000}
    reference = ReferenceSystem(ALA2, params, 300.0)
    platform = choose_platform()
    return reference, [
        hot_start(reference, start_seed(1, "ala2", i), platform, 1).value_in_unit(unit.nanometer)
        for i in range(8)
    ]


def test_hot_starts_are_thermal_samples_at_the_start_temperature(hot_starts):
    """Equipartition: the potential energy of a structure drawn at temperature T exceeds the
    minimum by (f/2) k T on average in the harmonic limit, f = 3N - constraints - 6 (the
    rigid-body motions cost nothing). Alanine dipeptide, 22 atoms, 12 bonds to hydrogen: f = 48.
    The 8 starts' mean, with 3 standard errors, holds f/2 at 600 K and not at the 300 K of
    recording."""
    reference, starts = hot_starts
    context, minimum = _energy_and_minimum(reference, choose_platform())
    system = context.getSystem()
    f = 3 * system.getNumParticles() - system.getNumConstraints() - 6
    assert f == 48
    start_temperature = reference.params["start_temperature"]
    excess = np.array([_energy(context, x) - minimum for x in starts]) / (_KB * start_temperature)
    half_width = 3 * excess.std(ddof=1) / np.sqrt(len(excess))
    assert abs(excess.mean() - f / 2) < half_width, (excess.mean(), half_width)
    assert abs(excess.mean() - f / 2 * 300.0 / start_temperature) > half_width


def test_trajectories_start_from_different_structures(hot_starts):
    """A shared start gives 0 nm between two trajectories' starts (next test); hot starts are
    apart by the thermal spread at 600 K (0.02 to 0.15 nm between pairs here)."""
    reference, starts = hot_starts
    assert _heavy_atom_rmsd(reference, starts[0], starts[1]) > 0.01
    pairs = [
        _heavy_atom_rmsd(reference, starts[i], starts[j])
        for i in range(len(starts))
        for j in range(i + 1, len(starts))
    ]
    assert np.mean(pairs) > 0.05 and min(pairs) > 0.005


def test_without_a_start_run_every_trajectory_shares_the_minimised_structure(tmp_path, params):
    params = {**params, "start_steps": 0}
    extras = [
        generate_trajectory(
            ALA2,
            tmp_path / f"traj_{i}.h5",
            system="ala2",
            index=i,
            temperature=300.0,
            params=params,
            master_seed=1,
        )
        for i in (0, 1)
    ]
    assert extras[0]["start_potential_energy"] == extras[1]["start_potential_energy"]
    assert extras[0]["start_rmsd"] == extras[1]["start_rmsd"]
    _, minimum = _energy_and_minimum(ReferenceSystem(ALA2, params, 300.0), choose_platform())
    # Minimisers stop at a gradient of 10 kJ/mol/nm, not at one point: 0.5 kJ/mol apart at most.
    assert extras[0]["start_potential_energy"] == pytest.approx(minimum, abs=0.5)
    assert extras[0]["start_rmsd"] < 0.05  # nm: minimisation moves the prepared structure little


def test_without_a_start_run_the_trajectory_is_the_former_protocol(tmp_path, params):
    """start_steps 0: minimise the prepared structure, draw velocities, equilibrate and record
    with the recording seed, written out here with OpenMM alone."""
    params = {**params, "start_steps": 0, "n_steps": 100}
    output = tmp_path / "traj.h5"
    generate_trajectory(
        ALA2, output, system="ala2", index=2, temperature=300.0, params=params, master_seed=7
    )
    seed = recording_seed(7, "ala2", 2)
    reference = ReferenceSystem(ALA2, params, 300.0)
    integrator = openmm.LangevinMiddleIntegrator(
        300.0 * unit.kelvin,
        params["friction"] / unit.picosecond,
        params["timestep"] * unit.picosecond,
    )
    integrator.setRandomNumberSeed(seed)
    platform = choose_platform()
    properties = {"Threads": "1"} if platform.getName() == "CPU" else {"Precision": "mixed"}
    simulation = app.Simulation(
        reference.topology, reference.system(barostat=False), integrator, platform, properties
    )
    simulation.context.setPositions(reference.positions)
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(300.0 * unit.kelvin, seed)
    simulation.step(params["equilibration_steps"])
    expected = []
    for _ in range(params["n_steps"] // params["save_every"]):
        simulation.step(params["save_every"])
        state = simulation.context.getState(getPositions=True)
        expected.append(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    np.testing.assert_array_equal(
        read_trajectory(output).coordinates, np.array(expected, dtype=np.float32)
    )


def test_the_provenance_records_the_start(tmp_path, params):
    output = tmp_path / "traj.h5"
    generate_trajectory(
        ALA2, output, system="ala2", index=1, temperature=300.0, params=params, master_seed=1
    )
    extra = read_trajectory(output).provenance["extra"]
    assert extra["start_temperature"] == 600.0 and extra["start_steps"] == 1000
    assert extra["start_seed"] == start_seed(1, "ala2", 1)
    # The start, drawn again from its seed: its energy and its distance from the prepared one.
    reference = ReferenceSystem(ALA2, params, 300.0)
    platform = choose_platform()
    positions = hot_start(reference, extra["start_seed"], platform, 1)
    context, _ = _energy_and_minimum(reference, platform)
    assert extra["start_potential_energy"] == pytest.approx(_energy(context, positions), abs=1e-3)
    prepared = reference.positions.value_in_unit(unit.nanometer)
    expected = _heavy_atom_rmsd(reference, positions.value_in_unit(unit.nanometer), prepared)
    assert extra["start_rmsd"] == pytest.approx(expected, rel=1e-4)


def test_a_checkpoint_is_resumed_only_with_the_same_start(tmp_path, params, monkeypatch):
    """The checkpoint's fingerprint covers the start keys: a finished run's checkpoint (kept
    here) is resumed by the same settings and not by another start temperature."""
    from cgpipe.io.blocks import Blocks

    monkeypatch.setattr(Blocks, "remove", lambda self: None)  # keep the finished checkpoint
    params = {**params, "start_steps": 200, "n_steps": 100}
    output = tmp_path / "traj.h5"
    kwargs = dict(system="ala2", index=0, temperature=300.0, master_seed=1)
    first = generate_trajectory(ALA2, output, params=params, **kwargs)
    again = generate_trajectory(ALA2, output, params=params, **kwargs)
    assert (first["restarts"], again["restarts"]) == (0, 1)
    assert again["start_potential_energy"] == first["start_potential_energy"]
    other = generate_trajectory(
        ALA2, output, params={**params, "start_temperature": 450.0}, **kwargs
    )
    assert other["restarts"] == 0
    assert other["start_potential_energy"] != first["start_potential_energy"]
