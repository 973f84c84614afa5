"""Gather results.json files and aggregate them over seeds."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from rw_mtl.results import RESULTS_FILE

PAPER_NAMES = {
    "ew": "EW",
    "rlw": "RLW",
    "uw": "UW",
    "dwa": "DWA",
    "imtl_l": "IMTL-L",
    "moml": "MOML",
    "rgw": "RGW",
    "mgda_ub": "MGDA-UB",
    "gradnorm": "GradNorm",
    "pcgrad": "PCGrad",
    "graddrop": "GradDrop",
    "imtl_g": "IMTL-G",
    "gradvac": "GradVac",
    "cagrad": "CAGrad",
    "rotograd": "RotoGrad",
    "upgrad": "UPGrad",
    "dualproj": "DualProj",
    "aligned_mtl": "Aligned-MTL",
    "nash_mtl": "Nash-MTL",
    "config": "ConFIG",
    "krum": "Krum",
    "trimmed_mean": "TrimmedMean",
    "crmogm": "CR-MOGM",
    "pcd": "PCD",
}


def method_label(loss: str, grad: str) -> str:
    """The paper's row name: "RLW", "CAGrad" (with EW), "RLW + CAGrad" (Tables 4 and 5)."""
    if grad == "none":
        return PAPER_NAMES.get(loss, loss)
    if loss == "ew":
        return PAPER_NAMES.get(grad, grad)
    return f"{PAPER_NAMES.get(loss, loss)} + {PAPER_NAMES.get(grad, grad)}"


@dataclass
class Group:
    """All seeds of one (dataset, arch, loss, grad[, variant]) combination."""

    dataset: str
    arch: str
    loss: str
    grad: str
    variant: str = ""
    runs: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        base = method_label(self.loss, self.grad)
        return f"{base} ({self.variant})" if self.variant else base

    @property
    def directions(self) -> dict[str, dict[str, bool]]:
        return self.runs[0]["tasks"]

    def metric_runs(self, split: str) -> list[dict[str, dict[str, float]]]:
        return [run["metrics"][split] for run in self.runs]

    def mean(self, split: str) -> dict[str, dict[str, float]]:
        return _reduce(self.metric_runs(split), statistics.fmean)

    def std(self, split: str) -> dict[str, dict[str, float]]:
        return _reduce(self.metric_runs(split), sample_std)


def sample_std(values: list[float]) -> float:
    """The sample standard deviation over seeds; 0 for a single seed."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _reduce(runs: list[dict], reducer) -> dict[str, dict[str, float]]:
    return {
        task: {metric: reducer([run[task][metric] for run in runs]) for metric in metrics}
        for task, metrics in runs[0].items()
    }


def find_results(directories: list[Path]) -> list[Path]:
    """Every results.json below ``directories`` (a results.json path itself is accepted too)."""
    found = []
    for directory in directories:
        directory = Path(directory)
        if directory.is_file():
            found.append(directory)
        elif directory.is_dir():
            found.extend(sorted(directory.rglob(RESULTS_FILE)))
        else:
            raise FileNotFoundError(f"no such results directory: {directory}")
    return found


def variant_of(run: dict) -> str:
    """What distinguishes runs of one method beyond the seed: RLW/RGW's sampling distribution."""
    config = run.get("config", {}).get("weighting", {})
    parts = []
    for kind in ("loss", "grad"):
        distribution = (config.get(kind, {}).get("hparams") or {}).get("distribution")
        if distribution and distribution != "normal":
            parts.append(distribution)
    return ", ".join(parts)


def collect(directories: list[Path]) -> list[Group]:
    """Runs grouped by combination; groups keep the order in which their first run was found."""
    ordered: dict[tuple, Group] = {}
    for path in find_results(directories):
        run = json.loads(path.read_text())
        key = (run["dataset"], run["arch"], run["loss_method"], run["grad_method"], variant_of(run))
        if key not in ordered:
            ordered[key] = Group(*key)
        ordered[key].runs.append(run)
    return list(ordered.values())
