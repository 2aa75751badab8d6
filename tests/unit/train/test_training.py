import numpy as np
import pytest

from cgpipe.config import load_config
from cgpipe.forces import project
from cgpipe.io import (
    Provenance,
    TrajectoryData,
    read_provenance,
    read_table,
    read_trajectory,
    write_trajectory,
)
from cgpipe.mapping import build_fixed_mapping, write_mapping
from cgpipe.models import load_model
from cgpipe.train import fold_trajectories, split_frames, train_fold


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


@pytest.fixture(scope="module")
def cg_artifacts(tmp_path_factory, ala2_reference):
    folder = tmp_path_factory.mktemp("cg")
    references = [read_trajectory(p) for p in ala2_reference]
    mapping = build_fixed_mapping("backbone", references[0].topology)
    write_mapping(folder / "backbone.parquet", mapping, Provenance("mapping"))
    cg = TrajectoryData.concatenate([project(r, mapping) for r in references])
    write_trajectory(folder / "backbone.h5", cg, Provenance("forces"))
    return folder / "backbone.h5", folder / "backbone.parquet"


@pytest.mark.parametrize("model_name", ["cgschnet", "prior"])
def test_train_fold_writes_a_checkpoint_and_losses(tmp_path, cg_artifacts, model_name):
    cg_path, mapping_path = cg_artifacts
    params = load_config(
        {
            "train": {
                "n_folds": 2,
                "epochs": 2,
                "batch_size": 8,
                "cgschnet": {
                    "hidden_channels": 8,
                    "num_filters": 8,
                    "num_interactions": 1,
                    "num_gaussians": 8,
                },
            }
        }
    )["train"]
    train_fold(
        cg_path,
        mapping_path,
        tmp_path,
        model_name=model_name,
        fold=1,
        temperature=300.0,
        params=params,
        seed=3,
    )
    model = load_model(tmp_path / "model.pt")
    assert (model.network is None) == (model_name == "prior")
    losses = read_table(tmp_path / "losses.parquet")
    assert set(losses.split) >= {"heldout"}
    assert np.isfinite(losses.loss).all()
    record = read_provenance(tmp_path / "model.pt")
    assert record["seed"] == 3 and str(cg_path) in record["inputs"]


def test_positions_only_data_fit_the_prior_but_not_force_matching(tmp_path, cg_artifacts):
    cg_path, mapping_path = cg_artifacts
    data = read_trajectory(cg_path)
    data.forces = None  # as from mdshare
    positions_only = tmp_path / "positions.h5"
    write_trajectory(positions_only, data, Provenance("forces"))
    params = load_config({"train": {"n_folds": 2}})["train"]
    common = dict(fold=0, temperature=300.0, params=params, seed=3)
    with pytest.raises(ValueError, match="no forces .* cgschnet is trained by force matching"):
        train_fold(positions_only, mapping_path, tmp_path / "a", model_name="cgschnet", **common)
    assert not (tmp_path / "a" / "model.pt").exists()
    train_fold(positions_only, mapping_path, tmp_path / "b", model_name="prior", **common)
    assert load_model(tmp_path / "b" / "model.pt").network is None
    assert np.isnan(read_table(tmp_path / "b" / "losses.parquet").rmse).all()
