"""Table 1's paired tests against Vanilla (facebench/report/significance.py), seeds and the untrained reference."""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_helpers import TINY, WIDE, toy_config, toy_distances, write_scored_run

from facebench.errors import FacebenchError
from facebench.report.build import build_report
from facebench.report.figures import figure_points
from facebench.report.runs import discover
from facebench.report.significance import PairDecisions, compare, mcnemar_exact, paired_bootstrap, read_decisions
from facebench.report.study import study_rows


def _pairs(b: int, c: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of runs A and B with b pairs only A right, c only B right, and the concordant rest."""
    a = np.array([1] * b + [0] * c + [1] * both + [0] * neither, dtype=bool)
    other = np.array([0] * b + [1] * c + [1] * both + [0] * neither, dtype=bool)
    return a, other


def test_identical_runs_differ_by_exactly_zero() -> None:
    a = np.array([1, 0, 1, 1, 0, 1], dtype=bool)
    assert paired_bootstrap(a, a, resamples=200, seed=3) == (0.0, 0.0, 0.0)
    assert mcnemar_exact(a, a) == (0, 0, 1.0)


@pytest.mark.parametrize(("b", "c", "p"), [(3, 1, 10 / 16), (0, 6, 2 / 64), (1, 5, 2 * 7 / 64), (4, 4, 1.0)])
def test_mcnemar_is_the_two_sided_binomial_on_discordant_pairs(b: int, c: int, p: float) -> None:
    # by hand: 2 P[X <= min(b, c)], X ~ Bin(b + c, 1/2); (1, 5): 2 (1 + 6) / 64
    correct_a, correct_b = _pairs(b, c, both=7, neither=2)
    assert mcnemar_exact(correct_a, correct_b) == (b, c, pytest.approx(p, rel=1e-12))


def test_mcnemar_exact_for_many_discordant_pairs() -> None:
    """Log-space summation against exact integer arithmetic where 2**230 overflows a float's mantissa."""
    correct_a, correct_b = _pairs(100, 130, both=50, neither=20)
    exact = 2 * Fraction(sum(math.comb(230, i) for i in range(101)), 2**230)
    assert mcnemar_exact(correct_a, correct_b) == (100, 130, pytest.approx(float(exact), rel=1e-10))


def test_bootstrap_interval_covers_the_true_difference() -> None:
    rng = np.random.default_rng(1)
    correct_a, correct_b = rng.random(3000) < 0.72, rng.random(3000) < 0.64  # true difference 0.08
    diff, low, high = paired_bootstrap(correct_a, correct_b, resamples=1000, seed=0)
    assert diff == pytest.approx(correct_a.mean() - correct_b.mean())
    assert 0 < low < 0.08 < high and high - low < 0.1  # covers the truth, excludes 0
    assert paired_bootstrap(correct_a, correct_b, resamples=1000, seed=0) == (diff, low, high)  # seeded
    assert paired_bootstrap(correct_a, correct_b, resamples=1000, seed=1)[1:] != (low, high)


def test_bootstrap_resamples_pairs_jointly() -> None:
    """B = A on every pair but one: a joint resample keeps every draw in [0, 1/n]; independent ones would not."""
    correct_a = np.array([True] * 30 + [False] * 30)
    correct_b = correct_a.copy()
    correct_b[0] = False
    diff, low, high = paired_bootstrap(correct_a, correct_b, resamples=500, seed=0)
    assert diff == pytest.approx(1 / 60) and low == 0.0 and 0 < high <= 4 / 60


def test_decisions_reproduce_the_k_fold_accuracy(tmp_path: Path) -> None:
    run = write_scored_run(tmp_path / "run", toy_distances(1.0, seed=0))
    verify = json.loads((run / "verify.json").read_text())
    decisions = read_decisions(run, verify, "toy")
    assert decisions.correct.mean() == pytest.approx(verify["rows"][0]["accuracy"], abs=1e-12)
    verify["meta"]["results"]["toy"]["fold_threshold_sq_l2"][0] += 0.5  # not the thresholds behind the accuracy
    with pytest.raises(FacebenchError, match="records"):
        read_decisions(run, verify, "toy")
    (run / "scores.csv").unlink()
    with pytest.raises(FacebenchError, match="no scores.csv"):
        read_decisions(run, verify, "toy")


def _study(root: Path, kd_seeds: tuple[int, ...] = (0,)) -> Path:
    """A teacher, a Vanilla student (weak) and an SL KD student (stronger) per seed in ``kd_seeds``."""
    teacher = write_scored_run(root / "teacher", toy_distances(1.5, 9), config=toy_config(root / "teacher", WIDE))
    write_scored_run(root / "none", toy_distances(0.3, 1),
                     config=toy_config(root / "none", TINY, method="none", teacher=teacher))
    for seed in kd_seeds:
        folder = root / f"kd-{seed}"
        write_scored_run(folder, toy_distances(2.0, 10 + seed),
                         config=toy_config(folder, TINY, method="kd", teacher=teacher, seed=seed))
    return root


def _accuracy(run: Path) -> float:
    return 100 * json.loads((run / "verify.json").read_text())["rows"][0]["accuracy"]


def _table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "table1.csv")


def _student_cell(out: Path, column: str) -> str:
    lines = (out / "table1.md").read_text().splitlines()
    header, row = (next(x for x in lines if x.startswith(start)) for start in ("| model", f"| {TINY} "))
    cells = ([c.strip() for c in line.strip("|").split("|")] for line in (header, row))
    return dict(zip(*cells))[column]


def test_table1_cell_shows_the_difference_its_interval_and_p(tmp_path: Path) -> None:
    runs = _study(tmp_path / "runs")
    build_report(runs, tmp_path / "out")
    text = _student_cell(tmp_path / "out", "toy SL KD - Vanilla")
    diff = _accuracy(runs / "kd-0") - _accuracy(runs / "none")
    match = re.fullmatch(r"([+-]\d+\.\d\d) \[([+-]\d+\.\d\d), ([+-]\d+\.\d\d)\], p=(\S+) \*", text)
    assert match, text  # a clear gain on 400 pairs: significant by both tests
    assert float(match[1]) == pytest.approx(diff, abs=0.006)  # the difference of the table's accuracies
    assert float(match[2]) < diff < float(match[3]) and float(match[2]) > 0 and float(match[4]) < 0.05
    csv = _table(tmp_path / "out")
    assert csv.loc[1, "toy_kd_vs_vanilla_diff_pp"] == pytest.approx(diff, abs=1e-9)
    b, c = csv.loc[1, "toy_kd_vs_vanilla_mcnemar_b"], csv.loc[1, "toy_kd_vs_vanilla_mcnemar_c"]
    assert (b - c) / 4 == pytest.approx(diff, abs=1e-9)  # 400 pairs: each discordant pair is 0.25 pp
    caption = (tmp_path / "out" / "table1.md").read_text()
    assert "paired bootstrap" in caption and "McNemar's exact test" in caption and "numpy seed 0" in caption
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert f"- SL KD: {TINY} SL KD from {WIDE} beat Vanilla beyond chance on toy" in summary
    assert "- ADV KD: no paired test" in summary


def test_different_pairs_get_no_test_and_a_note(tmp_path: Path) -> None:
    runs = _study(tmp_path / "runs")
    scores = pd.read_csv(runs / "none" / "scores.csv")
    scores["pair"] += 1000
    scores.to_csv(runs / "none" / "scores.csv", index=False)
    report = build_report(runs, tmp_path / "out")
    assert _student_cell(tmp_path / "out", "toy SL KD - Vanilla") == "n/a"
    assert any("hold different pairs" in n and str(runs / "none" / "scores.csv") in n for n in report.notes)


def test_seeds_of_one_cell_are_grouped(tmp_path: Path) -> None:
    runs = _study(tmp_path / "runs", kd_seeds=(2, 1))
    build_report(runs, tmp_path / "out")
    seeds = np.array([_accuracy(runs / "kd-1"), _accuracy(runs / "kd-2")])
    assert _student_cell(tmp_path / "out", "toy SL KD") == (
        f"{seeds.mean():.2f} ± {abs(seeds[0] - seeds[1]) / math.sqrt(2):.2f} (2 seeds)")  # ddof=1 std of two
    assert _student_cell(tmp_path / "out", "toy SL KD - Vanilla").startswith(
        f"{seeds.mean() - _accuracy(runs / 'none'):+.2f} over seeds; 1 seed pair ")  # kd-1 against the one Vanilla
    csv = _table(tmp_path / "out")
    assert csv.loc[1, "run_kd"] == f"{runs / 'kd-1'};{runs / 'kd-2'}"  # lowest seed first
    assert csv.loc[1, "toy_kd_vs_vanilla_diff_pp"] == pytest.approx(_accuracy(runs / "kd-1") - _accuracy(runs / "none"))


def test_figure1_plots_a_seeded_cell_as_table1_does(tmp_path: Path) -> None:
    runs = _study(tmp_path / "runs", kd_seeds=(2, 1))
    points, _, _ = figure_points(study_rows(discover(runs).runs), {TINY: 0.1, WIDE: 1.0}, "toy")
    by_label = {p.label: p for p in points}
    seeds = np.array([_accuracy(runs / "kd-1"), _accuracy(runs / "kd-2")])
    kd = by_label[f"{TINY} SL KD from {WIDE}"]
    assert (kd.acc_pct, kd.std_pct) == pytest.approx((seeds.mean(), abs(seeds[0] - seeds[1]) / math.sqrt(2)))
    vanilla = json.loads((runs / "none" / "verify.json").read_text())["rows"][0]  # one seed: its k-fold std
    assert (by_label[f"{TINY} Vanilla"].acc_pct, by_label[f"{TINY} Vanilla"].std_pct) == pytest.approx(
        (100 * vanilla["accuracy"], 100 * vanilla["accuracy_std"]))


@pytest.mark.parametrize(("seed", "lr", "why"), [(5, 0.2, "they differ in lr"), (0, 0.1, "both have seed 0")])
def test_a_real_conflict_is_still_refused(tmp_path: Path, seed: int, lr: float, why: str) -> None:
    """Where a run ran (device, threads) may differ between seeds; any other setting, or the seed itself, may not."""
    runs = _study(tmp_path / "runs")
    folder = runs / "kd-other"
    config = toy_config(folder, TINY, method="kd", teacher=runs / "teacher", seed=seed, lr=lr, device="cuda",
                        threads=4)
    write_scored_run(folder, toy_distances(1.0, 3), config=config)
    with pytest.raises(FacebenchError, match=f"two runs for {TINY}.*SL KD.*{why}"):
        study_rows(discover(runs).runs)
    config["config"] |= {"seed": 5, "lr": 0.1}  # only the seed and where it ran differ: a second seed
    (folder / "config.json").write_text(json.dumps(config))
    assert [len(r.seeds.get("kd", [])) for r in study_rows(discover(runs).runs)] == [0, 2]


def test_untrained_reference_row_and_flag(tmp_path: Path) -> None:
    runs = _study(tmp_path / "runs")
    meta = {"model_name": TINY, "model_source": "untrained", "external": False, "pretrained": False,
            "untrained": True}
    write_scored_run(runs / "untrained", toy_distances(0.9, 4), meta=meta)  # above Vanilla (0.3), below KD (2.0)
    build_report(runs, tmp_path / "out")
    csv = _table(tmp_path / "out")
    assert list(csv["model"]) == [f"{WIDE} (teacher)", TINY, f"{TINY} (untrained)"]
    assert csv.loc[2, "run_vanilla"] == str(runs / "untrained") and csv.loc[1, "run_vanilla"] == str(runs / "none")
    floor, vanilla = _accuracy(runs / "untrained"), _accuracy(runs / "none")
    assert vanilla < floor < _accuracy(runs / "kd-0")
    flags = [x for x in (tmp_path / "out" / "summary.md").read_text().splitlines() if "is below" in x]
    assert flags == [f"- {TINY} Vanilla ({vanilla:.2f} %) is below {TINY} (untrained) ({floor:.2f} %) on toy: "
                     "this training left it worse than random weights"]


def _decisions(correct: list[bool]) -> PairDecisions:
    n = len(correct)
    return PairDecisions(Path("scores.csv"), np.arange(n), np.arange(n) % 2 == 0, np.array(correct))


def test_seeds_pair_up_pooled_bootstrap_and_mcnemar_per_seed() -> None:
    """Seed k against seed k: the difference of the seed means, a bootstrap of the seed-averaged per-pair
    correctness, McNemar per seed pair; '*' needs every seed pair beyond chance on the same side."""
    vanilla = [_decisions([True] * 20 + [False] * 20)] * 2
    kd = [_decisions([True] * 30 + [False] * 10), _decisions([True] * 24 + [False] * 16)]
    test = compare(kd, vanilla)
    assert test.diff_pp == pytest.approx(100 * (10 + 4) / 2 / 40)
    assert [(s.diff_pp, s.b, s.c) for s in test.seeds] == [(25.0, 10, 0), (pytest.approx(10.0), 4, 0)]
    assert [s.p for s in test.seeds] == [pytest.approx(2 * 0.5**10), pytest.approx(2 * 0.5**4)]
    assert test.p == pytest.approx(0.125) and test.seed_std_pp == pytest.approx(15 / math.sqrt(2))
    per_pair = np.array([0.0] * 20 + [1.0] * 4 + [0.5] * 6 + [0.0] * 10)  # seed-averaged difference, by hand
    expected = paired_bootstrap(per_pair, np.zeros(40))
    assert (test.diff_pp, test.low_pp, test.high_pp) == pytest.approx(tuple(100 * x for x in expected))
    assert test.low_pp > 0 and not test.significant  # the interval excludes 0, but seed 1's McNemar does not
    strong = compare([kd[0], kd[0]], vanilla)
    assert strong.significant and strong.seed_std_pp == 0.0
    with pytest.raises(ValueError, match="equal non-zero counts"):
        compare(kd, vanilla[:1])


def test_table1_pairs_seed_k_with_vanilla_seed_k(tmp_path: Path) -> None:
    runs = _study(tmp_path / "runs", kd_seeds=(0, 1))
    teacher = runs / "teacher"
    write_scored_run(runs / "none-1", toy_distances(0.3, 2),
                     config=toy_config(runs / "none-1", TINY, method="none", teacher=teacher, seed=1))
    for seed, tar in ((0, 0.5), (1, 0.7)):  # toy sets are too small for TAR at FAR 1e-3: plant one per seed
        verify = json.loads((runs / f"kd-{seed}" / "verify.json").read_text())
        verify["rows"][0]["tar_at_far_1e-03"] = tar
        (runs / f"kd-{seed}" / "verify.json").write_text(json.dumps(verify))
    build_report(runs, tmp_path / "out")
    assert _student_cell(tmp_path / "out", "toy TAR@FAR=1e-3 SL KD") == f"60.00 ± {math.sqrt(200):.2f}"
    assert _student_cell(tmp_path / "out", "toy TAR@FAR=1e-3 Vanilla") == "-"
    text = _student_cell(tmp_path / "out", "toy SL KD - Vanilla")
    kd = np.array([_accuracy(runs / "kd-0"), _accuracy(runs / "kd-1")])
    none = np.array([_accuracy(runs / "none"), _accuracy(runs / "none-1")])
    match = re.fullmatch(r"([+-]\d+\.\d\d) ± (\d+\.\d\d) \(2 seed pairs\) \[(\S+), (\S+)\], p≤(\S+) \*", text)
    assert match, text
    assert float(match[1]) == pytest.approx((kd - none).mean(), abs=0.006)
    assert float(match[2]) == pytest.approx((kd - none).std(ddof=1), abs=0.006)
    csv = _table(tmp_path / "out")
    assert (csv.loc[1, "toy_kd_vs_vanilla_n_seed_pairs"], csv.loc[1, "toy_kd_n_seeds"]) == (2, 2)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert f"beat Vanilla beyond chance on toy ({(kd - none).mean():+.2f} pp" in summary and "2 seed pairs" in summary
