"""The sample stage: i.i.d. draws of a model that samples without dynamics, written as a
trajectory of one-frame trajectories; a model that samples by dynamics only is refused."""

from __future__ import annotations

import numpy as np
import pytest

from cgpipe import paths
from cgpipe.errors import InputError
from cgpipe.io import Provenance, read_trajectory
from cgpipe.mapping import read_mapping
from cgpipe.models import MODELS, save_model
from cgpipe.models.diffusion import DiffusionModel
from cgpipe.sample import run


@pytest.fixture
def diffusion_path(tmp_path, ala2_backbone, test_config):
    n_beads = read_mapping(ala2_backbone["mapping"]).n_beads
    model = DiffusionModel(
        [0] * n_beads,
        temperature=test_config["temperature"],
        hidden_channels=8,
        num_filters=8,
        num_interactions=1,
        num_gaussians=8,
        cutoff=1.5,
        steps=10,
        force_noise=1,
    )
    model.scale.fill_(0.2)
    path = tmp_path / "model.pt"
    save_model(path, model, Provenance("train"), temperature=test_config["temperature"])
    return path


def _cfg(test_config, n_samples=12, batch_size=5):
    return {
        **test_config,
        "sample": {**test_config["sample"], "n_samples": n_samples, "batch_size": batch_size},
    }


def test_draws_are_written_one_trajectory_each(
    tmp_path, diffusion_path, ala2_backbone, test_config
):
    out = tmp_path / "sample"
    cfg = _cfg(test_config)
    run(diffusion_path, ala2_backbone["cg"], ala2_backbone["mapping"], out, fold=0, cfg=cfg, seed=5)
    draws = read_trajectory(out / paths.TRAJECTORY_FILE)
    assert draws.n_frames == 12  # across batches of 5, 5 and 2
    assert np.array_equal(draws.trajectory_index, np.arange(12))
    assert np.all(draws.time == 0)
    assert np.isfinite(draws.coordinates).all()
    assert np.allclose(draws.coordinates.mean(axis=1), 0, atol=1e-5)  # centred
    assert draws.provenance["stage"] == "sample"
    assert draws.provenance["config"]["n_samples"] == 12
    assert (out / paths.RESOLVED_CONFIG_FILE).exists()
    # The same seed draws the same configurations; another seed others.
    again = tmp_path / "again"
    run(
        diffusion_path,
        ala2_backbone["cg"],
        ala2_backbone["mapping"],
        again,
        fold=0,
        cfg=cfg,
        seed=5,
    )
    assert np.array_equal(
        read_trajectory(again / paths.TRAJECTORY_FILE).coordinates, draws.coordinates
    )
    other = tmp_path / "other"
    run(
        diffusion_path,
        ala2_backbone["cg"],
        ala2_backbone["mapping"],
        other,
        fold=0,
        cfg=cfg,
        seed=6,
    )
    assert not np.allclose(
        read_trajectory(other / paths.TRAJECTORY_FILE).coordinates, draws.coordinates
    )


def test_a_model_that_samples_by_dynamics_only_is_refused(tmp_path, ala2_backbone, test_config):
    n_beads = read_mapping(ala2_backbone["mapping"]).n_beads
    model = MODELS.get("prior")(
        bead_types=[0] * n_beads,
        prior={"terms": {}, "temperature": test_config["temperature"]},
    )
    path = tmp_path / "model.pt"
    save_model(path, model, Provenance("train"), temperature=test_config["temperature"])
    out = tmp_path / "sample"
    with pytest.raises(InputError, match="samples by dynamics only"):
        run(
            path,
            ala2_backbone["cg"],
            ala2_backbone["mapping"],
            out,
            fold=0,
            cfg=_cfg(test_config),
            seed=1,
        )
    assert not out.exists()


def test_a_model_trained_at_another_temperature_is_refused(
    tmp_path, diffusion_path, ala2_backbone, test_config
):
    cfg = _cfg({**test_config, "temperature": test_config["temperature"] + 50})
    with pytest.raises(InputError, match="trained at"):
        run(
            diffusion_path,
            ala2_backbone["cg"],
            ala2_backbone["mapping"],
            tmp_path / "s",
            fold=0,
            cfg=cfg,
            seed=1,
        )


def test_every_model_says_how_it_samples_as_its_schema_does():
    # The workflow adds a sample job from the schema's x-samples, without importing models.
    from cgpipe.config import model_samples

    for name in MODELS.names():
        assert tuple(MODELS.get(name).samples) == model_samples(name), name
    assert "iid" in model_samples("diffusion")
    assert model_samples("cgschnet") == ("dynamics",)
