"""Runs the whole workflow on config/test.yaml with Snakemake and checks its artifacts."""

from __future__ import annotations

import re
from pathlib import Path

import mdtraj as md
import numpy as np
import pytest

from cgpipe import keys
from cgpipe.io import read_provenance, read_table, read_trajectory
from tests.integration.conftest import copy_workflow, planned_jobs, run_snakemake
from tests.synthetic import DOMAIN, write_mdcath

pytestmark = pytest.mark.integration


def test_every_artifact_exists_and_opens(workdir):
    for i in range(2):
        trajectory = md.load(str(workdir / f"results/reference/ala2/traj_{i}.h5"))
        assert trajectory.n_atoms == 22 and trajectory.n_frames == 100
    cg = md.load(str(workdir / "results/cg/ala2/backbone_cb.h5"))
    assert cg.n_atoms == 6 and cg.n_frames == 200
    for fold in (0, 1):
        simulation = md.load(
            str(workdir / f"results/simulate/ala2/backbone_cb/cgschnet/fold{fold}/traj.h5")
        )
        assert simulation.n_atoms == 6 and simulation.n_frames > 0
        backmapped = md.load(
            str(workdir / f"results/backmap/ala2/backbone_cb/cgschnet/fold{fold}/flow/traj.h5")
        )
        assert backmapped.n_atoms == 22
        table = read_table(
            workdir / f"results/backmap/ala2/backbone_cb/cgschnet/fold{fold}/flow/backmap.parquet"
        )
        assert len(table) == backmapped.n_frames and table[keys.SAMPLE].nunique() > 1
        health = read_table(
            workdir / f"results/simulate/ala2/backbone_cb/cgschnet/fold{fold}/health.parquet"
        )
        assert len(health) == 4
    page = (workdir / "results/report/index.html").read_text()
    # One FES figure per system, map and model (5 maps x 4 models), and one fit plot per
    # fitted map (the k-means elbow, Autograin's losses).
    assert page.count("data:image/png;base64,") == 20 + 2
    assert "ala2: mappings compared on held-out frames" in page
    assert "ala2 · backbone_cb · prior" in page and "ala5 · calpha · cgschnet" in page
    assert "ala2 · backbone_cb: models compared" in page and "State populations" in page
    assert "discriminating" in page and "converged in" in page
    assert "ala2 · backbone_cb: backmapping on held-out frames" in page


def test_a_system_built_from_its_sequence(workdir):
    structure = read_provenance(workdir / "results/reference/ala5/structure.pdb")
    assert structure["config"]["sequence"] == "AAAAA"
    assert structure["config"]["solvent"] == "vacuum"  # the systems sheet's override
    added = structure["extra"]["preparation"]["heavy_atoms_added"]
    assert added == {f"ALA {k} (chain A)": ["CB"] for k in range(2, 7)}
    trajectory = md.load(str(workdir / "results/reference/ala5/traj_0.h5"))
    assert [r.name for r in trajectory.topology.residues] == ["ACE", *["ALA"] * 5, "NME"]
    assert md.load(str(workdir / "results/cg/ala5/calpha.h5")).n_atoms == 5
    metrics = read_table(workdir / "results/evaluate/ala5/calpha/cgschnet/metrics.parquet")
    names = set(metrics[keys.METRIC])
    assert {keys.JS_RG_END_TO_END, keys.JS_RG_END_TO_END + keys.FLOOR_SUFFIX} <= names
    assert {keys.JS_TICA, keys.POPULATION_PREFIX + "tic1_low", keys.CONVERGED} <= names
    assert np.isfinite(metrics[metrics[keys.METRIC].str.startswith("js_")][keys.VALUE]).all()


def test_metric_table_has_every_metric_for_every_fold(workdir):
    metrics = read_table(workdir / "results/evaluate/ala2/backbone_cb/cgschnet/metrics.parquet")
    assert list(metrics.columns) == list(keys.METRIC_COLUMNS)
    for fold in ("fold0", "fold1"):
        names = set(metrics[metrics[keys.FOLD] == fold][keys.METRIC])
        assert {
            keys.JS_PHI_PSI,
            keys.KL_PHI_PSI,
            keys.FORCE_RMSE_HELDOUT,
            keys.STABLE_FRACTION,
            keys.SURVIVAL_PREFIX + "50pct",  # the survival curve, from the run's length
        } <= names
        # Out of sample, beside its floor, the floor's resolution, the echo and replay
        # baselines and the in-sample score.
        assert {
            keys.JS_PHI_PSI + suffix
            for suffix in (
                keys.FLOOR_SUFFIX,
                keys.FLOOR_RESOLUTION_SUFFIX,
                keys.ECHO_SUFFIX,
                keys.REPLAY_SUFFIX,
                keys.INSAMPLE_SUFFIX,
            )
        } <= names
    floors = metrics[metrics[keys.METRIC] == keys.JS_PHI_PSI + keys.FLOOR_SUFFIX]
    assert len(floors) == 3 and (floors[keys.LOW] <= floors[keys.HIGH]).all()  # 2 folds, pooled
    assert set(metrics[metrics[keys.METRIC] == keys.CONVERGED][keys.VALUE]) <= {0.0, 1.0}
    divergences = metrics[metrics[keys.METRIC].str.startswith(("js_", "kl_"))]
    assert np.isfinite(divergences[keys.VALUE]).all()
    js = metrics[metrics[keys.METRIC] == keys.JS_PHI_PSI][keys.VALUE]
    assert ((js >= 0) & (js <= np.log(2))).all()


def test_the_diffusion_model_samples_both_ways_and_both_are_scored(workdir):
    """Trained on positions only, the diffusion model draws i.i.d. configurations by reverse
    diffusion (one trajectory per draw) and is simulated through its score; evaluate scores
    both against the same held-out frames, and the gap between them is a metric."""
    run = "ala2/backbone_cb/diffusion"
    for fold in (0, 1):
        draws = read_trajectory(workdir / f"results/sample/{run}/fold{fold}/traj.h5")
        assert draws.coordinates.shape == (64, 6, 3)
        assert np.isfinite(draws.coordinates).all()
        assert len(set(draws.trajectory_index)) == 64  # each draw independent
        record = draws.provenance
        assert record["stage"] == "sample"
        assert f"results/train/{run}/fold{fold}/model.pt" in record["inputs"]
        assert md.load(str(workdir / f"results/simulate/{run}/fold{fold}/traj.h5")).n_frames
    metrics = read_table(workdir / f"results/evaluate/{run}/metrics.parquet")
    names = set(metrics[keys.METRIC])
    iid = keys.IID_PREFIX + keys.JS_PHI_PSI
    gap = keys.SAMPLING_GAP_PREFIX + "phi_psi"
    assert {iid, iid + keys.FLOOR_SUFFIX, iid + keys.REPLAY_SUFFIX, gap, keys.JS_PHI_PSI} <= names
    # No echo of the draws (they have no start), no convergence or stability rows.
    assert not any(n.startswith(keys.IID_PREFIX) and keys.ECHO_SUFFIX in n for n in names)
    assert not {keys.IID_PREFIX + keys.CONVERGED, keys.IID_PREFIX + keys.STABLE_FRACTION} & names
    rows = metrics[metrics[keys.METRIC] == gap]
    assert set(rows[keys.FOLD]) == {"fold0", "fold1", keys.ALL_FOLDS}
    for _, row in rows.iterrows():
        simulated = metrics[
            (metrics[keys.METRIC] == keys.JS_PHI_PSI) & (metrics[keys.FOLD] == row[keys.FOLD])
        ][keys.VALUE]
        drawn = metrics[(metrics[keys.METRIC] == iid) & (metrics[keys.FOLD] == row[keys.FOLD])]
        # The gap is the ratio of the two scores the table reports.
        np.testing.assert_allclose(
            row[keys.VALUE], float(simulated.iloc[0]) / float(drawn[keys.VALUE].iloc[0]), rtol=1e-6
        )
        assert row[keys.LOW] <= row[keys.HIGH]
    page = (workdir / "results/report/index.html").read_text()
    assert "I.i.d. draws and simulation" in page


def test_every_artifact_records_its_provenance(workdir):
    artifacts = [
        "results/reference/ala2/traj_0.h5",
        "results/mapping/ala2/backbone_cb.parquet",
        "results/cg/ala2/backbone_cb.h5",
        "results/train/ala2/backbone_cb/cgschnet/fold0/model.pt",
        "results/train/ala2/backbone_cb/cgschnet/fold0/losses.parquet",
        "results/simulate/ala2/backbone_cb/cgschnet/fold1/traj.h5",
        "results/backmap/ala2/backbone_cb/fold1/flow/backmapper.pt",
        "results/backmap/ala2/backbone_cb/fold1/flow/heldout.parquet",
        "results/backmap/ala2/backbone_cb/cgschnet/fold1/flow/traj.h5",
        "results/evaluate/ala2/backbone_cb/cgschnet/metrics.parquet",
        "results/evaluate/ala2/backbone_cb/cgschnet/fes.png",
        "results/report/index.html",
    ]
    for artifact in artifacts:
        record = read_provenance(workdir / artifact)
        assert record["cgpipe_version"] and "torch" in record["versions"], artifact
    cg_record = read_provenance(workdir / "results/cg/ala2/backbone_cb.h5")
    assert set(cg_record["inputs"]) == {
        "results/mapping/ala2/backbone_cb.parquet",
        "results/reference/ala2/traj_0.h5",
        "results/reference/ala2/traj_1.h5",
    }


@pytest.mark.parametrize("mapping", ["kmeans", "autograin"])
def test_a_learned_map_never_sees_its_held_out_trajectory(workdir, mapping):
    for fold in (0, 1):
        held_out = f"results/reference/ala2/traj_{fold}.h5"  # two folds: fold k holds out k
        fitted = f"results/mapping/ala2/{mapping}/fold{fold}.parquet"
        record = read_provenance(workdir / fitted)
        assert record["config"]["fold"] == fold
        assert record["extra"]["training_trajectories"] == [
            f"results/reference/ala2/traj_{1 - fold}.h5"
        ]
        assert held_out not in record["extra"]["training_trajectories"]
        fit = read_table(workdir / f"results/mapping/ala2/{mapping}/fold{fold}.fit.parquet")
        assert len(fit) > 1
        # Downstream, the fold's jobs read that fold's map and the CG data it projected.
        cg = f"results/cg/ala2/{mapping}/fold{fold}.h5"
        assert fitted in read_provenance(workdir / cg)["inputs"]
        model = workdir / f"results/train/ala2/{mapping}/cgschnet/fold{fold}/model.pt"
        assert {cg, fitted} <= set(read_provenance(model)["inputs"])
    metrics = read_table(workdir / f"results/evaluate/ala2/{mapping}/cgschnet/metrics.parquet")
    # Each fold is scored against its own CG reference: no pooled rows across two maps.
    assert set(metrics[keys.FOLD]) == {"fold0", "fold1"}
    scores = read_table(workdir / f"results/mapping/ala2/{mapping}/scores.parquet")
    assert {"reconstruction_rmse", "reconstruction_rmse_random"} <= set(scores[keys.METRIC])


def test_a_second_run_has_nothing_to_do(workdir):
    result = run_snakemake(workdir, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_a_bad_config_value_stops_the_run_naming_the_key(workdir):
    result = run_snakemake(workdir, "-n", "--config", "temperature=-5")
    assert result.returncode != 0
    assert (
        "temperature: -5 is less than or equal to the minimum of 0" in result.stdout + result.stderr
    )


def test_changing_the_set_of_models_reruns_only_the_report(workdir):
    # train.models only chooses which jobs exist: the cgschnet jobs stay as they are.
    result = run_snakemake(workdir, "-n", "--config", "train={'models': ['cgschnet']}")
    assert result.returncode == 0
    planned = re.findall(r"^(?:local)?rule (\w+):", result.stdout, flags=re.MULTILINE)
    assert set(planned) <= {"report", "all"}, planned
    # ... while a change of science does rerun the jobs that read it: the trainer that
    # both models use reruns both, from training on; nothing upstream.
    (workdir / "more_epochs.yaml").write_text("trainers:\n  force_matching:\n    epochs: 3\n")
    jobs = _planned_jobs(workdir, "more_epochs.yaml")
    assert {("train", "cgschnet"), ("train", "prior"), ("evaluate", "prior")} <= jobs
    assert not {stage for stage, _ in jobs} & {"reference", "mapping", "forces"}


def _planned_jobs(workdir: Path, configfile: str) -> set[tuple[str, str | None]]:
    """(rule, model) of every job a dry run with ``configfile`` on top of the test config
    would run (model None for rules without one)."""
    return {
        (rule, dict(wildcards).get("model"))
        for rule, wildcards in planned_jobs(workdir, configfile)
    }


def test_changing_one_models_section_reruns_only_that_models_jobs(workdir):
    (workdir / "wider.yaml").write_text("models:\n  cgschnet:\n    hidden_channels: 8\n")
    jobs = _planned_jobs(workdir, "wider.yaml")
    assert {("train", "cgschnet"), ("simulate", "cgschnet"), ("evaluate", "cgschnet")} <= jobs
    assert not [job for job in jobs if job[1] == "prior"], jobs
    assert not {stage for stage, _ in jobs} & {"reference", "mapping", "forces"}


def test_a_downloaded_system_is_fetched_checked_and_ingested(tmp_path, http_server, ala2_structure):
    """An mdCATH-layout file served on 127.0.0.1 goes through the download and ingest rules;
    its SHA-256 is pinned, and a later download that differs is refused."""
    folder = copy_workflow(tmp_path / "workflow")
    rng = np.random.default_rng(3)
    structure = md.load(str(ala2_structure))
    coords = (structure.xyz * 10.0 + rng.normal(0, 0.1, (5, 22, 3))).astype(np.float32)
    forces = rng.normal(0, 10.0, coords.shape).astype(np.float32)
    served = http_server.root / f"mdcath_dataset_{DOMAIN}.h5"
    write_mdcath(served, ala2_structure.read_text(), coords, forces, temperatures=("348",))
    (folder / "dom.tsv").write_text(
        "system\tsource\tdataset\ttemperature\tn_trajectories\tmappings\n"
        f"dom\tmdcath\t{DOMAIN}\t348\t2\tbackbone\n"
    )
    targets = ["results/reference/dom/traj_0.h5", "results/reference/dom/traj_1.h5"]
    url = http_server.url("")
    options = ["--config", "systems=dom.tsv", f"download={{'mdcath_url': '{url}'}}"]
    result = run_snakemake(folder, *options, "--", *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    downloaded = folder / f"resources/download/dom/mdcath_dataset_{DOMAIN}.h5"
    assert downloaded.exists() and downloaded.with_name(downloaded.name + ".sha256").exists()
    data = read_trajectory(folder / targets[1])
    np.testing.assert_allclose(data.coordinates, coords * 0.1, rtol=1e-6)
    np.testing.assert_allclose(data.forces, forces * 41.84, rtol=1e-5)
    extra = data.provenance["extra"]
    assert extra["download"][0]["pinned"] and extra["replica"] == 1
    assert "x41.84" in extra["units"]["forces"]
    # The publisher's file changes: a fresh download is refused, and nothing is kept.
    write_mdcath(served, ala2_structure.read_text(), coords + 1.0, forces, temperatures=("348",))
    downloaded.unlink()
    for target in targets:
        (folder / target).unlink()
    result = run_snakemake(folder, *options, "--", *targets)
    assert result.returncode != 0
    log = (folder / f"logs/download/dom/mdcath_dataset_{DOMAIN}.h5.log").read_text()
    assert "checksum mismatch" in log and url in log
    assert not downloaded.exists() and not (folder / targets[0]).exists()


def test_an_mdshare_file_is_checked_against_the_catalogue(tmp_path, http_server):
    """The publisher's MD5 reaches the download: a file that is not the published one is
    refused and not kept."""
    folder = copy_workflow(tmp_path / "workflow")
    (http_server.root / "alanine-dipeptide-nowater.pdb").write_text("not the published file\n")
    (folder / "md.tsv").write_text(
        "system\tsource\tdataset\tmappings\nmd\tmdshare\talanine-dipeptide\tbackbone\n"
    )
    (folder / "md.yaml").write_text(
        "systems: md.tsv\n"
        f"download: {{mdshare_url: '{http_server.url('')}'}}\n"
        "reference: {n_trajectories: 2}\n"
        "train: {models: [prior], n_folds: 2}\n"
    )
    options = ["--configfile", "config/test.yaml", "md.yaml"]
    target = "resources/download/md/alanine-dipeptide-nowater.pdb"
    result = run_snakemake(folder, *options, "--", target)
    assert result.returncode != 0
    log = (folder / "logs/download/md/alanine-dipeptide-nowater.pdb.log").read_text()
    assert "checksum mismatch: expected md5:728635667ed4937cf4a0e5b7c801d9ea" in log
    assert not (folder / target).exists()
    assert set(http_server.requests) == {"/alanine-dipeptide-nowater.pdb"}
