"""The train stage: folds by trajectory, the trainer registry, and `cgpipe.train.run`."""

import copy
import math

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from cgpipe.data import fold_trajectories, split_frames
from cgpipe.errors import InputError
from cgpipe.io import (
    Provenance,
    read_checkpoint,
    read_provenance,
    read_table,
    read_trajectory,
    trained_temperature,
    write_trajectory,
)
from cgpipe.models import MODELS, EnergyModel, load_model
from cgpipe.paths import LOSSES_FILE, MODEL_FILE, RESOLVED_CONFIG_FILE
from cgpipe.train import TRAINERS, Trainer, TrainingData, run
from tests.unit.train.toy import WELL


def test_folds_split_by_trajectory_and_cover_every_trajectory():
    index = np.repeat(np.arange(5), 10)
    held = [fold_trajectories(index, 3, k).tolist() for k in range(3)]
    assert sorted(sum(held, [])) == [0, 1, 2, 3, 4]
    for k in range(3):
        train, test = split_frames(index, 3, k)
        assert set(index[train]).isdisjoint(index[test])
        assert len(train) + len(test) == len(index)


def test_more_folds_than_trajectories_is_refused():
    with pytest.raises(ValueError, match="n_folds=3"):
        fold_trajectories(np.array([0, 0, 1, 1]), 3, 0)


def test_every_registered_trainer_builds_from_the_test_config(test_config):
    assert TRAINERS.names(), "no trainer registered"
    for name in TRAINERS.names():
        trainer = TRAINERS.get(name)(**test_config["trainers"][name])
        assert isinstance(trainer, Trainer) and trainer.name == name
    # Every model's section names a registered trainer.
    for name in MODELS.names():
        assert test_config["models"][name]["trainer"] in TRAINERS


def test_an_unknown_trainer_is_an_input_error_naming_the_known_ones():
    with pytest.raises(InputError, match=r"unknown trainer 'sgd'; known: \[.*'force_matching'"):
        TRAINERS.get("sgd")


def test_training_data_refuses_forces_that_do_not_match_the_positions():
    x = np.zeros((4, 5, 3))
    with pytest.raises(ValueError, match="forces"):
        TrainingData(x, np.zeros((4, 4, 3)), x, None, fold=0)
    with pytest.raises(ValueError, match="validation positions"):
        TrainingData(x, None, np.zeros((2, 3, 3)), None, fold=0)


@pytest.mark.parametrize("model_name", MODELS.names())
def test_run_writes_checkpoint_losses_and_resolved_config(
    tmp_path, toy_cg, test_config, model_name
):
    cg_path, mapping_path = toy_cg
    model = run(cg_path, mapping_path, tmp_path, model=model_name, fold=1, cfg=test_config, seed=3)
    assert model.name == model_name
    back = load_model(tmp_path / MODEL_FILE)
    assert type(back) is type(model)
    x = torch.as_tensor(read_trajectory(cg_path).coordinates[:4])
    torch.testing.assert_close(back(x), model(x))

    losses = read_table(tmp_path / LOSSES_FILE)
    trainable = any(p.requires_grad for p in model.parameters())
    assert set(losses.split) == (
        {"train", "validation", "heldout"} if trainable else {"validation", "heldout"}
    )
    assert np.isfinite(losses.loss).all() and (losses.replicate == 0).all()
    epochs = test_config["trainers"][test_config["models"][model_name]["trainer"]]["epochs"]
    assert losses.epoch.max() == (epochs - 1 if trainable else 0)
    heldout = losses[losses.split == "heldout"]
    assert len(heldout) == 1 and losses.split.iloc[-1] == "heldout"

    record = read_provenance(tmp_path / MODEL_FILE)
    assert record["seed"] == 3 and str(cg_path) in record["inputs"]
    section = test_config["models"][model_name]
    assert record["config"]["models"] == {model_name: section}
    assert record["config"]["trainers"] == {
        section["trainer"]: test_config["trainers"][section["trainer"]]
    }
    assert record["config"]["n_folds"] == test_config["train"]["n_folds"]
    # fold 1 of 2 holds out trajectories 2, 3; trajectory 0 follows them (wrapping round).
    extra = record["extra"]
    assert extra["heldout_trajectories"] == [2, 3] and extra["validation_trajectories"] == [0]
    assert extra["training_trajectories"] == [1]
    assert extra["selected_epoch"] == heldout.epoch.iloc[0] <= extra["stopped_at_epoch"]
    resolved = yaml.safe_load((tmp_path / RESOLVED_CONFIG_FILE).read_text())
    assert resolved == test_config


def test_the_checkpoint_records_the_temperature_it_was_trained_at(tmp_path, toy_cg, test_config):
    cg_path, mapping_path = toy_cg
    cfg = copy.deepcopy(test_config)
    cfg["temperature"] = 350.0
    run(cg_path, mapping_path, tmp_path, model="prior", fold=0, cfg=cfg, seed=1)
    checkpoint = read_checkpoint(tmp_path / MODEL_FILE)
    # A field of its own, read without building the model.
    assert checkpoint["temperature"] == 350.0 == trained_temperature(checkpoint)


def test_the_same_seed_trains_the_same_weights(tmp_path, toy_cg, test_config):
    cg_path, mapping_path = toy_cg
    common = dict(model="cgschnet", fold=0, cfg=test_config)
    first = run(cg_path, mapping_path, tmp_path / "a", seed=5, **common).state_dict()
    again = run(cg_path, mapping_path, tmp_path / "b", seed=5, **common).state_dict()
    other = run(cg_path, mapping_path, tmp_path / "c", seed=6, **common).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_positions_only_data_fit_the_prior_but_not_force_matching(tmp_path, toy_cg, test_config):
    cg_path, mapping_path = toy_cg
    data = read_trajectory(cg_path)
    data.forces = None  # as from mdshare
    positions_only = tmp_path / "positions.h5"
    write_trajectory(positions_only, data, Provenance("forces"))
    common = dict(fold=0, cfg=test_config, seed=3)
    with pytest.raises(InputError, match="no forces .* cgschnet is trained by force matching"):
        run(positions_only, mapping_path, tmp_path / "a", model="cgschnet", **common)
    assert not (tmp_path / "a" / MODEL_FILE).exists()
    run(positions_only, mapping_path, tmp_path / "b", model="prior", **common)
    assert load_model(tmp_path / "b" / MODEL_FILE).name == "prior"
    assert np.isnan(read_table(tmp_path / "b" / LOSSES_FILE).rmse).all()


def test_an_unknown_model_or_a_missing_section_is_an_input_error(tmp_path, toy_cg, test_config):
    cg_path, mapping_path = toy_cg
    with pytest.raises(InputError, match="no section models.nonsense"):
        run(cg_path, mapping_path, tmp_path, model="nonsense", fold=0, cfg=test_config, seed=1)
    cfg = {**test_config, "models": {**test_config["models"], "nonsense": {"trainer": "x"}}}
    with pytest.raises(InputError, match="unknown model 'nonsense'"):
        run(cg_path, mapping_path, tmp_path, model="nonsense", fold=0, cfg=cfg, seed=1)
    cfg = {**test_config, "models": {"prior": {"trainer": "sgd"}}, "trainers": {"sgd": {}}}
    with pytest.raises(InputError, match="unknown trainer 'sgd'"):
        run(cg_path, mapping_path, tmp_path, model="prior", fold=0, cfg=cfg, seed=1)
    assert not (tmp_path / MODEL_FILE).exists()


class HarmonicWell(EnergyModel):
    """A test-only model: E = k/2 sum_i |z_i - centroid(z)|^2 with one trainable k."""

    def __init__(self, bead_types, prior, *, stiffness: float) -> None:
        super().__init__(bead_types, prior)
        self.record_hparams(stiffness=float(stiffness))
        self.log_stiffness = nn.Parameter(torch.tensor(math.log(stiffness)))

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        centred = positions - positions.mean(dim=1, keepdim=True)
        return 0.5 * self.log_stiffness.exp() * (centred**2).sum(dim=(1, 2))


def test_a_model_registered_elsewhere_trains_through_run_and_reloads(tmp_path, toy_cg, test_config):
    cg_path, mapping_path = toy_cg
    name = "test_harmonic_well"
    cfg = {
        **test_config,
        "models": {name: {"trainer": "force_matching", "stiffness": 100.0}},
        "trainers": {
            "force_matching": {
                **test_config["trainers"]["force_matching"],
                "epochs": 15,
                "batch_size": 30,
                "learning_rate": 0.1,
            }
        },
    }
    MODELS.register(name)(HarmonicWell)
    try:
        model = run(cg_path, mapping_path, tmp_path, model=name, fold=0, cfg=cfg, seed=2)
        back = load_model(tmp_path / MODEL_FILE)
        assert isinstance(back, HarmonicWell) and back.hparams["stiffness"] == 100.0
        torch.testing.assert_close(back.log_stiffness, model.log_stiffness)
    finally:
        MODELS.unregister(name)
    # The well's stiffness is learned from the forces (the data's is WELL).
    assert float(back.log_stiffness.detach().exp()) == pytest.approx(WELL, rel=0.05)
    losses = read_table(tmp_path / LOSSES_FILE)
    validation = losses[losses.split == "validation"].rmse
    assert validation.min() < 0.5 * validation.iloc[0]
    # The well learned on trajectory 3 scores the held-out ones (0, 1) as well as the
    # validation one (2): all share one mean force, and both RMSEs are the force noise
    # (5 kJ/mol/nm) measured on 900 and 1800 components, 2.4 % and 1.7 % standard error.
    heldout = losses[losses.split == "heldout"].rmse.iloc[0]
    assert heldout == pytest.approx(validation.min(), rel=0.2)
    # Without its module the checkpoint names a kind this cgpipe does not know.
    with pytest.raises(InputError, match=f"unknown model '{name}'"):
        load_model(tmp_path / MODEL_FILE)


def test_the_negative_control_is_the_prior_without_its_dihedral_term(tmp_path, toy_cg, test_config):
    cg_path, mapping_path = toy_cg
    common = dict(fold=0, cfg=test_config, seed=3)
    full = run(cg_path, mapping_path, tmp_path / "a", model="prior", **common)
    control = run(cg_path, mapping_path, tmp_path / "b", model="prior_no_dihedrals", **common)
    assert load_model(tmp_path / "b" / MODEL_FILE).name == "prior_no_dihedrals"
    assert len(full.prior.terms["dihedrals"]) > 0 and len(control.prior.terms["dihedrals"]) == 0
    # Everything else is the same fit: bonds, angles, walls, impropers and repulsion.
    control_buffers = dict(control.prior.named_buffers())
    shared = [n for n, _ in full.prior.named_buffers() if not n.startswith("terms.dihedrals")]
    assert "terms.bonds.r0" in shared
    for name, buffer in full.prior.named_buffers():
        if name in shared:
            assert torch.equal(buffer, control_buffers[name]), name
    record = read_provenance(tmp_path / "b" / MODEL_FILE)
    assert record["config"]["prior"]["dihedral_order"] == 0
