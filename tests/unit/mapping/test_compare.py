"""Mappings scored on held-out frames: reconstruction, mapped force, the random floor, and
the report's table and fit plots."""

import copy

import numpy as np
import pandas as pd
import pytest

from cgpipe import keys, paths
from cgpipe.io import Provenance, read_provenance, read_trajectory, write_table
from cgpipe.mapping import run as build
from cgpipe.mapping.compare import MAPPED_FORCE, N_BEADS, RANDOM_SUFFIX, RECONSTRUCTION, run
from cgpipe.report import run as report


@pytest.fixture(scope="module")
def scored(tmp_path_factory, ala2_reference, test_config):
    """The heavy and residue maps of alanine dipeptide scored on its two folds."""
    folder = tmp_path_factory.mktemp("compare")
    cfg = copy.deepcopy(test_config)
    tables = {}
    cfg["mapping"]["files"] = {"residues": "config/maps/ala2_residues.tsv"}
    for name in ("heavy", "residues"):
        mapping = folder / f"{name}.parquet"
        build(ala2_reference, mapping, name=name, cfg=cfg)
        output = folder / name / "scores.parquet"
        output.parent.mkdir()
        maps = [mapping] * cfg["train"]["n_folds"]
        tables[name] = run(ala2_reference, maps, output, system="ala2", name=name, cfg=cfg)
    return folder, tables


def _value(table, metric, fold=keys.ALL_FOLDS):
    rows = table[(table[keys.METRIC] == metric) & (table[keys.FOLD] == fold)]
    return rows.iloc[0]


def test_a_finer_map_keeps_more_of_the_structure(scored):
    _, tables = scored
    heavy = _value(tables["heavy"], RECONSTRUCTION)
    residues = _value(tables["residues"], RECONSTRUCTION)
    # Ten united atoms lose only hydrogen positions (~0.1 nm bonds swinging); three residue
    # beads lose whole groups.
    assert heavy[keys.VALUE] < 0.1 < residues[keys.VALUE]
    assert heavy[keys.HIGH] < residues[keys.LOW]
    for table in tables.values():
        for metric in (RECONSTRUCTION, MAPPED_FORCE):
            row = _value(table, metric)
            assert row[keys.LOW] <= row[keys.VALUE] <= row[keys.HIGH]


def test_every_fold_and_the_pool_have_each_score_and_its_random_floor(scored):
    _, tables = scored
    table = tables["residues"]
    expected = {N_BEADS, RECONSTRUCTION, MAPPED_FORCE}
    expected |= {RECONSTRUCTION + RANDOM_SUFFIX, MAPPED_FORCE + RANDOM_SUFFIX}
    for fold in ("fold0", "fold1"):
        assert set(table.loc[table[keys.FOLD] == fold, keys.METRIC]) == expected
        assert _value(table, N_BEADS, fold)[keys.VALUE] == 3
    # A residue map is a good three-bead map: random connected ones of three beads do worse.
    assert (
        _value(table, RECONSTRUCTION)[keys.VALUE]
        < _value(table, RECONSTRUCTION + RANDOM_SUFFIX)[keys.VALUE]
    )


def test_the_mapped_force_is_the_mean_square_of_the_aggregated_force(
    scored, ala2_reference, test_config
):
    folder, tables = scored
    from cgpipe.mapping import read_mapping

    mapping = read_mapping(folder / "heavy.parquet")
    held_out = read_trajectory(ala2_reference[0])  # fold 0 holds out trajectory 0
    by_hand = np.mean(np.einsum("ba,fad->fbd", mapping.force_map, held_out.forces) ** 2)
    value = _value(tables["heavy"], MAPPED_FORCE, "fold0")[keys.VALUE]
    assert value == pytest.approx(by_hand, rel=1e-5)


def test_scores_record_the_maps_and_references_they_read(scored, ala2_reference):
    folder, _ = scored
    record = read_provenance(folder / "heavy" / "scores.parquet")
    assert str(folder / "heavy.parquet") in record["inputs"]
    assert {str(p) for p in ala2_reference} <= set(record["inputs"])


def test_the_report_compares_the_mappings_and_draws_each_fit(scored, tmp_path):
    folder, tables = scored
    fits = []
    for fold in (0, 1):
        elbow = tmp_path / paths.fill(paths.MAPPING_FIT, system="ala2", mapping="kmeans", fold=fold)
        elbow.parent.mkdir(parents=True, exist_ok=True)
        k = np.arange(1, 7)
        table = pd.DataFrame({"k": k, "wcss": 10.0 / k, "chosen": k == 3})
        write_table(elbow, table, Provenance("mapping", {}))
        losses = tmp_path / paths.fill(
            paths.MAPPING_FIT, system="ala2", mapping="autograin", fold=fold
        )
        losses.parent.mkdir(parents=True, exist_ok=True)
        epochs = pd.DataFrame({"epoch": [0, 1, 2], "loss": [3.0, 2.0, 1.0]})
        write_table(losses, epochs, Provenance("mapping", {}))
        fits += [elbow, losses]
    output = tmp_path / "index.html"
    scores = [folder / name / "scores.parquet" for name in tables]
    report(output, [], [], mapping_scores=scores, fits=fits)
    page = output.read_text()
    assert "ala2: mappings compared on held-out frames" in page
    assert page.count('alt="fit"') == 2  # the elbow and the losses
    for name in tables:
        assert f"<td>{name}</td>" in page
    heavy = _value(tables["heavy"], RECONSTRUCTION)
    assert f"{heavy[keys.VALUE]:.4g} [{heavy[keys.LOW]:.4g}, {heavy[keys.HIGH]:.4g}]" in page


def test_paths_are_read_back_with_their_template():
    path = paths.fill(paths.MAPPING_FIT, system="ala2", mapping="kmeans", fold=3)
    assert paths.parse(paths.MAPPING_FIT, f"/somewhere/{path}") == {
        "system": "ala2",
        "mapping": "kmeans",
        "fold": "3",
    }
    with pytest.raises(ValueError, match="is not a path of the form"):
        paths.parse(paths.MAPPING_FIT, "results/mapping/ala2/kmeans.parquet")


def test_a_model_without_scores_says_why_in_the_mapping_table(scored):
    # Every replica of the model failed before a saved frame: no divergence to show.
    from cgpipe.report.mappings import comparison_table

    _, tables = scored
    failed = pd.DataFrame(
        {keys.FOLD: ["fold0", "fold1"], keys.METRIC: [keys.STABLE_FRACTION] * 2,
         keys.VALUE: [0.0, 0.0], keys.LOW: np.nan, keys.HIGH: np.nan}
    )  # fmt: skip
    table = comparison_table({"heavy": tables["heavy"]}, {"heavy": {"prior": failed}})
    assert table.loc[0, "prior"] == "no scores (stable fraction 0)"
    assert table.loc[0, "beads"] == "10"
