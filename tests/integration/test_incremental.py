"""Incremental reruns of the shared run of config/test.yaml, read from Snakemake's dry runs:
a new system schedules only its own jobs and the report; a change of one method's section
reruns that method's jobs and what depends on them, nothing upstream and no other method.

Each test compares the EXACT set of planned jobs (rule and wildcards of every job) with
the set built here from the path grammar's rules, so that a job too many fails as surely
as a job missing. The shared run is never changed: the tests write new config files beside
it (a new systems sheet, a config on top of config/test.yaml) and only dry-run, except the
last, which runs in a copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cgpipe.config import (
    load_config,
    load_systems,
    mapping_fitted,
    model_samples,
    system_mappings,
)
from tests.integration.conftest import Job, job, planned_jobs, run_snakemake

pytestmark = pytest.mark.integration

# The jobs every change ends in: the report (its inputs were updated) and the target rule.
FINAL: set[Job] = {("report", ()), ("all", ())}


class Plan:
    """The jobs of the path grammar for one configuration: which rules make a system's
    reference, a mapping's map and CG data (fixed: once; fitted: per fold), and a model's
    training, simulation, backmapping by each backmapper (fitted once per fold of a map),
    i.i.d. draws (a model that samples them) and evaluation."""

    def __init__(self, config: dict):
        self.config = config
        self.folds = range(config["train"]["n_folds"])
        self.models = config["train"]["models"]
        self.backmappers = config["backmap"]["methods"]
        self.backmapped = config["backmap"]["models"]

    def model(self, system: str, mapping: str, model: str) -> set[Job]:
        rules = ["train", "simulate"]
        if "iid" in model_samples(model):
            rules.append("sample")
        jobs = {
            job(rule, system=system, mapping=mapping, model=model, fold=fold)
            for rule in rules
            for fold in self.folds
        }
        if self.backmapped is None or model in self.backmapped:
            jobs |= {  # one backmapping per fitted backmapper
                job("backmap", system=system, mapping=mapping, model=model, fold=fold, backmapper=b)
                for fold in self.folds
                for b in self.backmappers
            }
        return jobs | {job("evaluate", system=system, mapping=mapping, model=model)}

    def mapping(self, system: str, mapping: str) -> set[Job]:
        if mapping_fitted(self.config, mapping):
            jobs = {
                job(rule, system=system, mapping=mapping, fold=fold)
                for rule in ("mapping_fold", "forces_fold")
                for fold in self.folds
            }
        else:
            jobs = {job(rule, system=system, mapping=mapping) for rule in ("mapping", "forces")}
        jobs.add(job("compare_mappings", system=system, mapping=mapping))
        jobs |= {  # each backmapper fitted once per fold, whatever the models
            job("backmap_fit", system=system, mapping=mapping, fold=fold, backmapper=b)
            for fold in self.folds
            for b in self.backmappers
        }
        for model in self.models:
            jobs |= self.model(system, mapping, model)
        return jobs

    def generated_system(self, system: str, mappings: list[str]) -> set[Job]:
        jobs = {job("prepare_structure", system=system)}
        jobs |= {
            job("reference", system=system, i=i)
            for i in range(self.config["reference"]["n_trajectories"])
        }
        for mapping in mappings:
            jobs |= self.mapping(system, mapping)
        return jobs


@pytest.fixture(scope="module")
def sheet(workdir) -> dict[str, list[str]]:
    """The shared run's systems and their mappings."""
    systems = load_systems(workdir / "config/test_systems.tsv")
    return {name: system_mappings(row) for name, row in systems.iterrows()}


@pytest.fixture(scope="module")
def plan(workdir) -> Plan:
    return Plan(load_config(workdir / "config/test.yaml"))


def _config_on_top(workdir: Path, name: str, text: str) -> str:
    (workdir / name).write_text(text)
    return name


def test_a_new_system_schedules_only_its_own_jobs_and_the_report(workdir, sheet, plan):
    # A system built from its sequence with a fixed map and a map fitted per fold, added
    # as a row of a copy of the sheet: every existing system's jobs stay as they are.
    rows = (workdir / "config/test_systems.tsv").read_text().splitlines()
    columns = rows[0].split("\t")
    new = {"system": "ala3", "sequence": "AAA", "secondary_structure": "helix"}
    new |= {"solvent": "vacuum", "mappings": "calpha,kmeans", "description": "added"}
    rows.append("\t".join(new.get(column, "") for column in columns))
    (workdir / "incremental_systems.tsv").write_text("\n".join(rows) + "\n")
    configfile = _config_on_top(
        workdir, "incremental_new_system.yaml", "systems: incremental_systems.tsv\n"
    )
    expected = plan.generated_system("ala3", ["calpha", "kmeans"]) | FINAL
    assert "ala3" not in sheet
    assert planned_jobs(workdir, configfile) == expected


def test_changing_a_fitted_maps_section_reruns_only_that_maps_jobs(workdir, sheet, plan):
    # Autograin's force regulariser: its per-fold maps and everything downstream of them,
    # on every system that uses it; not k-means (whose section Autograin reads, not the
    # other way round), no fixed map, no reference.
    configfile = _config_on_top(
        workdir,
        "incremental_autograin.yaml",
        "mapping:\n  autograin:\n    force_weight: 2.0e-9\n",
    )
    users = [system for system, mappings in sheet.items() if "autograin" in mappings]
    expected = set().union(*(plan.mapping(system, "autograin") for system in users)) | FINAL
    assert len(expected) > len(FINAL)
    assert planned_jobs(workdir, configfile) == expected


def test_changing_the_kmeans_section_reruns_kmeans_and_autograin_that_reads_it(
    workdir, sheet, plan
):
    # Autograin's schema says x-reads: [kmeans]: with n_beads null (as in the test config)
    # its number of beads is the k-means elbow's, which n_init changes. Both maps rerun
    # from their per-fold fits on; the fixed maps do not.
    assert plan.config["mapping"]["autograin"]["n_beads"] is None
    configfile = _config_on_top(
        workdir, "incremental_kmeans.yaml", "mapping:\n  kmeans:\n    n_init: 3\n"
    )
    expected = set(FINAL)
    for system, mappings in sheet.items():
        for mapping in {"kmeans", "autograin"} & set(mappings):
            expected |= plan.mapping(system, mapping)
    assert {rule for rule, _ in expected} >= {"mapping_fold", "forces_fold", "train"}
    assert planned_jobs(workdir, configfile) == expected


def test_changing_one_models_section_reruns_that_model_on_every_map_and_nothing_else(
    workdir, sheet, plan
):
    configfile = _config_on_top(
        workdir, "incremental_cgschnet.yaml", "models:\n  cgschnet:\n    num_gaussians: 8\n"
    )
    expected = set(FINAL)
    for system, mappings in sheet.items():
        for mapping in mappings:
            expected |= plan.model(system, mapping, "cgschnet")
    assert planned_jobs(workdir, configfile) == expected


def test_every_job_of_the_run_left_the_metadata_its_rerun_triggers_read(workdir):
    # A job with an output that has no metadata record is never rerun for a change of its
    # params, input set or code: Snakemake skips those checks and says so only here.
    result = run_snakemake(workdir, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    said = result.stdout + result.stderr
    assert "Nothing to be done" in said
    assert "missing provenance/metadata" not in said, said[-2000:]


def test_a_rerun_records_the_new_section_and_going_back_reruns_again(
    workdir, tmp_path, sheet, plan
):
    """Snakemake's params trigger end to end, in a copy of the run (its metadata too): the
    Autograin fits rerun with a new force_weight; afterwards the new section is what they
    are compared with, and the old one reruns them again."""
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy, symlinks=True)
    configfile = _config_on_top(
        copy, "incremental_rerun.yaml", "mapping:\n  autograin:\n    force_weight: 2.0e-9\n"
    )
    users = [system for system, mappings in sheet.items() if "autograin" in mappings]
    fits = {
        job("mapping_fold", system=s, mapping="autograin", fold=k)
        for s in users
        for k in plan.folds
    }
    assert fits
    result = run_snakemake(
        copy, "--configfile", "config/test.yaml", configfile, "--until", "mapping_fold"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    after = planned_jobs(copy, configfile)
    assert not after & fits
    assert after  # what depends on the new fits still has to run
    assert fits <= planned_jobs(copy)  # the test config's own section again
