"""A tiny fold to simulate: ala2 on the backbone map, its CG frames, and a prior model
fitted to the training trajectories of fold 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgpipe.data import FoldData
from cgpipe.io import Provenance, read_trajectory
from cgpipe.mapping import read_mapping
from cgpipe.models import MODELS, fit_prior, save_model
from cgpipe.simulate import run

FOLD = 1


@pytest.fixture(scope="session")
def fold_inputs(tmp_path_factory, ala2_backbone, test_config) -> dict[str, Path]:
    """Paths of the backbone mapping, the CG frames of both reference trajectories
    (labelled by trajectory) and a prior-only model fitted to fold 1's training frames."""
    mapping = read_mapping(ala2_backbone["mapping"])
    cg = read_trajectory(ala2_backbone["cg"])
    training = FoldData.split(cg, test_config["train"]["n_folds"], FOLD).training
    prior = fit_prior(training.coordinates, mapping.bonds, test_config["temperature"], bins=20)
    model = MODELS.get("prior")(bead_types=[0] * mapping.n_beads, prior=prior.hparams)
    model_path = tmp_path_factory.mktemp("simulate_inputs") / "model.pt"
    save_model(model_path, model, Provenance("train"), temperature=test_config["temperature"])
    return {"mapping": ala2_backbone["mapping"], "cg": ala2_backbone["cg"], "model": model_path}


def simulate_fold(inputs: dict[str, Path], output: Path, cfg: dict, seed: int = 3) -> None:
    """The simulate stage on fold FOLD of ``inputs`` (model, cg, mapping paths)."""
    run(
        inputs["model"],
        inputs["cg"],
        inputs["mapping"],
        output,
        fold=FOLD,
        cfg=cfg,
        seed=seed,
    )
