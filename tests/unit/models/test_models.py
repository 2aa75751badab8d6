"""The model registry, the interface every model keeps, and the checkpoint format."""

import json

import numpy as np
import pytest
import torch

from cgpipe.config import load_config
from cgpipe.errors import InputError
from cgpipe.io import Provenance, read_checkpoint, trained_temperature
from cgpipe.models import (
    CHECKPOINT_FORMAT,
    MODELS,
    EnergyModel,
    Prior,
    SchNet,
    fit_prior,
    load_model,
    save_model,
)
from tests.conftest import REPO

TYPES = [0, 2, 1, 0, 2]
BONDS = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])
BASE = np.array(
    [[0.0, 0, 0], [0.13, 0.05, 0], [0.2, 0.16, 0.02], [0.33, 0.17, 0.07], [0.4, 0.28, 0.05]]
)


def _chain(n_frames: int, seed: int = 0) -> np.ndarray:
    return BASE + np.random.default_rng(seed).normal(scale=0.01, size=(n_frames, 5, 3))


@pytest.fixture(scope="module")
def prior() -> Prior:
    return fit_prior(_chain(500), BONDS, 300.0, bins=20)


@pytest.fixture(scope="module")
def sections() -> dict:
    return load_config(str(REPO / "config" / "test.yaml"))["models"]


@pytest.fixture(scope="module")
def positions() -> torch.Tensor:
    return torch.as_tensor(_chain(6, seed=1), dtype=torch.float32)


def test_every_registered_model_builds_from_the_test_config(sections, prior, positions):
    assert {"cgschnet", "prior"} <= set(MODELS.names())
    for name in MODELS.names():
        model = MODELS.get(name).from_config(sections[name], bead_types=TYPES, prior=prior)
        assert isinstance(model, EnergyModel) and model.name == name
        energy, forces = model.energy_and_forces(positions)
        assert energy.shape == (6,) and forces.shape == (6, 5, 3)
        assert torch.isfinite(energy).all() and torch.isfinite(forces).all()
        torch.testing.assert_close(model.energy(positions), energy)
        torch.testing.assert_close(model.forces(positions), forces)
        assert "trainer" not in model.hparams
        json.dumps(model.hparams)  # JSON-able: a checkpoint rebuilds the model from it
        rebuilt = type(model)(**model.hparams)
        rebuilt.load_state_dict(model.state_dict())
        torch.testing.assert_close(rebuilt(positions), energy)
        if model.prior is None:  # a model without a prior (diffusion)
            assert model.prior_model() is None
            continue
        assert model.prior.bonds.tolist() == BONDS.tolist()
        assert model.prior.bond_r0.shape == (len(BONDS),)


def test_the_prior_alone_is_a_model_of_the_prior_energy(sections, prior, positions):
    for name in MODELS.names():
        model = MODELS.get(name).from_config(sections[name], bead_types=TYPES, prior=prior)
        alone = model.prior_model()
        if model.prior is None:
            assert alone is None
            continue
        assert alone.name == "prior"
        assert not any(p.requires_grad for p in alone.parameters())
        torch.testing.assert_close(alone(positions), prior(positions))


def test_a_model_refuses_positions_of_another_shape(sections, prior):
    model = MODELS.get("prior").from_config(sections["prior"], bead_types=TYPES, prior=prior)
    with pytest.raises(ValueError, match=r"model expects \[\*, 5, 3\]"):
        model(torch.zeros(2, 4, 3))


@pytest.mark.parametrize("seed", [0, 11])
def test_cgschnet_initialises_and_computes_as_prior_plus_schnet(prior, positions, seed):
    # The same seed gives the same weights as the construction before the registry (a
    # buffer of bead types, the prior, then SchNet), so trained numbers do not change.
    options = {
        "hidden_channels": 16,
        "num_filters": 16,
        "num_interactions": 2,
        "num_gaussians": 12,
        "cutoff": 0.8,
    }
    torch.manual_seed(seed)
    model = MODELS.get("cgschnet")(TYPES, prior.hparams, **options)
    torch.manual_seed(seed)
    expected_prior = Prior(**prior.hparams)
    expected_network = SchNet(num_types=max(TYPES) + 1, **options)
    expected = {
        "bead_types": torch.tensor(TYPES),
        **{f"prior.{k}": v for k, v in expected_prior.state_dict().items()},
        **{f"network.{k}": v for k, v in expected_network.state_dict().items()},
    }
    state = model.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    types = torch.tensor(TYPES)
    assert torch.equal(
        model(positions), expected_prior(positions) + expected_network(types, positions)
    )


def test_checkpoint_records_kind_and_format(tmp_path, sections, prior, positions):
    for name in MODELS.names():
        model = MODELS.get(name).from_config(sections[name], bead_types=TYPES, prior=prior)
        path = tmp_path / f"{name}.pt"
        save_model(path, model, Provenance("train"), temperature=300.0)
        checkpoint = torch.load(path, weights_only=True)
        assert checkpoint["kind"] == name and checkpoint["format_version"] == CHECKPOINT_FORMAT
        back = load_model(path)
        assert type(back) is type(model)
        torch.testing.assert_close(back(positions), model(positions))


def _rewrite(path, **changes):
    checkpoint = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is None:
            checkpoint.pop(key)
        else:
            checkpoint[key] = value
    torch.save(checkpoint, path)


@pytest.fixture
def checkpoint(tmp_path, sections, prior):
    model = MODELS.get("prior").from_config(sections["prior"], bead_types=TYPES, prior=prior)
    path = tmp_path / "model.pt"
    save_model(path, model, Provenance("train"), temperature=300.0)
    return path


def test_a_checkpoint_of_an_unknown_kind_is_refused(checkpoint):
    _rewrite(checkpoint, kind="diffusion_v9")
    with pytest.raises(InputError, match=r"unknown model 'diffusion_v9'; known: \[.*'cgschnet'"):
        load_model(checkpoint)


def test_a_checkpoint_of_the_old_format_is_refused_with_its_version(tmp_path, prior):
    # Format 1: state_dict, hparams and provenance, no format_version and no kind.
    path = tmp_path / "model.pt"
    provenance = json.loads(Provenance("train").to_json())
    provenance["cgpipe_version"] = "0.3.0"
    old = {
        "state_dict": {"bead_types": torch.tensor(TYPES)},
        "hparams": json.dumps({"bead_types": TYPES, "prior": prior.hparams, "schnet": None}),
        "provenance": json.dumps(provenance),
    }
    torch.save(old, path)
    with pytest.raises(InputError) as error:
        load_model(path)
    assert str(error.value) == (f"{path}: written by cgpipe 0.3.0, checkpoint format 1; retrain it")


def test_a_checkpoint_written_before_the_temperature_field_still_loads(checkpoint):
    assert trained_temperature(read_checkpoint(checkpoint)) == 300.0
    _rewrite(checkpoint, temperature=None)
    load_model(checkpoint)
    # Its provenance says nothing either (Provenance("train") records no config).
    assert trained_temperature(read_checkpoint(checkpoint)) is None


def test_a_checkpoint_of_format_2_is_refused_naming_file_and_format(checkpoint):
    # Format 2 kept the prior as one flat set of arguments (bonds, bond_k, ...), before the
    # prior became a sum of registered terms.
    flat = {"bonds": [[0, 1]], "bond_k": [1.0], "bond_r0": [0.1], "repulsion_epsilon": 1.0}
    _rewrite(
        checkpoint,
        format_version=2,
        hparams=json.dumps({"bead_types": TYPES, "prior": flat}),
    )
    with pytest.raises(InputError) as error:
        load_model(checkpoint)
    assert str(error.value) == (
        f"{checkpoint}: written by cgpipe {_version(checkpoint)}, checkpoint format 2; "
        f"this cgpipe reads format {CHECKPOINT_FORMAT}: retrain it"
    )


def _version(path) -> str:
    return json.loads(torch.load(path, weights_only=True)["provenance"])["cgpipe_version"]


def test_a_checkpoint_of_a_newer_format_is_refused(checkpoint):
    _rewrite(checkpoint, format_version=CHECKPOINT_FORMAT + 1)
    with pytest.raises(InputError, match=f"checkpoint format {CHECKPOINT_FORMAT + 1} .*update"):
        load_model(checkpoint)


def test_a_checkpoint_that_does_not_fit_its_model_is_refused(checkpoint):
    _rewrite(checkpoint, hparams=json.dumps({"bead_types": TYPES, "schnet": None}))
    with pytest.raises(InputError, match="prior checkpoint .* does not fit .* retrain it"):
        load_model(checkpoint)


def test_only_a_registered_model_is_saved(tmp_path, prior):
    class Unregistered(EnergyModel):
        def energy(self, positions):
            return self.prior(positions)

    with pytest.raises(ValueError, match="not a registered model"):
        save_model(
            tmp_path / "m.pt",
            Unregistered(TYPES, prior.hparams),
            Provenance("train"),
            temperature=300.0,
        )
