"""The simulation stage: replica health, the integrator registry, and ``run``."""

from __future__ import annotations

import copy
import json
import logging

import numpy as np
import pytest
import torch
import yaml

from cgpipe import keys
from cgpipe.data import FoldData
from cgpipe.errors import InputError
from cgpipe.io import read_provenance, read_table, read_trajectory
from cgpipe.observables import choose_states
from cgpipe.paths import EXCHANGES_FILE, HEALTH_FILE, TRAJECTORY_FILE, resolved_config_path
from cgpipe.simulate import INTEGRATORS, Integrator
from tests.unit.simulate.conftest import FOLD, simulate_fold


@pytest.mark.parametrize("name", INTEGRATORS.names())
def test_every_integrator_builds_from_the_test_config_and_keeps_its_contract(name, test_config):
    section = test_config["simulate"]
    k = 500.0  # kJ/mol/nm^2

    def harmonic(x):
        return 0.5 * k * (x**2).sum(dim=(1, 2)), -k * x

    def build(seed: int) -> Integrator:
        return INTEGRATORS.get(name)(
            harmonic,
            torch.tensor([12.0, 14.0, 16.0]),
            section["timestep"],
            torch.Generator().manual_seed(seed),
            **section[name],
        )

    integrator = build(0)
    assert isinstance(integrator, Integrator) and integrator.name == name
    x = 0.1 * torch.randn(4, 3, 3, generator=torch.Generator().manual_seed(5))
    kT = torch.full((4,), 2.5)
    state = integrator.start(x, kT)
    rows = 4 * integrator.rungs  # a replica is one row, or a ladder of rungs
    shape = (rows, 3, 3)
    assert state.velocities.shape == shape and state.kT.shape == (rows,)
    assert torch.equal(state.kT[:: integrator.rungs], kT)
    assert integrator.kinetic_energy(state.velocities).shape == (rows,)
    after = integrator.step(state)
    for name_ in ("positions", "velocities", "forces"):
        assert getattr(after, name_).shape == shape
        assert torch.isfinite(getattr(after, name_)).all()
    assert after.energies.shape == (rows,) and torch.equal(after.replicas, state.replicas)
    assert not torch.equal(after.positions, state.positions)
    torch.testing.assert_close(after.forces, harmonic(after.positions)[1])
    # The same generator seed gives the same trajectory.
    again = build(0)
    again_state = again.start(x, kT)
    assert torch.equal(again_state.velocities, state.velocities)
    assert torch.equal(again.step(again_state).positions, after.positions)
    # A batch without replica 1 draws the same noise for the others.
    third = build(0)
    rest = third.start(x, kT)
    rest.velocities = state.velocities
    keep = torch.tensor([True, False, True, True]).repeat_interleave(integrator.rungs)
    rest = rest.select(keep)
    torch.testing.assert_close(third.step(rest).positions, after.positions[keep])


def test_an_unknown_integrator_is_an_input_error():
    with pytest.raises(ValueError, match="unknown integrator 'leapfrog'; known"):
        INTEGRATORS.get("leapfrog")


def test_run_writes_the_trajectory_the_health_table_and_the_resolved_config(
    tmp_path, fold_inputs, test_config
):
    simulate_fold(fold_inputs, tmp_path, test_config)
    params = test_config["simulate"]
    health = read_table(tmp_path / HEALTH_FILE)
    assert len(health) == params["n_replicas"]
    folds = FoldData.read(fold_inputs["cg"], test_config["train"]["n_folds"], FOLD)
    # The start set: training frames (never held-out ones), half from each of the two
    # most populated states of the training frames, each in the state it is listed in.
    assert set(health.start_frame) <= set(folds.train_frames.tolist())
    states = choose_states(folds.training, test_config["observables"]["tica_lag"])
    assigned = states.assign(folds.data)
    counts = np.bincount(assigned[folds.train_frames], minlength=len(states.names))
    top_two = [states.names[k] for k in np.argsort(-counts, kind="stable")[:2] if counts[k]]
    n = params["n_replicas"]
    sizes = health[keys.START_STATE].value_counts()
    assert list(sizes.index) == top_two[: len(sizes)] or set(sizes.index) == set(top_two)
    assert sorted(sizes) == sorted([n - n // 2, n // 2] if len(top_two) == 2 else [n])
    assert [states.names[k] for k in assigned[health.start_frame]] == list(health[keys.START_STATE])
    trajectory = read_trajectory(tmp_path / TRAJECTORY_FILE)
    n_saves = params["n_steps"] // params["save_every"]
    assert trajectory.n_frames == health.n_frames.sum() <= params["n_replicas"] * n_saves
    assert np.isfinite(trajectory.coordinates).all()
    assert set(trajectory.trajectory_index) <= set(health.replica)
    record = read_provenance(tmp_path / TRAJECTORY_FILE)
    assert record["config"]["integrator"] == params["integrator"]
    assert record["config"]["fold"] == FOLD and record["seed"] == 3
    assert record["extra"]["start_frames"] == health.start_frame.tolist()
    with open(resolved_config_path(tmp_path)) as handle:
        assert yaml.safe_load(handle) == test_config


def test_run_is_reproducible_for_a_seed(tmp_path, fold_inputs, test_config):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        simulate_fold(fold_inputs, tmp_path / name, test_config, seed)
    a, b, c = (read_trajectory(tmp_path / n / TRAJECTORY_FILE).coordinates for n in "abc")
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


class _Still(Integrator):
    """A toy plug-in: records its options and never moves."""

    built_with: dict = {}

    def __init__(self, energy_and_forces, masses, timestep, generator=None, *, note):
        super().__init__(energy_and_forces, masses, timestep, generator)
        _Still.built_with = {"note": note, "n_beads": len(masses), "timestep": timestep}

    def step(self, state):
        return state


def test_run_uses_a_registered_plugin_integrator_with_its_section(
    tmp_path, fold_inputs, test_config
):
    INTEGRATORS.register("still")(_Still)
    try:
        cfg = copy.deepcopy(test_config)
        cfg["simulate"]["integrator"] = "still"
        cfg["simulate"]["still"] = {"note": "hello"}
        simulate_fold(fold_inputs, tmp_path, cfg)
    finally:
        INTEGRATORS.unregister("still")
    assert _Still.built_with == {
        "note": "hello",
        "n_beads": read_trajectory(fold_inputs["cg"]).topology.n_atoms,
        "timestep": cfg["simulate"]["timestep"],
    }
    health = read_table(tmp_path / HEALTH_FILE)
    trajectory = read_trajectory(tmp_path / TRAJECTORY_FILE)
    starts = read_trajectory(fold_inputs["cg"]).coordinates[health.start_frame.to_numpy()]
    first = trajectory.coordinates[trajectory.time == trajectory.time.min()]
    np.testing.assert_array_equal(first, starts)
    assert "still" not in INTEGRATORS


def _trained_at(fold_inputs, folder, temperature, *, field=True):
    """The fold's model with its training temperature rewritten: in the checkpoint's
    field, or (``field=False``, as checkpoints written before the field) only in its
    provenance (``temperature=None``: in neither)."""
    checkpoint = torch.load(fold_inputs["model"], weights_only=True)
    checkpoint.pop(keys.TEMPERATURE)
    record = json.loads(checkpoint[keys.PROVENANCE])
    record["config"] = {} if temperature is None else {"temperature": temperature}
    checkpoint[keys.PROVENANCE] = json.dumps(record)
    if field:
        checkpoint[keys.TEMPERATURE] = temperature
    folder.mkdir()
    torch.save(checkpoint, folder / "model.pt")
    return {**fold_inputs, "model": folder / "model.pt"}


@pytest.mark.parametrize("field", [True, False])
def test_a_model_trained_at_another_temperature_is_refused_before_any_work(
    tmp_path, fold_inputs, test_config, field
):
    trained = test_config["temperature"] + 50
    inputs = _trained_at(fold_inputs, tmp_path / "model", trained, field=field)
    # A CG file that is not there: the refusal comes before anything else is read.
    inputs["cg"] = tmp_path / "missing.h5"
    output = tmp_path / "out"
    with pytest.raises(InputError) as refused:
        simulate_fold(inputs, output, test_config)
    assert str(refused.value) == (
        f"{inputs['model']}: a model trained at {trained:g} K, but the configuration's "
        f"temperature is {test_config['temperature']:g} K; simulate at {trained:g} K or "
        f"retrain at {test_config['temperature']:g} K"
    )
    assert not output.exists()


def test_a_checkpoint_that_records_no_temperature_is_simulated_with_a_warning(
    tmp_path, fold_inputs, test_config, caplog
):
    inputs = _trained_at(fold_inputs, tmp_path / "model", None, field=False)
    with caplog.at_level(logging.WARNING, logger="cgpipe.simulate.stage"):
        simulate_fold(inputs, tmp_path / "out", test_config)
    assert f"{inputs['model']} records no training temperature" in caplog.text
    assert (tmp_path / "out" / TRAJECTORY_FILE).exists()


def test_parallel_tempering_saves_the_target_rung_and_its_exchange_table(
    tmp_path, fold_inputs, test_config
):
    cfg = copy.deepcopy(test_config)
    cfg["simulate"].update(integrator="parallel_tempering", n_steps=400)
    cfg["simulate"]["parallel_tempering"] = {
        "friction": 1.0,
        "ladder": [1.0, 1.3, 1.7],
        "exchange_every": 10,
    }
    simulate_fold(fold_inputs, tmp_path, cfg)
    params = cfg["simulate"]
    health = read_table(tmp_path / HEALTH_FILE)
    trajectory = read_trajectory(tmp_path / TRAJECTORY_FILE)
    # One saved replica per ladder: the rung at the system's temperature.
    assert len(health) == params["n_replicas"]
    assert set(trajectory.trajectory_index) <= set(range(params["n_replicas"]))
    assert trajectory.n_frames == health[keys.N_FRAMES].sum()
    exchanges = read_table(tmp_path / EXCHANGES_FILE)
    assert exchanges.temperature_low.tolist() == [300.0, 390.0]
    assert exchanges.temperature_high.tolist() == [390.0, 510.0]
    assert (exchanges.attempts > 0).all()
    assert ((exchanges.acceptance >= 0) & (exchanges.acceptance <= 1)).all()
    record = read_provenance(tmp_path / TRAJECTORY_FILE)
    assert record["extra"]["exchanges"] == exchanges.to_dict("records")
