"""The litmus test of the paper's title: does a method beat random weighting?

A loss-balancing method is compared with RLW, a gradient-balancing method with RGW (a combination
"L + G" with "L + RGW", a loss method under a gradient method G with "RLW + G"), on the same benchmark,
architecture and seeds. For every seed s that both ran, the difference

    d_s = Δp_method(s) − Δp_random(s)

takes both against the same EW reference (the mean over EW's seeds), so it compares the two runs of one
seed directly: the comparison is **paired over seeds**. The verdict comes from the 95% Student-t interval
of the mean difference, mean(d) ± t_{0.975, n−1} · sd(d) / √n:

- entirely above 0: "beats random weighting";
- entirely below 0: "worse";
- containing 0, or fewer than 2 paired seeds (no interval): "indistinguishable".

Seeds needed: the smallest number of seeds n for which the two-sided paired t-test at α = 0.05 has 80%
power against the observed mean difference at the observed spread: power(n) = P(|T| > t_{0.975, n−1})
with T ~ noncentral t(n − 1, √n · |mean(d)| / sd(d)) (scipy.stats.nct). It is an estimate from the same
few seeds, so it says how far a verdict is from settled, not a guarantee.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

from rw_mtl.report.order import EW, NO_GRAD, RANDOM

BEATS, SAME, WORSE = "beats random weighting", "indistinguishable", "worse"
LEVEL, ALPHA, POWER = 0.95, 0.05, 0.8
MAX_SEEDS = 1000

STATISTICS = (
    "Paired over seeds: d = Δp(method) − Δp(random) per seed both ran, both against EW's mean; "
    f"{LEVEL:.0%} Student-t interval of mean(d). Verdict: interval above 0 → {BEATS}; below 0 → {WORSE}; "
    f"else {SAME}. Seeds needed: smallest n giving the paired t-test (α = {ALPHA}, two-sided) "
    f"{POWER:.0%} power at the observed mean(d) and sd(d) (noncentral t)."
)


@dataclass
class Comparison:
    """One method against its random counterpart; Δp values in percent."""

    method: str
    reference: str
    method_delta_p: dict[int, float]  # seed → Δp against EW
    reference_delta_p: dict[int, float]
    seeds: list[int]  # the paired seeds
    differences: list[float]
    mean: float | None
    std: float | None
    interval: tuple[float, float] | None
    verdict: str
    seeds_needed: int | None
    seeds_note: str

    def to_json(self) -> dict:
        data = asdict(self)
        data["method_delta_p"] = _spread(self.method_delta_p)
        data["reference_delta_p"] = _spread(self.reference_delta_p)
        return data

    def cell(self, decimals: int = 2) -> str:
        """The table's "vs RLW/RGW" cell: the mean difference, its interval and the verdict's word."""
        if self.mean is None:
            return "no common seed"
        text = f"{self.mean:+.{decimals}f}"
        if self.interval is None:
            return f"{text} ({len(self.seeds)} seed: no CI)"
        low, high = self.interval
        word = {BEATS: "beats", SAME: "≈", WORSE: "worse"}[self.verdict]
        return f"{text} [{low:+.{decimals}f}, {high:+.{decimals}f}] {word}"


def _spread(values: dict[int, float]) -> dict:
    listed = list(values.values())
    return {
        "per_seed": {str(seed): value for seed, value in values.items()},
        "mean": statistics.fmean(listed) if listed else None,
        "std": statistics.stdev(listed) if len(listed) > 1 else None,
    }


def t_interval(values: list[float], level: float = LEVEL) -> tuple[float, float] | None:
    """The Student-t confidence interval of the mean of ``values``; None with fewer than 2 values."""
    from scipy import stats

    if len(values) < 2:
        return None
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return mean - half, mean + half


def verdict(interval: tuple[float, float] | None) -> str:
    if interval is None:
        return SAME
    low, high = interval
    return BEATS if low > 0 else WORSE if high < 0 else SAME


def seeds_needed(mean: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """The smallest n ≥ 2 whose paired two-sided t-test has ``power`` against ``mean`` at spread ``sd``
    (noncentral t); None where no finite n does (no difference) or more than MAX_SEEDS would be needed."""
    from scipy import stats

    if abs(mean) <= 1e-12 * max(1.0, sd):  # no difference (up to rounding of equal Δp)
        return None
    if sd == 0:
        return 2
    effect = abs(mean) / sd
    for n in range(2, MAX_SEEDS + 1):
        critical = stats.t.ppf(1 - alpha / 2, n - 1)
        noncentrality = math.sqrt(n) * effect
        reached = stats.nct.sf(critical, n - 1, noncentrality) + stats.nct.cdf(
            -critical, n - 1, noncentrality
        )
        if reached >= power:
            return n
    return None


def compare(
    method: str, reference: str, method_dp: dict[int, float], reference_dp: dict[int, float]
) -> Comparison:
    """``method``'s per-seed Δp against ``reference``'s (its random counterpart), paired on common seeds."""
    seeds = sorted(set(method_dp) & set(reference_dp))
    differences = [method_dp[s] - reference_dp[s] for s in seeds]
    mean = statistics.fmean(differences) if differences else None
    std = statistics.stdev(differences) if len(differences) > 1 else None
    interval = t_interval(differences)
    needed, note = None, ""
    if mean is None:
        note = "no seed in common"
    elif std is None:
        note = "one paired seed: the spread is unknown"
    else:
        needed = seeds_needed(mean, std)
        if needed is None:
            no_difference = abs(mean) <= 1e-12 * max(1.0, std)
            note = "no difference observed" if no_difference else f"more than {MAX_SEEDS}"
    return Comparison(
        method, reference, method_dp, reference_dp, seeds, differences, mean, std, interval,
        verdict(interval), needed, note,
    )  # fmt: skip


def counterpart_methods(loss: str, grad: str) -> tuple[str, str] | None:
    """The (loss, grad) pair whose random weighting tests ``(loss, grad)``: the gradient part first (G →
    RGW, keeping the loss method), else the loss part (L → RLW, keeping the gradient method); None for
    EW, RLW, RGW and RLW + RGW themselves."""
    if grad not in (NO_GRAD, RANDOM["grad"]):
        return loss, RANDOM["grad"]
    if loss not in (EW, RANDOM["loss"]):
        return RANDOM["loss"], grad
    return None


def _spread_text(values: dict[int, float]) -> str:
    listed = list(values.values())
    text = f"{statistics.fmean(listed):+.2f}%"
    return text + (f" ± {statistics.stdev(listed):.2f}" if len(listed) > 1 else "")


def render_summary(entries: list[tuple[str, Comparison]]) -> str:
    """The litmus verdicts as a Markdown table (benchmark, method, both Δp with their std over seeds, the
    paired difference with its interval, the verdict, the seeds needed), then how they were computed."""
    header = [
        "benchmark",
        "method",
        "Δp vs EW",
        "random",
        "its Δp vs EW",
        f"paired difference [{LEVEL:.0%} CI]",
        "seeds",
        "verdict",
        "seeds needed",
    ]
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for benchmark, comparison in entries:
        if comparison.interval is not None:
            low, high = comparison.interval
            difference = f"{comparison.mean:+.2f} [{low:+.2f}, {high:+.2f}]"
        else:
            difference = f"{comparison.mean:+.2f} (no CI)" if comparison.mean is not None else "—"
        needed = (
            str(comparison.seeds_needed) if comparison.seeds_needed is not None else comparison.seeds_note
        )
        cells = [
            benchmark,
            comparison.method,
            _spread_text(comparison.method_delta_p),
            comparison.reference,
            _spread_text(comparison.reference_delta_p),
            difference,
            str(len(comparison.seeds)),
            f"**{comparison.verdict}**",
            needed,
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join([*out, "", STATISTICS, ""])
