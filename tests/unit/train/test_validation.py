"""Inner validation, model selection, early stopping and training replicates: the held-out
trajectories never reach the trainer; the kept epoch and replicate are the best on
validation."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from cgpipe.data import FoldData, split_frames, subset
from cgpipe.errors import InputError
from cgpipe.io import read_provenance, read_table, read_trajectory
from cgpipe.keys import REPLICATE, SPLIT_VALIDATION
from cgpipe.mapping import read_mapping
from cgpipe.models import EnergyModel, fit_prior, force_rmse, load_model
from cgpipe.paths import LOSSES_FILE, MODEL_FILE
from cgpipe.seeds import derive_seed
from cgpipe.train import (
    TRAINERS,
    VALIDATION_TAIL,
    TrainingData,
    replicate_seed,
    run,
    split_validation,
)
from tests.unit.train.toy import CHAIN


def _with(config: dict, **train) -> dict:
    return {**config, "train": {**config["train"], **train}}


# --- which frames validate ----------------------------------------------------------------


def test_each_trajectory_validates_in_exactly_one_fold(toy_cg):
    data = read_trajectory(toy_cg[0])  # 4 trajectories of 60 frames
    validated = []
    for fold in range(4):
        folds = FoldData.split(data, 4, fold)
        split = split_validation(folds, 1)
        assert split.rule == "trajectories" and split.trajectories == [(fold + 1) % 4]
        assert set(data.trajectory_index[split.validation_frames]) == {(fold + 1) % 4}
        assert np.array_equal(
            np.sort(np.concatenate([split.train_frames, split.validation_frames])),
            folds.train_frames,
        )
        validated += split.trajectories
    assert sorted(validated) == [0, 1, 2, 3]


def test_no_validation_and_too_many_validation_trajectories(toy_cg):
    folds = FoldData.split(read_trajectory(toy_cg[0]), 2, 0)  # trains on 2 trajectories
    split = split_validation(folds, 0)
    assert split.rule == "none" and len(split.validation_frames) == 0
    assert np.array_equal(split.train_frames, folds.train_frames)
    with pytest.raises(InputError, match=r"validation_trajectories=2 .* fold 0: .* at most 1"):
        split_validation(folds, 2)


def test_a_single_training_trajectory_validates_on_its_last_fifth_in_time(toy_cg):
    data = read_trajectory(toy_cg[0])
    two = subset(data, np.flatnonzero(data.trajectory_index < 2))  # as config/test.yaml
    folds = FoldData.split(two, 2, 0)
    for n in (1, 3):  # nothing to spare whatever is asked
        split = split_validation(folds, n)
        assert split.rule == "tail" and split.trajectories == [1]
        n_tail = round(VALIDATION_TAIL * 60)
        assert np.array_equal(split.validation_frames, np.arange(120 - n_tail, 120))
        assert np.array_equal(split.train_frames, np.arange(60, 120 - n_tail))
        assert "last 20 %" in split.describe()


def test_replicate_zero_is_the_given_seed():
    assert replicate_seed(11, 0) == 11
    assert replicate_seed(11, 2) == derive_seed(11, "replicate", 2) != replicate_seed(11, 1)


# --- the held-out trajectories never reach the trainer -----------------------------------


@pytest.mark.parametrize("fold", [0, 1])
def test_the_trainer_never_receives_a_held_out_frame(tmp_path, toy_cg, test_config, fold):
    cg_path, mapping_path = toy_cg
    data = read_trajectory(cg_path)
    frame_of = {frame.tobytes(): i for i, frame in enumerate(data.coordinates)}
    trainer_class = TRAINERS.get("force_matching")
    seen: list[TrainingData] = []
    original = trainer_class.fit

    def recording_fit(self, model, training, **kwargs):
        seen.append(training)
        return original(self, model, training, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer_class, "fit", recording_fit)
        run(cg_path, mapping_path, tmp_path, model="cgschnet", fold=fold, cfg=test_config, seed=1)
    (training,) = seen
    fitted = [frame_of[frame.tobytes()] for frame in training.positions]
    validation = [frame_of[frame.tobytes()] for frame in training.validation_positions]
    train, held_out = split_frames(data.trajectory_index, test_config["train"]["n_folds"], fold)
    assert set(fitted).isdisjoint(held_out) and set(validation).isdisjoint(held_out)
    assert set(fitted).isdisjoint(validation)
    assert sorted(fitted + validation) == train.tolist()
    np.testing.assert_array_equal(training.forces, data.forces[fitted])
    # The prior is fitted on the frames trained on, not on the validation frames.
    mapping = read_mapping(mapping_path)
    prior_options = (mapping.bonds, test_config["temperature"])
    model = load_model(tmp_path / MODEL_FILE)
    prior = fit_prior(training.positions, *prior_options, **test_config["train"]["prior"])
    assert model.hparams["prior"] == prior.hparams
    with_validation = fit_prior(
        data.coordinates[train], *prior_options, **test_config["train"]["prior"]
    )
    assert model.hparams["prior"] != with_validation.hparams
    extra = read_provenance(tmp_path / MODEL_FILE)["extra"]
    assert extra["heldout_trajectories"] == np.unique(data.trajectory_index[held_out]).tolist()
    assert extra["validation_trajectories"] == np.unique(data.trajectory_index[validation]).tolist()


# --- model selection and early stopping ---------------------------------------------------


class TrackedWell(EnergyModel):
    """E = k/2 sum_i |z_i - centroid(z)|^2, one trainable log k; remembers k at the end of
    every epoch (the trainer switches it to eval mode there)."""

    def __init__(self, stiffness: float) -> None:
        super().__init__([0] * len(CHAIN), None)
        self.log_stiffness = nn.Parameter(torch.tensor(math.log(stiffness)))
        self.history: list[torch.Tensor] = []

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        centred = positions - positions.mean(dim=1, keepdim=True)
        return 0.5 * self.log_stiffness.exp() * (centred**2).sum(dim=(1, 2))

    def train(self, mode: bool = True) -> "TrackedWell":
        if not mode:
            self.history.append(self.log_stiffness.detach().exp().clone())
        return super().train(mode)


def _wells(k_train: float, k_validation: float, n_validation: int) -> TrainingData:
    """Noise-free well forces: the training frames pull k towards k_train; the validation
    loss, (k - k_validation)^2 <|z - centroid|^2>, is lowest at k_validation."""
    rng = np.random.default_rng(0)
    x = CHAIN + rng.normal(scale=0.02, size=(60 + n_validation, len(CHAIN), 3))
    f = -(x - x.mean(axis=1, keepdims=True))
    return TrainingData(
        x[:60], k_train * f[:60], x[60:], k_validation * f[60:], fold=0, source="toy"
    )


def _force_matching(**options):
    section = dict(epochs=30, batch_size=30, learning_rate=0.05, weight_decay=0.0)
    return TRAINERS.get("force_matching")(**{**section, "validation_frames": 1000, **options})


def test_the_kept_state_is_the_epoch_with_the_lowest_validation_loss():
    # k climbs from 100 towards the training data's 500 and passes the validation data's
    # 300: the validation loss falls, then rises. The model must come back to the epoch
    # whose k is closest to 300 and stop `patience` epochs after it.
    model = TrackedWell(100.0)
    trainer = _force_matching(patience=4)
    result = trainer.fit(
        model, _wells(500.0, 300.0, 30), generator=torch.Generator().manual_seed(0), device="cpu"
    )
    history = torch.stack(model.history).numpy()
    assert history[0] < 300 < history[-1] and np.all(np.diff(history) > 0)
    best = int(np.argmin(np.abs(history - 300.0)))  # analytic: the loss is quadratic in k
    assert result.selected_epoch == best
    assert result.stopped_at_epoch == best + 4 < trainer.epochs - 1
    assert torch.equal(model.log_stiffness.detach().exp(), model.history[best])
    validation = [r["loss"] for r in result.records if r["split"] == SPLIT_VALIDATION]
    assert len(validation) == best + 5 and int(np.argmin(validation)) == best
    assert result.validation_loss == validation[best]
    assert np.all(np.diff(validation[best:]) > 0)


def test_without_validation_frames_every_epoch_runs_and_the_last_is_kept():
    model = TrackedWell(100.0)
    trainer = _force_matching(patience=1, epochs=6)
    result = trainer.fit(
        model, _wells(500.0, 300.0, 0), generator=torch.Generator().manual_seed(0), device="cpu"
    )
    assert result.selected_epoch == result.stopped_at_epoch == 5
    assert math.isnan(result.validation_loss)
    assert {r["split"] for r in result.records} == {"train"}
    assert torch.equal(model.log_stiffness.detach().exp(), model.history[-1])


def test_no_validation_trajectory_through_run(tmp_path, toy_cg, test_config):
    cg_path, mapping_path = toy_cg
    cfg = _with(test_config, validation_trajectories=0)
    run(cg_path, mapping_path, tmp_path, model="cgschnet", fold=0, cfg=cfg, seed=1)
    losses = read_table(tmp_path / LOSSES_FILE)
    assert set(losses.split) == {"train", "heldout"}
    extra = read_provenance(tmp_path / MODEL_FILE)["extra"]
    assert extra["validation_trajectories"] == [] and extra["training_trajectories"] == [2, 3]


# --- training replicates --------------------------------------------------------------------


def test_three_seeds_write_three_replicates_and_keep_the_best(tmp_path, toy_cg, test_config):
    cg_path, mapping_path = toy_cg
    cfg = _with(test_config, seeds=3)
    model = run(cg_path, mapping_path, tmp_path, model="cgschnet", fold=0, cfg=cfg, seed=5)
    losses = read_table(tmp_path / LOSSES_FILE)
    assert sorted(set(losses[REPLICATE])) == [0, 1, 2]
    heldout = losses[losses.split == "heldout"]
    assert heldout[REPLICATE].tolist() == [0, 1, 2] and heldout.rmse.nunique() == 3
    extra = read_provenance(tmp_path / MODEL_FILE)["extra"]
    replicates = extra["replicates"]
    assert [r["seed"] for r in replicates] == [5] + [derive_seed(5, "replicate", r) for r in (1, 2)]
    scores = [r["validation_rmse"] for r in replicates]
    assert extra["selected_replicate"] == int(np.argmin(scores))
    # The saved model is that replicate: its validation and held-out RMSE, recomputed.
    back = load_model(tmp_path / MODEL_FILE)
    data = read_trajectory(cg_path)
    for split, rmse in (("validation", min(scores)), ("heldout", None)):
        labels = extra[f"{split}_trajectories"]
        frames = np.isin(data.trajectory_index, labels)
        x, f = (torch.as_tensor(a[frames]) for a in (data.coordinates, data.forces))
        expected = rmse or heldout.rmse.iloc[extra["selected_replicate"]]
        assert force_rmse(back, x, f) == pytest.approx(expected, rel=1e-5)
        assert force_rmse(model, x, f) == pytest.approx(expected, rel=1e-5)


def test_one_seed_is_the_first_replicate_of_several(tmp_path, toy_cg, test_config):
    cg_path, mapping_path = toy_cg
    common = dict(model="cgschnet", fold=1, seed=4)
    single = run(cg_path, mapping_path, tmp_path / "a", cfg=test_config, **common)
    again = run(cg_path, mapping_path, tmp_path / "b", cfg=test_config, **common)
    run(cg_path, mapping_path, tmp_path / "c", cfg=_with(test_config, seeds=2), **common)
    for k, value in single.state_dict().items():
        assert torch.equal(value, again.state_dict()[k])
    one, two = (read_table(tmp_path / d / LOSSES_FILE) for d in ("a", "c"))
    first = two[two[REPLICATE] == 0].reset_index(drop=True)
    np.testing.assert_array_equal(one.rmse, first.rmse)
    assert read_table(tmp_path / "b" / LOSSES_FILE).equals(one)
