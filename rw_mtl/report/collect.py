"""Gather results.json files into groups of seeds of one experiment, and settings those groups share.

A **group** is every seed of one method identity (rw_mtl.report.identity: the architecture, both
weightings with every hparam and mode, and the keys a method preset sets) within one **section**, a
setting (the dataset and its config, the task set, the trainer, …). Nothing that differs in any of those
is pooled: rep-mode and param-mode RGW are two rows, 3-task and 4-task runs two sections.

Files that cannot count are skipped with a note naming them, and the rest is reported: a results.json
that is not valid JSON or lacks a field; a seed that is not an integer (``seed=1.5`` trains as seed 1 —
Lightning seeds with ``int(seed)`` — while recording 1.5, so it is neither a new seed nor safely seed 1:
it is refused and should be rerun with an integer seed); the same file given twice, or a second run of
the same config and seed (a copied run directory), which counts once.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rw_mtl.report.identity import (
    digest,
    experiment_config,
    short_keys,
    show,
    split_identity,
    weighting_defaults,
)
from rw_mtl.report.order import EW, NO_GRAD, arch_rank, block_of, row_rank
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
    "gls": "GLS",
    "stch": "STCH",
    "famo": "FAMO",
    "db_mtl": "DB-MTL",
    "excess_mtl": "ExcessMTL",
    "auto_lambda": "Auto-Lambda",
    "forum": "FORUM",
    "fairgrad": "FairGrad",
    "sdmgrad": "SDMGrad",
    "modo": "MoDo",
    "moco": "MoCo",
}
REQUIRED = ("dataset", "arch", "loss_method", "grad_method", "tasks", "metrics")


def method_name(method: str) -> str:
    """The paper's name of a method ("IMTL-L"); a user's class path by its class name."""
    return PAPER_NAMES.get(method, method.rsplit(".", 1)[-1])


def method_label(loss: str, grad: str) -> str:
    """The paper's row name: "RLW", "CAGrad" (with EW), "RLW + CAGrad" (Tables 4 and 5)."""
    if grad == NO_GRAD:
        return method_name(loss)
    if loss == EW:
        return method_name(grad)
    return f"{method_name(loss)} + {method_name(grad)}"


def sample_std(values: list[float]) -> float:
    """The sample standard deviation over seeds; 0 for a single seed."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass
class Group:
    """All seeds of one method identity in one setting."""

    dataset: str
    arch: str
    loss: str
    grad: str
    variant: str = ""  # what tells this row from the method's defaults or its namesakes: "mode=param"
    runs: list[dict] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    method: dict[str, Any] = field(default_factory=dict)  # the flattened method part of the identity
    key: str = ""  # digest of the method part

    @property
    def base_label(self) -> str:
        return method_label(self.loss, self.grad)

    @property
    def label(self) -> str:
        return f"{self.base_label} ({self.variant})" if self.variant else self.base_label

    @property
    def block(self) -> str:
        return block_of(self.loss, self.grad)

    @property
    def directions(self) -> dict[str, dict[str, bool]]:
        return self.runs[0]["tasks"]

    @property
    def seeds(self) -> list[int]:
        return [run["seed"] for run in self.runs]

    def metric_runs(self, split: str) -> list[dict[str, dict[str, float]]]:
        return [run["metrics"][split] for run in self.runs]

    def by_seed(self, split: str) -> dict[int, dict[str, dict[str, float]]]:
        return {run["seed"]: run["metrics"][split] for run in self.runs}

    def mean(self, split: str) -> dict[str, dict[str, float]]:
        return _reduce(self.metric_runs(split), statistics.fmean)

    def std(self, split: str) -> dict[str, dict[str, float]]:
        return _reduce(self.metric_runs(split), sample_std)


@dataclass
class Section:
    """The groups of one setting: one dataset config, task set, trainer …; Δp is taken within it."""

    dataset: str
    setting: dict[str, Any]
    key: str
    title: str = ""
    groups: list[Group] = field(default_factory=list)

    @property
    def directions(self) -> dict[str, dict[str, bool]]:
        return self.groups[0].directions

    def reference(self) -> Group | None:
        """EW with HPS and its defaults (the baseline of every Δp in the paper, Table 5 included), else EW
        on HPS with other preset keys, else EW on any architecture."""
        ew = [g for g in self.groups if g.loss == EW and g.grad == NO_GRAD]
        for candidates in (
            [g for g in ew if g.arch == "hps" and not g.variant],
            [g for g in ew if g.arch == "hps"],
            ew,
        ):
            if candidates:
                return candidates[0]
        return None

    def archs(self) -> list[str]:
        return sorted(dict.fromkeys(g.arch for g in self.groups), key=arch_rank)


@dataclass
class Collection:
    sections: list[Section]
    notes: list[str]
    files: int  # results.json files read and counted

    @property
    def groups(self) -> list[Group]:
        return [group for section in self.sections for group in section.groups]


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


def integer_seed(seed: Any) -> int:
    """The run's seed as an int; a ValueError saying why for anything but an integer (1.0 is 1)."""
    if isinstance(seed, bool) or not isinstance(seed, int | float):
        raise ValueError(f"its seed {seed!r} is not an integer")
    if isinstance(seed, float) and not (math.isfinite(seed) and seed.is_integer()):
        trained = int(seed) if math.isfinite(seed) else "?"
        raise ValueError(
            f"its seed {seed!r} is not an integer: Lightning trained it as seed {trained} while it records "
            f"{seed!r}, so it is neither a new seed nor safely seed {trained}; rerun it with an integer seed"
        )
    return int(seed)


def load_run(path: Path) -> dict:
    """A results.json checked for what the report reads; ValueError naming the problem otherwise."""
    try:
        run = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"unreadable ({type(err).__name__}: {err})") from err
    if not isinstance(run, dict):
        raise ValueError("not a results object")
    missing = [key for key in REQUIRED if key not in run]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    if "seed" not in run:
        raise ValueError("no seed")
    if not isinstance(run["tasks"], dict) or not all(isinstance(m, dict) for m in run["tasks"].values()):
        raise ValueError("`tasks` is not task → metric → higher-is-better")
    run["seed"] = integer_seed(run["seed"])
    return run


def collect(directories: list[Path], split: str | None = None) -> Collection:
    """Every results.json below ``directories``, grouped by full identity (module docstring). With
    ``split``, runs without that split's metrics are skipped with a note too."""
    notes: list[str] = []
    seen_files: dict[Path, Path] = {}
    groups: dict[tuple[str, str], Group] = {}
    settings: dict[str, tuple[str, dict]] = {}
    first_of: dict[tuple[str, str, int], Path] = {}
    for path in find_results(directories):
        real = path.resolve()
        if real in seen_files:
            notes.append(f"{path}: the same file as {seen_files[real]}; counted once")
            continue
        seen_files[real] = path
        try:
            run = load_run(path)
            if split is not None and not isinstance(run["metrics"].get(split), dict):
                raise ValueError(f"no {split} metrics")
        except ValueError as err:
            notes.append(f"skipped {path}: {err}")
            continue
        setting, method = split_identity(experiment_config(run))
        setting_key, method_key = digest(setting), digest(method)
        seed_key = (setting_key, method_key, run["seed"])
        if seed_key in first_of:
            notes.append(
                f"{path}: the same config and seed ({run['seed']}) as {first_of[seed_key]}; counted once"
            )
            continue
        first_of[seed_key] = path
        settings.setdefault(setting_key, (run["dataset"], setting))
        group = groups.get((setting_key, method_key))
        if group is None:
            group = Group(run["dataset"], run["arch"], run["loss_method"], run["grad_method"])
            group.method, group.key = method, method_key
            groups[(setting_key, method_key)] = group
        group.runs.append(run)
        group.paths.append(path)
    sections = [Section(dataset, setting, key) for key, (dataset, setting) in settings.items()]
    for section in sections:
        section.groups = [group for (key, _), group in groups.items() if key == section.key]
        _name_variants(section.groups)
        section.groups.sort(key=lambda g: (arch_rank(g.arch), row_rank(g.loss, g.grad), g.variant))
        for group in section.groups:
            order = sorted(range(len(group.runs)), key=lambda i: group.runs[i]["seed"])
            group.runs, group.paths = [group.runs[i] for i in order], [group.paths[i] for i in order]
    _name_sections(sections)
    return Collection(sections, notes, sum(len(g.runs) for s in sections for g in s.groups))


def _weighting_name(group: Group, kind: str) -> str:
    name = group.method.get(f"weighting.{kind}.name")
    return str(name) if name is not None else group.loss if kind == "loss" else group.grad


def _name_variants(groups: list[Group]) -> None:
    """Each group's ``variant``: its weighting hparams and mode that differ from the method's YAML
    defaults, and any other method key whose value differs from a namesake's (same methods and arch)."""
    for group in groups:
        differing: dict[str, Any] = {}
        defaults: dict[str, Any] = {}
        for kind in ("loss", "grad"):
            defaults.update(weighting_defaults(kind, _weighting_name(group, kind)))
        for key, default in defaults.items():
            if key in group.method and group.method[key] != default:
                differing[key] = group.method[key]
        namesakes = [
            g
            for g in groups
            if (g.arch, g.loss, g.grad) == (group.arch, group.loss, group.grad) and g is not group
        ]
        for key in sorted({k for g in [group, *namesakes] for k in g.method}):
            if key in defaults or key.endswith(".name"):
                continue
            if any(g.method.get(key, "—") != group.method.get(key, "—") for g in namesakes):
                differing[key] = group.method.get(key, "—")
        group.variant = _describe(differing)


def _name_sections(sections: list[Section]) -> None:
    """A section's title: the dataset, plus the setting keys that tell it from the dataset's others."""
    for section in sections:
        others = [s for s in sections if s.dataset == section.dataset and s is not section]
        keys = sorted({k for s in [section, *others] for k in s.setting})
        differing = {
            key: section.setting.get(key, "—")
            for key in keys
            if key not in ("tasks", "dataset.name")
            and any(s.setting.get(key, "—") != section.setting.get(key, "—") for s in others)
        }
        text = _describe(differing)
        if any(s.setting.get("tasks") != section.setting.get("tasks") for s in others):
            text = ", ".join(filter(None, [text, f"{len(section.directions)} tasks"]))
        section.title = f"{section.dataset} ({text})" if text else section.dataset


def _describe(values: dict[str, Any]) -> str:
    names = short_keys(values)
    return ", ".join(f"{names[key]}={show(value)}" for key, value in sorted(values.items()))
