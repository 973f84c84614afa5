"""The litmus comparison's edge cases and the figures' drawn data beyond tests/test_mutants_report.py.

Written against the surviving mutants of ``make mutate`` in rw_mtl/report/litmus.py and figures.py
(docs/testing.md, "Report: figures and litmus"): the comparison of no, one and equal seeds, the verdict at
an interval touching 0, the seeds-needed note at its thresholds, the two-sided power at its 80 % boundary;
Fig. 1, Fig. 2 and the litmus plot with several panels, a history without epoch numbers, a random row of
zero spread and a block without its random row, read back from the matplotlib artists (savefig stubbed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rw_mtl.report.litmus import BEATS, MAX_SEEDS, SAME, WORSE, compare, render_summary, seeds_needed, verdict
from rw_mtl.results import write_json_atomic

# ------------------------------------------------------------------------------------------- litmus


def test_compare_without_a_common_seed_says_so_everywhere():
    comparison = compare("UW", "RLW", {0: 1.0, 1: 3.0}, {2: 0.5})
    assert (comparison.seeds, comparison.differences, comparison.mean, comparison.std) == ([], [], None, None)
    assert (comparison.interval, comparison.verdict, comparison.seeds_needed) == (None, SAME, None)
    assert comparison.seeds_note == "no seed in common"
    assert comparison.cell() == "no common seed"
    data = comparison.to_json()
    assert data["method_delta_p"] == {
        "per_seed": {"0": 1.0, "1": 3.0},
        "mean": 2.0,
        "std": pytest.approx(2**0.5),
    }
    assert data["reference_delta_p"] == {"per_seed": {"2": 0.5}, "mean": 0.5, "std": None}
    summary = render_summary([("toy — HPS", comparison)]).splitlines()
    assert summary[2] == (
        "| toy — HPS | UW | +2.00% ± 1.41 | RLW | +0.50% | — | 0 | **indistinguishable** | "
        "no seed in common |"
    )


def test_compare_of_one_paired_seed_has_no_interval_and_no_spread():
    comparison = compare("UW", "RLW", {0: 1.5, 1: 3.0}, {0: 0.25})
    assert (comparison.seeds, comparison.differences, comparison.mean, comparison.std) == (
        [0],
        [1.25],
        1.25,
        None,
    )
    assert (comparison.interval, comparison.verdict, comparison.seeds_needed) == (None, SAME, None)
    assert comparison.seeds_note == "one paired seed: the spread is unknown"
    assert comparison.cell() == "+1.25 (1 seed: no CI)"
    summary = render_summary([("toy — HPS", comparison)]).splitlines()
    assert summary[2] == (
        "| toy — HPS | UW | +2.25% ± 1.06 | RLW | +0.25% | +1.25 (no CI) | 1 | **indistinguishable** | "
        "one paired seed: the spread is unknown |"
    )


def test_empty_delta_p_has_no_mean_and_no_std():
    """A method with no seed at all (its Δp dict empty): the JSON says null, it does not raise."""
    data = compare("UW", "RLW", {}, {0: 1.0}).to_json()
    assert data["method_delta_p"] == {"per_seed": {}, "mean": None, "std": None}


def test_a_worse_method_is_named_worse_in_the_cell_and_the_summary():
    comparison = compare("UW", "RLW", {0: -3.0, 1: -3.5, 2: -2.5}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert comparison.verdict == WORSE
    assert comparison.cell() == "-3.00 [-4.24, -1.76] worse"
    assert comparison.cell(decimals=1) == "-3.0 [-4.2, -1.8] worse"
    summary = render_summary([("toy — HPS", comparison)]).splitlines()
    assert summary[2] == (
        "| toy — HPS | UW | -3.00% ± 0.50 | RLW | +0.00% ± 0.00 | -3.00 [-4.24, -1.76] | 3 | **worse** | 3 |"
    )


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ((0.5, 2.0), BEATS),
        ((0.0, 2.0), SAME),  # touching 0 is containing it: not "entirely above 0"
        ((-2.0, 0.0), SAME),
        ((-2.0, 0.5), SAME),  # 0.5 > 0: contains 0 (a threshold of 1 would say worse)
        ((-2.0, -0.5), WORSE),
        (None, SAME),
    ],
)
def test_verdict_is_beats_or_worse_only_for_an_interval_strictly_off_zero(interval, expected):
    assert verdict(interval) == expected


# the effect size mean/sd at which the two-sided paired t-test's power at n = 10 is exactly 0.8
# (P(T > t_{0.975,9}) + P(T < −t_{0.975,9}), T ~ nct(9, √10 · e); its lower tail is 6.9e-7 there)
EFFECT_AT_80_PERCENT_WITH_10_SEEDS = 0.9960013714554437


def test_seeds_needed_counts_both_tails_of_the_noncentral_t_with_n_minus_1_dof():
    """Just above the boundary effect 10 seeds suffice, just below 11 are needed: dropping the lower tail
    (6.9e-7 of power) or using n + 1 degrees of freedom (+0.0017) moves the answer."""
    assert seeds_needed(EFFECT_AT_80_PERCENT_WITH_10_SEEDS * (1 + 1e-8), 1.0) == 10
    assert seeds_needed(EFFECT_AT_80_PERCENT_WITH_10_SEEDS * (1 - 1e-8), 1.0) == 11
    assert seeds_needed(-2 * EFFECT_AT_80_PERCENT_WITH_10_SEEDS * (1 + 1e-8), 2.0) == 10


@pytest.mark.parametrize(
    ("differences", "needed", "note"),
    [
        ([1e-13, -1e-13], None, "no difference observed"),  # mean 0
        ([1e-12, 1e-12], None, "no difference observed"),  # mean exactly at the threshold 1e-12 · max(1, 0)
        ([1e-12 + 2**0.5, 1e-12 - 2**0.5], None, "no difference observed"),  # sd 2: threshold 2e-12
        ([1.5e-12 + 1e-10, 1.5e-12 - 1e-10], None, f"more than {MAX_SEEDS}"),  # sd < 1: threshold 1e-12
        ([0.05 + 0.5**0.5, 0.05 - 0.5**0.5], None, f"more than {MAX_SEEDS}"),  # effect 0.05: ~3,100 seeds
        ([1.0, 2.0, 3.0], 5, ""),  # effect 2: 5 seeds (G*Power: 5)
    ],
)
def test_seeds_note_tells_no_difference_from_too_many_seeds(differences, needed, note):
    """The note's no-difference threshold is seeds_needed's: |mean(d)| ≤ 1e-12 · max(1, sd(d))."""
    comparison = compare(
        "UW", "RLW", dict(enumerate(differences)), dict.fromkeys(range(len(differences)), 0.0)
    )
    assert (comparison.seeds_needed, comparison.seeds_note) == (needed, note)
    row = render_summary([("toy", comparison)]).splitlines()[2]
    assert row.endswith(f"| {needed if needed is not None else note} |")


# ------------------------------------------------------------------------------------------- figures
def write_panels_sweep(root: Path) -> Path:
    """One task (mIoU ↑), so that Δp = 2 · (mIoU − 50) % against an EW mean of 50, on HPS:

    - aaa: EW (seeds 0, 1: mIoU 49, 51) and RLW (seeds 0, 1: 52, 53), both validated without epoch numbers
      (EW 49 + s, 50 + s; RLW 51 + s, 52 + s at the first and second validation);
    - bbb: EW (three seeds), CAGrad (one seed: 1–3 seeds in the panel) and RGW (two seeds at 51: no spread,
      its interval one point); no loss-balancing row;
    - ccc: EW and RLW with the uniform sampler (for Fig. 1's second panel).
    """
    runs = [  # dataset, loss, grad, distribution, seed, test mIoU, validation mIoU per validation
        ("aaa", "ew", "none", None, 0, 49.0, [49, 50]),
        ("aaa", "ew", "none", None, 1, 51.0, [50, 51]),
        ("aaa", "rlw", "none", None, 0, 52.0, [51, 52]),
        ("aaa", "rlw", "none", None, 1, 53.0, [52, 53]),
        ("bbb", "ew", "none", None, 0, 49.0, []),
        ("bbb", "ew", "none", None, 1, 50.0, []),
        ("bbb", "ew", "none", None, 2, 51.0, []),
        ("bbb", "ew", "cagrad", None, 0, 54.0, []),
        ("bbb", "ew", "rgw", None, 0, 51.0, []),
        ("bbb", "ew", "rgw", None, 1, 51.0, []),
        ("ccc", "ew", "none", None, 0, 50.0, []),
        ("ccc", "rlw", "none", "uniform", 0, 50.5, []),
        ("ccc", "rlw", "none", "uniform", 1, 51.0, []),
    ]
    for dataset, loss, grad, distribution, seed, miou, validation in runs:
        weighting = {"name": loss, **({"hparams": {"distribution": distribution}} if distribution else {})}
        payload = {
            "dataset": dataset, "arch": "hps", "loss_method": loss, "grad_method": grad, "seed": seed,
            "tasks": {"segmentation": {"miou": True}}, "metrics": {"test": {"segmentation": {"miou": miou}}},
            "config": {"weighting": {"loss": weighting, "grad": {"name": grad}}},
            "val_history": [{"metrics": {"segmentation": {"miou": value}}} for value in validation],
        }  # fmt: skip
        write_json_atomic(root / dataset / f"{loss}-{grad}" / f"s{seed}" / "results.json", payload)
    return root


@pytest.fixture
def stubbed(monkeypatch):
    """The figures closed, in order; savefig stubbed to write b"png:<dpi>" to the path it is given."""
    from matplotlib.figure import Figure

    from rw_mtl.report import figures

    def savefig(self, fname, **kwargs):
        Path(fname).write_bytes(f"png:{kwargs['dpi']}".encode())

    closed = []
    monkeypatch.setattr(figures.plt, "close", closed.append)
    monkeypatch.setattr(Figure, "savefig", savefig)
    return closed


@pytest.fixture
def draw(tmp_path, stubbed):
    """draw(name) → the Figure that figures.<name> drew on the panels sweep (not rasterised)."""
    from rw_mtl.report import figures
    from rw_mtl.report.collect import collect
    from rw_mtl.report.tables import build_tables

    tables, _ = build_tables(collect([write_panels_sweep(tmp_path / "runs")]), "test", None)

    def drawn(name):
        path = tmp_path / f"{name}.png"
        assert getattr(figures, name)(tables, path) == path
        assert path.read_bytes() == b"png:200"
        return stubbed[-1]

    return drawn


def test_figures_are_written_to_their_path_through_a_temporary_file(stubbed, tmp_path):
    from rw_mtl.report import figures

    figure = figures.plt.figure()
    path = tmp_path / "out" / "figure.png"
    assert figures._save(figure, path) == path
    assert path.read_bytes() == b"png:200"
    assert [p.name for p in path.parent.iterdir()] == ["figure.png"]  # the temporary file replaced it
    assert stubbed == [figure]


def test_fig1_has_a_panel_per_setting_each_2_3_inches_high(draw):
    figure = draw("distribution_boxplot")
    assert list(figure.get_size_inches()) == pytest.approx([3.4, 4.6])
    assert [axes.get_title() for axes in figure.axes] == ["aaa: RLW, 2 seeds each", "ccc: RLW, 2 seeds each"]
    assert [[label.get_text() for label in axes.get_xticklabels()] for axes in figure.axes] == [
        ["Normal"],
        ["Uniform"],
    ]
    # the legend's one entry is the dashed EW line itself (its handle drawn as that line)
    (legend,) = figure.legends
    (handle,) = legend.legend_handles
    assert [text.get_text() for text in legend.get_texts()] == ["EW"]
    assert (handle.get_linestyle(), handle.get_color(), handle.get_linewidth()) == ("--", "0.4", 0.8)


def test_fig2_counts_epochs_by_validation_when_the_history_has_no_epoch_numbers(draw):
    """aaa only: bbb and ccc have no validation history. EW's last validation averages 50.5; RLW's
    (51, 52) and (52, 53) average 51.5 and 52.5: Δp 1 / 50.5 and 2 / 50.5 of 100 %."""
    figure = draw("validation_curves")
    (axes,) = figure.axes
    assert axes.get_title().startswith("aaa (EW")
    curves = {line.get_label(): line for line in axes.lines if line.get_linestyle() == "-"}
    assert {label: list(line.get_xdata()) for label, line in curves.items()} == {
        "EW (2 seeds)": [0, 1],
        "RLW (2 seeds)": [0, 1],
    }
    step = 100 / 50.5
    assert list(curves["RLW (2 seeds)"].get_ydata()) == pytest.approx([step, 2 * step])
    (zero,) = [line for line in axes.lines if line.get_linestyle() == "--"]
    assert (list(zero.get_ydata()), zero.get_color(), zero.get_linewidth()) == ([0.0, 0.0], "0.4", 0.8)


def _errorbars(axes):
    """(mean, y) of each errorbar's marker, with its caps' and bars' styles."""
    from matplotlib.collections import LineCollection

    means = [(line.get_xdata()[0], line.get_ydata()[0]) for line in axes.lines if line.get_marker() == "o"]
    caps = {(line.get_markersize(), line.get_color()) for line in axes.lines if line.get_marker() == "|"}
    bars = [c for c in axes.collections if isinstance(c, LineCollection)]
    return means, caps, bars


def test_litmus_plot_panels_bands_and_errorbars(draw):
    """bbb: EW (−2, 0, 2 %), CAGrad one seed at 8 %, RGW two seeds at 2 % (no spread: interval [2, 2]);
    no loss row, so no RLW band but still RGW's; seed counts 1, 2 and 3 in one panel."""
    from matplotlib.colors import to_rgba

    figure = draw("litmus_plot")
    assert [axes.get_title() for axes in figure.axes] == [
        "aaa — HPS (2 seeds)",
        "bbb — HPS (1–3 seeds)",
        "ccc — HPS (1–2 seeds)",
    ]
    aaa, bbb, _ = figure.axes
    # every drawn line style, on a panel with both blocks' rows: errorbars 1 pt wide, caps 2 pt (4 pt
    # markers), EW's line dashed 0.8 pt grey
    means, caps, bars = _errorbars(bbb)
    assert means == [(0.0, 2), (8.0, 1), (2.0, 0)]
    assert caps == {(4.0, "0.3"), (4.0, "tab:orange")}
    assert {float(width) for bar in bars for width in bar.get_linewidths()} == {1.0}
    (ew,) = [line for line in bbb.lines if line.get_label() == "EW"]
    assert (list(ew.get_xdata()), ew.get_color(), ew.get_linewidth()) == ([0.0, 0.0], "0.4", 0.8)

    # RGW's band: its one point widened by 1e-9 so that it is drawn, orange, no edge, over CAGrad and RGW
    bands = [c for c in bbb.collections if c.get_label()[0] != "_"]
    assert [band.get_label() for band in bands] == ["RGW 95% CI (Gradient Bal.)"]
    vertices = bands[0].get_paths()[0].vertices
    assert (min(vertices[:, 0]), max(vertices[:, 0]) - 2.0) == (2.0, pytest.approx(1e-9, abs=1e-12))
    assert (min(vertices[:, 1]), max(vertices[:, 1])) == pytest.approx((-0.45, 1.45))
    assert list(bands[0].get_facecolor()[0]) == pytest.approx([*to_rgba("tab:orange")[:3], 0.15])
    assert list(bands[0].get_linewidths()) == [0.0]
    (rlw,) = [c for c in aaa.collections if c.get_label()[0] != "_"]
    assert list(rlw.get_facecolor()[0]) == pytest.approx([*to_rgba("tab:blue")[:3], 0.15])
    assert list(rlw.get_linewidths()) == [0.0]
