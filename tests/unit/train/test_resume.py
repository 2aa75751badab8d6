"""Training that a cluster can trust: the epoch loop saves its state after every epoch,
and a killed training job, rerun, goes on from there and ends bit for bit where an
uninterrupted run ends (on a CPU, with a fixed seed)."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from cgpipe.epochs import EpochCheckpoint, EpochScores, run_epochs
from cgpipe.io import read_provenance, read_table
from cgpipe.io.blocks import Blocks
from cgpipe.paths import LOSSES_FILE, MODEL_FILE
from cgpipe.train import run


class Killed(Exception):
    pass


def _fit(epochs: int, checkpoint: EpochCheckpoint | None, kill_after: int | None = None):
    """A small regression fitted by the loop: AdamW, a cosine schedule, shuffled batches
    drawn from a generator, dropout drawn from torch's global generator, and validation
    losses that stop improving (so that early stopping and selection both act)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    data = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    target = data @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    valid = torch.randn(16, 3, generator=torch.Generator().manual_seed(2))
    valid_target = valid @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 + 3.0  # an offset: overfits
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * 4)
    generator = torch.Generator().manual_seed(3)

    def epoch_step(epoch: int) -> EpochScores:
        if kill_after is not None and epoch == kill_after:
            raise Killed
        order = torch.randperm(64, generator=generator)
        total = 0.0
        for start in range(0, 64, 16):
            batch = order[start : start + 16]
            loss = ((model(data[batch])[:, 0] - target[batch]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * 16
        model.eval()
        with torch.no_grad():
            selection = float(((model(valid)[:, 0] - valid_target) ** 2).mean())
        return EpochScores(
            [{"epoch": epoch, "loss": np.float64(total / 64)}], total / 64, selection
        )

    outcome = run_epochs(
        epochs,
        epoch_step,
        model=model,
        stateful={"optimizer": optimizer, "scheduler": scheduler},
        generator=generator,
        patience=4,
        checkpoint=checkpoint,
    )
    return outcome, model.state_dict()


def _memory_checkpoint() -> tuple[list[bytes], EpochCheckpoint]:
    stored: list[bytes] = []
    return stored, EpochCheckpoint(lambda: stored[-1] if stored else None, stored.append)


def test_the_loop_resumed_after_any_epoch_equals_an_uninterrupted_one():
    whole, weights = _fit(30, None)
    assert whole.stopped_at_epoch < 29, "early stopping should act in this fit"
    assert whole.selected_epoch == whole.stopped_at_epoch - 4
    for kill_after in (1, whole.selected_epoch + 1, whole.stopped_at_epoch):
        stored, checkpoint = _memory_checkpoint()
        with pytest.raises(Killed):
            _fit(30, checkpoint, kill_after=kill_after)
        assert len(stored) == kill_after
        resumed, resumed_weights = _fit(30, checkpoint)
        assert resumed.resumed_at_epoch == kill_after
        assert resumed.records == whole.records
        assert (resumed.selected_epoch, resumed.stopped_at_epoch) == (
            whole.selected_epoch,
            whole.stopped_at_epoch,
        )
        for name, tensor in weights.items():
            assert torch.equal(resumed_weights[name], tensor), name
    # A finished fit's last state runs no epoch and gives the same result.
    stored, checkpoint = _memory_checkpoint()
    _fit(30, checkpoint)
    again, again_weights = _fit(30, checkpoint)
    assert again.records == whole.records and len(stored) == whole.stopped_at_epoch + 1
    assert all(torch.equal(again_weights[k], v) for k, v in weights.items())


_TRAIN = """
import json, sys
from cgpipe.train import run
args = json.loads(sys.argv[1])
run(args["cg"], args["mapping"], args["out"], model="cgschnet", fold=0, cfg=args["cfg"], seed=4)
"""


def _long_config(test_config) -> dict:
    cfg = copy.deepcopy(test_config)
    cfg["train"]["seeds"] = 2
    cfg["trainers"]["force_matching"].update(epochs=60, patience=60)
    return cfg


def _saved_replicates(folder) -> set[int]:
    try:
        with np.load(folder / Blocks.STATE, allow_pickle=False) as saved:
            state = saved["state"].tobytes()
    except (OSError, KeyError, ValueError):
        return set()
    import io

    return {int(k) for k in torch.load(io.BytesIO(state), weights_only=True)}


def test_a_killed_training_job_resumes_and_equals_an_uninterrupted_one(
    tmp_path, toy_cg, test_config
):
    cg_path, mapping_path = toy_cg
    cfg = _long_config(test_config)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    expected = run(cg_path, mapping_path, whole, model="cgschnet", fold=0, cfg=cfg, seed=4)
    assert not (whole / (MODEL_FILE + ".checkpoint")).exists()
    arguments = {"cg": str(cg_path), "mapping": str(mapping_path), "out": str(cut), "cfg": cfg}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), *sys.path])}
    process = subprocess.Popen(
        [sys.executable, "-c", _TRAIN, json.dumps(arguments)],
        stderr=subprocess.DEVNULL,
        cwd=os.getcwd(),
        env=env,
    )
    folder = cut / (MODEL_FILE + ".checkpoint")
    deadline = time.monotonic() + 180
    # Killed in the second replicate: the first is restored from its last state, the
    # second goes on from its last epoch.
    while 1 not in _saved_replicates(folder) and process.poll() is None:
        assert time.monotonic() < deadline, "the training job saved no second replicate"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (cut / MODEL_FILE).exists(), "not cut mid-way"
    resumed = run(cg_path, mapping_path, cut, model="cgschnet", fold=0, cfg=cfg, seed=4)
    for name, tensor in expected.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], tensor), name
    losses = [read_table(f / LOSSES_FILE) for f in (whole, cut)]
    assert losses[0].equals(losses[1])
    extra = read_provenance(cut / MODEL_FILE)["extra"]
    assert extra["restarts"] == 1 and read_provenance(whole / MODEL_FILE)["extra"]["restarts"] == 0
    assert not folder.exists()
    assert math.isfinite(losses[1]["rmse"].iloc[-1])


def test_a_training_checkpoint_of_other_settings_is_not_resumed(tmp_path, toy_cg, test_config):
    cg_path, mapping_path = toy_cg
    folder = tmp_path / (MODEL_FILE + ".checkpoint")
    Blocks(folder, "other settings").reset()
    Blocks(folder, "other settings").save_state(b"junk", n_blocks=0, restarts=3)
    run(cg_path, mapping_path, tmp_path, model="cgschnet", fold=0, cfg=test_config, seed=4)
    assert read_provenance(tmp_path / MODEL_FILE)["extra"]["restarts"] == 0
    assert not folder.exists()


def test_every_epoch_is_logged_where_no_progress_bar_shows(caplog):
    """A job's log is a file, not a terminal: the progress bar writes nothing there, so
    the loop logs each epoch's losses itself (the flow's fit looked hung without it)."""
    with caplog.at_level(logging.INFO, logger="cgpipe.epochs"):
        outcome, _ = _fit(30, None)
    lines = [r.getMessage() for r in caplog.records if r.name == "cgpipe.epochs"]
    assert len(lines) == outcome.stopped_at_epoch + 1
    assert lines[0].startswith("epoch 1 of 30: train loss ")
    assert "validation loss" in lines[-1]
    assert lines[-1] == lines[-1].rstrip()  # no unit named, none written
