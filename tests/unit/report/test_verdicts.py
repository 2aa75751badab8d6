"""The report's conclusions: a score that cannot tell a bad model from the floor says so."""

import math

import pandas as pd

from cgpipe import keys
from cgpipe.report import verdicts

NAN = math.nan
JS = keys.JS_PHI_PSI


def _table(score, echo, floor_high=0.02, low=None, high=None):
    rows = []
    for k, value in enumerate(score):
        fold = f"fold{k}"
        rows += [
            (fold, JS, value, NAN if low is None else low[k], NAN if high is None else high[k]),
            (fold, JS + keys.FLOOR_SUFFIX, 0.01, 0.005, floor_high),
            (fold, JS + keys.ECHO_SUFFIX, echo[k], NAN, NAN),
        ]
    rows.append((keys.ALL_FOLDS, keys.CONVERGED, 1.0, NAN, NAN))
    return pd.DataFrame(rows, columns=[keys.FOLD, keys.METRIC, keys.VALUE, keys.LOW, keys.HIGH])


def test_a_score_that_separates_both_controls_from_the_floor_discriminates():
    model = _table([0.015, 0.018], echo=[0.3, 0.4])
    control = _table([0.2, 0.25], echo=[0.3, 0.4])
    assert verdicts.scores(model) == [JS]
    assert verdicts.discrimination(model, control) == {JS: "discriminating"}
    assert verdicts.within_floor(model, JS) == (2, 2)


def test_a_negative_control_within_the_floor_makes_the_score_non_discriminating():
    model = _table([0.015, 0.018], echo=[0.3, 0.4])
    control = _table([0.019, 0.25], echo=[0.3, 0.4])
    verdict = verdicts.discrimination(model, control)[JS]
    assert verdict.startswith("non-discriminating") and "negative control" in verdict
    assert "1 of 2" in verdict


def test_an_echo_within_the_floor_makes_the_score_non_discriminating():
    model = _table([0.015, 0.018], echo=[0.01, 0.4])
    assert "echo within floor in 1 of 2" in verdicts.discrimination(model, None)[JS]
    # Without a negative control and with a clear echo the question stays open.
    clear = _table([0.015, 0.018], echo=[0.3, 0.4])
    assert verdicts.discrimination(clear, None)[JS].startswith("unknown")


def test_below_baseline_needs_intervals_that_do_not_overlap():
    model = _table([0.02, 0.03], [1, 1], low=[0.015, 0.02], high=[0.025, 0.05])
    baseline = _table([0.04, 0.04], [1, 1], low=[0.03, 0.035], high=[0.05, 0.05])
    assert verdicts.below_baseline(model, baseline, JS) == (1, 2)


def test_convergence_counts_folds():
    table = pd.DataFrame(
        [("fold0", keys.CONVERGED, 1.0, NAN, NAN), ("fold1", keys.CONVERGED, 0.0, NAN, NAN)],
        columns=[keys.FOLD, keys.METRIC, keys.VALUE, keys.LOW, keys.HIGH],
    )
    assert verdicts.converged(table) == (1, 2)
