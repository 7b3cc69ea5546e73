"""The seed grid's reading and verdicts (medgan_core.grid), on hand-made seed folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats as sps

from medgan_core import grid

EXP = "01_bagan_blood_cells"


def _seed_run(root, seed, heads, status="ok", done=True, floor=None, verdict="v", start="2026-01-01T10:00:00+00:00",
              end="2026-01-01T10:10:00+00:00"):
    folder = grid.seed_folder(root, seed, EXP, "cpu")
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"status": status, "wall_seconds": 600.0, "git_commit": "abc",
                                                 "tree": {"clean": True}, "error": None, "start": start, "end": end}))
    (folder / "metrics.json").write_text(json.dumps({"headline": heads, "verdict": verdict,
                                                     "quality_floor": floor or {}}))
    if done:
        (folder / grid.DONE_NAME).write_text("")
    return folder


def _effect(value, low, high, withheld=None, name="gan_minus_best_nongan_bacc"):
    return {"name": name, "value": value, "ci": [low, high], "label": "GAN minus best", "higher_is_better": True,
            "null": 0.0, "withheld": withheld}


def test_seed_folder_layout(tmp_path):
    assert grid.seed_folder(tmp_path, 3, EXP, "gpu") == tmp_path / "seed3" / EXP / "gpu"


def test_only_finished_runs_are_read(tmp_path):
    _seed_run(tmp_path, 0, [_effect(0.1, 0.05, 0.15)])
    _seed_run(tmp_path, 1, [_effect(0.2, 0.1, 0.3)], done=False)          # died after writing metrics
    _seed_run(tmp_path, 2, [_effect(0.3, 0.2, 0.4)], status="failed", done=True)
    runs = grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1, 2, 3])
    assert list(runs.finished) == [True, False, False, False]
    assert list(runs.status) == ["ok", "ok", "failed", "missing"]
    heads = grid.headline_table(runs)
    assert list(heads.seed) == [0]


@pytest.mark.parametrize("experiments, seeds", [([], [0]), ([EXP], []), ([EXP], [1, 1])])
def test_bad_grid_arguments_are_refused(tmp_path, experiments, seeds):
    with pytest.raises(ValueError):
        grid.load_seed_runs(tmp_path, experiments, "cpu", seeds)


def test_across_seed_interval_is_the_t_interval_over_seeds(tmp_path):
    values = [0.10, 0.20, 0.45]
    for s, v in enumerate(values):
        _seed_run(tmp_path, s, [_effect(v, v - 0.05, v + 0.05)])
    summary = grid.across_seeds(grid.headline_table(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1, 2])))
    row = summary.iloc[0]
    half = sps.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3)
    assert row["mean"] == pytest.approx(np.mean(values))
    assert (row["low"], row["high"]) == pytest.approx((np.mean(values) - half, np.mean(values) + half))
    assert row["low"] <= row["mean"] <= row["high"]
    assert row["seed_calls"] == ["helped", "helped", "helped"]


def test_verdict_says_helped_only_when_the_across_seed_interval_excludes_no_effect(tmp_path):
    for s, v in enumerate([0.10, 0.12, 0.11]):
        _seed_run(tmp_path, s, [_effect(v, v - 0.05, v + 0.05)])
    row = grid.across_seeds(grid.headline_table(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1, 2]))).iloc[0]
    assert "**helped**" in row["verdict"] and "every single seed said the same" in row["verdict"]


def test_one_lucky_seed_gives_no_verdict_across_seeds(tmp_path):
    # seed 0 alone would claim an effect; across seeds the interval covers 0
    for s, (v, lo, hi) in enumerate([(0.20, 0.10, 0.30), (-0.05, -0.10, 0.01), (0.01, -0.04, 0.06)]):
        _seed_run(tmp_path, s, [_effect(v, lo, hi)])
    row = grid.across_seeds(grid.headline_table(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1, 2]))).iloc[0]
    assert row["low"] < 0 < row["high"]
    assert "**no measurable effect**" in row["verdict"]
    assert "2 of 3 single seeds said the same; a one-seed verdict depends on the seed" in row["verdict"]
    assert row["seed_calls"] == ["helped", "no measurable effect", "no measurable effect"]


def test_a_seed_that_withheld_its_verdict_withholds_the_grid_verdict(tmp_path):
    for s, v in enumerate([0.10, 0.12, 0.11]):
        _seed_run(tmp_path, s, [_effect(v, v - 0.05, v + 0.05, withheld="baseline at the ceiling" if s == 1 else None)])
    row = grid.across_seeds(grid.headline_table(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1, 2]))).iloc[0]
    assert row["verdict"].startswith("GAN minus best: withheld, because 1 of 3 seeds")
    assert "baseline at the ceiling" in row["verdict"]
    assert row["seed_calls"][1] == "withheld"


def test_two_seeds_give_no_interval_and_no_verdict(tmp_path):
    for s, v in enumerate([0.10, 0.12]):
        _seed_run(tmp_path, s, [_effect(v, v - 0.05, v + 0.05)])
    row = grid.across_seeds(grid.headline_table(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1]))).iloc[0]
    assert np.isnan(row["low"]) and "needs at least 3" in row["interval"]
    assert "no verdict across seeds" in row["verdict"]


def test_plain_numbers_get_an_interval_but_no_verdict_and_no_zero_width_ci(tmp_path):
    for s in range(3):
        _seed_run(tmp_path, s, [{"name": "generators_above_floor", "value": 2, "ci": None, "label": "above floor",
                                 "higher_is_better": True}])
    row = grid.across_seeds(grid.headline_table(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1, 2]))).iloc[0]
    assert row["verdict"] == "" and row["null"] is None
    assert row["interval"] == "2.000 (n/a: all 3 seeds gave 2.000)"


def test_lower_is_better_effect_is_called_hurt_when_it_rises(tmp_path):
    for s, v in enumerate([0.50, 0.55, 0.52]):
        _seed_run(tmp_path, s, [{**_effect(v, v - 0.1, v + 0.1), "higher_is_better": False}])
    row = grid.across_seeds(grid.headline_table(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1, 2]))).iloc[0]
    assert "**hurt**" in row["verdict"]


def test_floor_across_seeds_counts_passes(tmp_path):
    for s, ok in enumerate([True, False, True]):
        _seed_run(tmp_path, s, [], floor={"DCGAN": {"passed": ok, "reason": f"recall {s}"}})
    floors = grid.floor_across_seeds(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1, 2]))
    row = floors.iloc[0]
    assert (row.n_seeds, row.n_passed, bool(row.passed_every_seed)) == (3, 2, False)
    assert row.reasons == "seed 0: recall 0; seed 1: recall 1; seed 2: recall 2"


def test_grid_wall_seconds_spans_first_start_to_last_end(tmp_path):
    _seed_run(tmp_path, 0, [], start="2026-01-01T10:00:00+00:00", end="2026-01-01T10:10:00+00:00")
    _seed_run(tmp_path, 1, [], start="2026-01-01T10:05:00+00:00", end="2026-01-01T10:20:00+00:00")
    assert grid.grid_wall_seconds(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1])) == 1200.0


def test_seed_spread_figure_draws_one_panel_per_headline(tmp_path):
    from medgan_core import plots

    for s, v in enumerate([0.10, 0.12, 0.11]):
        _seed_run(tmp_path, s, [_effect(v, v - 0.05, v + 0.05),
                                {"name": "n", "value": 2, "ci": None, "label": "count", "higher_is_better": True}])
    heads = grid.headline_table(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1, 2]))
    fig = plots.seed_spread(heads, grid.across_seeds(heads))
    assert len([ax for ax in fig.axes if ax.has_data()]) == 2
    with pytest.raises(ValueError, match="seed_spread"):
        plots.seed_spread(heads, grid.across_seeds(heads).iloc[:0])


def test_snakemake_command_writes_the_config_and_runs_from_the_root(tmp_path):
    import yaml

    from conftest import REPO

    command, config = grid.snakemake_command(REPO, [EXP], "smoke", [0, 1, 2], grid_dir=str(tmp_path / "g"), cores=2,
                                             dry_run=True)
    written = yaml.safe_load(config.read_text())
    assert written["experiments"] == [EXP] and written["profiles"] == ["smoke"] and written["seeds"] == [0, 1, 2]
    assert written["resources"]["cpu"]["cores"] == 2  # the workflow's resources are kept
    assert command[1:3] == ["-m", "snakemake"] and "--dry-run" in command
    assert command[command.index("--directory") + 1] == str(REPO)
    with pytest.raises(ValueError, match="--cores"):
        grid.snakemake_command(REPO, [EXP], "smoke", [0], grid_dir=str(tmp_path / "g"), cores=-1)


def test_a_label_that_changes_between_seeds_is_shown_with_its_seeds(tmp_path):
    # each seed picks its own best generator: the aggregate must not pass one seed's label off for all
    for s, best in enumerate(["DCGAN", "BAGAN-GP", "DCGAN"]):
        _seed_run(tmp_path, s, [{"name": "best_fid_ratio", "value": 2.0 + s, "ci": None, "label": f"{best}: FID ratio",
                                 "higher_is_better": False}])
    row = grid.across_seeds(grid.headline_table(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1, 2]))).iloc[0]
    assert row["label"] == "DCGAN: FID ratio (seeds 0, 2) | BAGAN-GP: FID ratio (seed 1)"


def test_a_number_only_some_seeds_gave_says_how_many_did_not(tmp_path):
    _seed_run(tmp_path, 0, [_effect(0.1, 0.0, 0.2), {"name": "n", "value": 1, "ci": None, "label": "count"}])
    for s in (1, 2):
        _seed_run(tmp_path, s, [{"name": "n", "value": 1, "ci": None, "label": "count"}])
    summary = grid.across_seeds(grid.headline_table(grid.load_seed_runs(tmp_path, [EXP], "cpu", [0, 1, 2])))
    row = summary.set_index("name").loc["gan_minus_best_nongan_bacc"]
    assert (row["n_seeds"], row["n_runs"]) == (1, 3)
    assert row["verdict"] == ("GAN minus best: no verdict across seeds, 0.100 (n/a: 1 seed; an interval needs at least 3)"
                              "; 2 of the 3 seeds gave no number.")
