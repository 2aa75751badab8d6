"""Positions-only data end to end: mdshare-format files (a topology PDB and XTC
trajectories, no forces) served on 127.0.0.1 are downloaded against their MD5, ingested,
mapped and projected; the diffusion model trains on them, draws i.i.d. configurations and
is simulated, while a force-matched model is refused with a one-line reason."""

from __future__ import annotations

import hashlib

import mdtraj as md
import numpy as np
import pytest

from cgpipe import forces, mapping
from cgpipe.config import (
    ConfigError,
    load_config,
    load_systems,
    system_config,
    system_models,
)
from cgpipe.errors import InputError
from cgpipe.io import read_trajectory
from cgpipe.models import load_model
from cgpipe.paths import MODEL_FILE, TRAJECTORY_FILE
from cgpipe.reference.download import fetch
from cgpipe.reference.ingest import ingest_mdshare
from cgpipe.sample import run as sample
from cgpipe.simulate import run as simulate
from cgpipe.train import run as train


def _md5(path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def served(http_server, ala2_structure, ala2_reference):
    """The PDB and one XTC per reference trajectory (its positions, forces dropped)."""
    pdb = http_server.root / "alanine-dipeptide-nowater.pdb"
    pdb.write_bytes(ala2_structure.read_bytes())
    topology = md.load(str(ala2_structure)).topology
    names = [pdb.name]
    for index, path in enumerate(ala2_reference):
        data = read_trajectory(path)
        xtc = http_server.root / f"alanine-dipeptide-{index}-250ns-nowater.xtc"
        md.Trajectory(data.coordinates, topology, time=data.time).save_xtc(str(xtc))
        names.append(xtc.name)
    return names


def test_a_positions_only_system_trains_samples_and_simulates_diffusion(
    tmp_path, http_server, served, test_config
):
    downloads = tmp_path / "resources/download/md"
    records = [
        fetch(
            http_server.url(name),
            downloads / name,
            known_hash=_md5(http_server.root / name),
            retries=0,
        )
        for name in served
    ]
    references = []
    for index, record in enumerate(records[1:]):
        output = tmp_path / f"results/reference/md/traj_{index}.h5"
        ingest_mdshare(
            records[0].path,
            record.path,
            output,
            system="md",
            index=index,
            download=[records[0].to_dict(), record.to_dict()],
        )
        references.append(output)
    assert all(read_trajectory(path).forces is None for path in references)

    mapping_path, cg_path = tmp_path / "backbone_cb.parquet", tmp_path / "backbone_cb.h5"
    mapping.run(references, mapping_path, name="backbone_cb", cfg=test_config)
    forces.run(references, mapping_path, cg_path, cfg=test_config)
    assert read_trajectory(cg_path).forces is None

    # Force matching has nothing to match: refused, nothing written.
    with pytest.raises(InputError, match="no forces .* cgschnet is trained by force matching"):
        train(cg_path, mapping_path, tmp_path / "cgschnet", model="cgschnet", fold=0,
              cfg=test_config, seed=1)  # fmt: skip
    assert not (tmp_path / "cgschnet" / MODEL_FILE).exists()

    folder = tmp_path / "diffusion"
    train(cg_path, mapping_path, folder, model="diffusion", fold=0, cfg=test_config, seed=1)
    model = load_model(folder / MODEL_FILE)
    assert model.name == "diffusion" and "iid" in model.samples

    drawn = tmp_path / "sample"
    cfg = {**test_config, "sample": {**test_config["sample"], "n_samples": 16, "batch_size": 16}}
    sample(folder / MODEL_FILE, cg_path, mapping_path, drawn, fold=0, cfg=cfg, seed=2)
    draws = read_trajectory(drawn / TRAJECTORY_FILE)
    assert draws.coordinates.shape == (16, model.n_beads, 3)
    assert np.isfinite(draws.coordinates).all()

    simulated = tmp_path / "simulate"
    simulate(folder / MODEL_FILE, cg_path, mapping_path, simulated, fold=0, cfg=test_config,
             seed=3)  # fmt: skip
    trajectory = read_trajectory(simulated / TRAJECTORY_FILE)
    assert trajectory.n_frames > 0 and trajectory.forces is None


def test_the_workflow_refuses_force_matching_on_mdshare_in_one_line(tmp_path):
    sheet = tmp_path / "md.tsv"
    sheet.write_text(
        "system\tsource\tdataset\tmappings\nmd\tmdshare\talanine-dipeptide\tbackbone\n"
    )
    row = load_systems(sheet).loc["md"]
    config = load_config(
        {"reference": {"n_trajectories": 2}, "train": {"n_folds": 2, "models": ["diffusion"]}}
    )
    assert system_config(config, row)["temperature"] == 300.0
    config["train"]["models"] = ["diffusion", "cgschnet", "prior"]
    with pytest.raises(ConfigError) as error:
        system_config(config, row)
    message = str(error.value)
    assert "\n" not in message and "positions only" in message and "['cgschnet']" in message


def test_a_models_column_trains_positions_only_data_beside_force_matched_systems(tmp_path):
    """One run: CGSchNet on a system with forces, the diffusion models on mdshare's."""
    sheet = tmp_path / "both.tsv"
    sheet.write_text(
        "system\tsource\tsequence\tdataset\tmappings\tmodels\n"
        "gen\topenmm\tAA\t\tcalpha\t\n"
        "md\tmdshare\t\talanine-dipeptide\tbackbone\tdiffusion,diffusion_fp\n"
    )
    systems = load_systems(sheet)
    assert system_models(systems.loc["md"]) == ["diffusion", "diffusion_fp"]
    assert system_models(systems.loc["gen"]) == []
    config = load_config(
        {"reference": {"n_trajectories": 2}, "train": {"n_folds": 2, "models": ["cgschnet"]}}
    )
    assert system_config(config, systems.loc["gen"])["train"]["models"] == ["cgschnet"]
    resolved = system_config(config, systems.loc["md"])
    assert resolved["train"]["models"] == ["diffusion", "diffusion_fp"]
    assert config["train"]["models"] == ["cgschnet"]  # the run's own is untouched
    sheet.write_text(
        "system\tsource\tdataset\tmappings\tmodels\nmd\tmdshare\talanine-dipeptide\tbackbone\tnope\n"
    )
    with pytest.raises(
        ConfigError, match=r"system md: invalid configuration\s+train.models.0: 'nope'"
    ):
        system_config(config, load_systems(sheet).loc["md"])
