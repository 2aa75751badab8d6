"""Every stage's seed comes from :func:`cgpipe.seeds.stage_seed` with the job's identity:
jobs that differ in system, mapping, model or fold draw different streams, whatever the
shape of their paths."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from cgpipe import cli, paths
from cgpipe.errors import InputError
from cgpipe.seeds import SEED_FIELDS, derive_seed, stage_seed

MASTER = 2024


def _cg(system: str, mapping: str, fold: int | None = None) -> Path:
    if fold is None:
        return Path(paths.fill(paths.CG, system=system, mapping=mapping))
    return Path(paths.fill(paths.CG_FOLD, system=system, mapping=mapping, fold=fold))


@pytest.fixture
def seeds_given(monkeypatch, tmp_path):
    """The seed each command hands its stage, the stages themselves replaced."""
    import cgpipe.mapping
    import cgpipe.simulate
    import cgpipe.train

    given: list[int] = []
    for module in (cgpipe.mapping, cgpipe.train, cgpipe.simulate):
        monkeypatch.setattr(module, "run", lambda *args, seed, **kwargs: given.append(seed))
    monkeypatch.chdir(tmp_path)
    return given


def _train(cg: Path, model: str, fold: int, given: list[int]) -> int:
    config = f'{{"seed": {MASTER}}}'
    cli.train(cg, Path("m.parquet"), model, fold, Path("out"), config=config, threads=1)
    return given[-1]


def _simulate(cg: Path, model: str, fold: int, given: list[int]) -> int:
    job = paths.identify(cg, paths.CG_FOLD, paths.CG)
    model_file = paths.fill(paths.MODEL, system=job["system"], mapping=job["mapping"],
                            model=model, fold=fold)  # fmt: skip
    config = f'{{"seed": {MASTER}}}'
    cli.simulate(Path(model_file), cg, Path("m.parquet"), fold, Path("out"), config=config)
    return given[-1]


def _mapping(system: str, mapping: str, fold: int | None, given: list[int]) -> int:
    template = paths.MAPPING if fold is None else paths.MAPPING_FOLD
    output = Path(paths.fill(template, system=system, mapping=mapping, fold=fold))
    cli.mapping([Path("traj_0.h5")], mapping, output, config=f'{{"seed": {MASTER}}}', fold=fold)
    return given[-1]


@pytest.mark.parametrize("command", [_train, _simulate])
def test_two_systems_sharing_a_fitted_map_train_and_simulate_with_different_seeds(
    command, seeds_given
):
    for fold in (0, 1):
        one = command(_cg("ala2", "kmeans", fold), "cgschnet", fold, seeds_given)
        other = command(_cg("chignolin", "kmeans", fold), "cgschnet", fold, seeds_given)
        assert one != other


def test_two_systems_sharing_a_fitted_map_fit_it_with_different_seeds(seeds_given):
    assert _mapping("ala2", "kmeans", 0, seeds_given) != _mapping(
        "chignolin", "kmeans", 0, seeds_given
    )
    assert _mapping("ala2", "kmeans", 0, seeds_given) != _mapping("ala2", "kmeans", 1, seeds_given)


@pytest.mark.parametrize("command,stage", [(_train, "train"), (_simulate, "simulate")])
def test_a_job_has_one_seed_whatever_the_shape_of_its_path(command, stage, seeds_given):
    expected = stage_seed(MASTER, stage, "ala2", mapping="m", model="prior", fold=1)
    assert command(_cg("ala2", "m"), "prior", 1, seeds_given) == expected
    assert command(_cg("ala2", "m", 1), "prior", 1, seeds_given) == expected
    # A path under another folder reads the same.
    assert command(Path("/runs/x") / _cg("ala2", "m", 1), "prior", 1, seeds_given) == expected


def test_each_field_of_the_identity_changes_the_seed(seeds_given):
    seen = {
        _train(_cg(system, mapping, fold), model, fold, seeds_given)
        for system, mapping, model, fold in itertools.product(
            ("ala2", "chignolin"), ("kmeans", "autograin"), ("prior", "cgschnet"), (0, 1)
        )
    }
    assert len(seen) == 16


def test_every_stage_has_its_own_seed():
    identity = {"mapping": "kmeans", "model": "prior", "fold": 0, "index": 0}
    seeds = {
        stage: stage_seed(
            MASTER,
            stage,
            "ala2",
            **{field.rstrip("?"): identity[field.rstrip("?")] for field in fields},
        )
        for stage, fields in SEED_FIELDS.items()
    }
    assert len(set(seeds.values())) == len(seeds)
    # A fixed map (no fold) and a fitted map's fold 0 do not share a stream either.
    assert stage_seed(MASTER, "mapping", "ala2", mapping="kmeans") != seeds["mapping"]


def test_the_seeds_that_did_not_depend_on_the_path_are_unchanged():
    # The labels these stages have always used: their artifacts stay as they were.
    assert stage_seed(MASTER, "reference", "ala2", index=3) == derive_seed(
        MASTER, "reference", "ala2", 3
    )
    assert stage_seed(MASTER, "reference-start", "ala2", index=3) == derive_seed(
        MASTER, "reference-start", "ala2", 3
    )
    assert stage_seed(MASTER, "prepare", "ala2") == derive_seed(MASTER, "prepare", "ala2")
    assert stage_seed(MASTER, "evaluate", "ala2", mapping="heavy", model="prior") == (
        derive_seed(MASTER, "evaluate", "ala2", "heavy", "prior")
    )
    # Training and simulation on a fixed map: results/cg/{system}/{mapping}.h5 read right.
    assert stage_seed(MASTER, "train", "ala2", mapping="heavy", model="prior", fold=1) == (
        derive_seed(MASTER, "train", "ala2", "heavy", "prior", 1)
    )


def test_a_stage_takes_exactly_its_fields():
    with pytest.raises(ValueError, match="takes no model"):
        stage_seed(MASTER, "mapping", "ala2", mapping="kmeans", model="prior")
    with pytest.raises(ValueError, match="needs its fold"):
        stage_seed(MASTER, "train", "ala2", mapping="kmeans", model="prior")
    with pytest.raises(ValueError, match="no seed for stage"):
        stage_seed(MASTER, "backmap", "ala2")


def test_a_job_whose_paths_disagree_is_refused(seeds_given):
    with pytest.raises(InputError, match="the CG reference of fold 1, given for fold 0"):
        _train(_cg("ala2", "kmeans", 1), "prior", 0, seeds_given)
    with pytest.raises(InputError, match="cannot tell the job's system and mapping"):
        _train(Path("cg.h5"), "prior", 0, seeds_given)
    model_file = Path(
        paths.fill(paths.MODEL, system="ala2", mapping="heavy", model="prior", fold=0)
    )
    with pytest.raises(InputError, match="a model of ala2/heavy fold 0, given with the CG"):
        cli.simulate(model_file, _cg("chignolin", "heavy"), Path("m.parquet"), 0, Path("out"))
    with pytest.raises(InputError, match="not the artifact of mapping 'kmeans' on fold 1"):
        output = Path(paths.fill(paths.MAPPING_FOLD, system="ala2", mapping="kmeans", fold=0))
        cli.mapping([Path("traj_0.h5")], "kmeans", output, fold=1)
    assert seeds_given == []
