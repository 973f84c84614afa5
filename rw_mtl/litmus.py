"""``rw-mtl litmus method=…``: does a method beat random weighting? The paper's litmus test, run and judged.

``rw-mtl litmus method=<name or my_pkg.MyClass> [datasets=multi_digits] [seeds=3] [key=value …]``.

Trains the method beside EW and its random counterpart — RLW for a loss-balancing method, RGW for a
gradient-balancing one — on each benchmark over N seeds, through the sweeps a user would run
(``rw-mtl -m …`` into one sweep directory, where a run directory holding this exact config's finished
results.json is skipped: re-running trains only what is missing, and EW and the random runs are shared by
every method tested in that directory). Then prints and writes ``<out>/litmus-<method>/litmus.md``,
``litmus.json`` and ``litmus.png``: per benchmark, the method's Δp against EW ± std over seeds, the
random method's, their difference paired over seeds with its 95% t-interval, the verdict ("beats random
weighting", "indistinguishable", "worse") and the seeds needed to separate them (rw_mtl.report.litmus).

Arguments, ``key=value`` like the training command's:

  method=    a table-row preset (rw_mtl/conf/method/: cagrad, uw, rlw_dirichlet, …), a weighting config
             (rw_mtl/conf/weighting/loss|grad/<name>.yaml), or the dotted path of your own
             LossWeighting / GradWeighting subclass (importable by the training runs)
  datasets=  dataset configs, comma-separated (default multi_digits: CPU, minutes)
  seeds=     N for seeds 0 … N−1 (default 3), or a comma-separated list
  out=       the sweep directory (default outputs/litmus)
  split=     test_at_best_val (default: the best-validation checkpoint) | test (the final model)
  weighting.<key>=<value>   an override of the method under test only (weighting.grad.hparams.c=0.2);
             EW, RLW and RGW keep their defaults, as in the paper
  any other <key>=<value>   an override of every run (trainer.max_epochs=2, arch=mtan, logger=wandb, …)

The exit code is 0 when every benchmark has its verdict, 1 when runs are missing (they are listed).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rw_mtl.resources import CONFIG_DIR, PAPER_TABLES_DIR

DEFAULTS = {"datasets": "multi_digits", "seeds": "3", "out": "outputs/litmus", "split": "test_at_best_val"}
SPLITS = ("test_at_best_val", "test")
RANDOM_PRESET = {"loss": "rlw", "grad": "rgw"}
EW_PRESET = "ew"


class LitmusError(ValueError):
    """A bad argument, named with the fix."""


@dataclass
class Plan:
    """What to run: the method's overrides and kind, the benchmarks, the seeds, the shared overrides."""

    method: str
    method_overrides: list[str]
    kind: str  # "loss" | "grad"
    datasets: list[str]
    seeds: list[int]
    out: Path
    split: str
    common: list[str] = field(default_factory=list)

    @property
    def random(self) -> str:
        return RANDOM_PRESET[self.kind]

    def roles(self) -> dict[str, list[str]]:
        """Role → the overrides choosing its method: EW, the random counterpart, the method."""
        return {
            "EW": [f"+method={EW_PRESET}"],
            self.random.upper(): [f"+method={self.random}"],
            "method": self.method_overrides,
        }

    def job(self, role: str, dataset: str, seed: int) -> list[str]:
        return [*self.roles()[role], f"dataset={dataset}", f"seed={seed}", *self.common]


def parse(argv: list[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """``key=value`` arguments → (litmus options, method-only overrides, overrides of every run)."""
    options, method_only, common = dict(DEFAULTS), [], []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if arg.startswith("~"):  # Hydra's deletion of a key, e.g. ~callbacks.progress_bar
            common.append(arg)
            continue
        if not sep:
            raise LitmusError(f"`{arg}`: arguments are key=value (see rw-mtl litmus --help)")
        key = "datasets" if key == "dataset" else key
        if key in ("method", *DEFAULTS):
            options[key] = value
        elif key.startswith("weighting."):
            method_only.append(arg)
        elif key in ("+method", "method") or key.startswith(("weighting/", "+weighting")):
            raise LitmusError(
                f"`{arg}`: choose the method under test with method=<name> (rw-mtl litmus --help)"
            )
        else:
            common.append(arg)
    if not options.get("method"):
        raise LitmusError(
            "method=<name> is required: a rw_mtl/conf/method/ preset (e.g. method=cagrad), a weighting "
            "name, or the class path of your own (my_pkg.MyWeighting)"
        )
    return options, method_only, common


def seeds_of(text: str) -> list[int]:
    """``3`` → [0, 1, 2]; ``0,5,7`` → [0, 5, 7]; anything else refused."""
    try:
        seeds = [int(part) for part in text.split(",")] if "," in text else list(range(int(text)))
    except ValueError:
        raise LitmusError(f"seeds={text}: give a number of seeds (seeds=3) or a list (seeds=0,1,2)") from None
    if not seeds or any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise LitmusError(f"seeds={text}: give at least one seed, none negative, none twice")
    return seeds


def method_overrides(name: str) -> list[str]:
    """The Hydra overrides that choose ``name``: a method preset, a weighting config, or a class path."""
    conf = Path(CONFIG_DIR)
    if (conf / "method" / f"{name}.yaml").is_file():
        return [f"+method={name}"]
    if name != "custom" and (conf / "weighting" / "loss" / f"{name}.yaml").is_file():
        return [f"weighting/loss={name}", "weighting/grad=none"]
    if name not in ("custom", "none") and (conf / "weighting" / "grad" / f"{name}.yaml").is_file():
        return [f"weighting/loss={EW_PRESET}", f"weighting/grad={name}"]
    if re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", name):
        return _custom_overrides(name)
    presets = sorted(path.stem for path in (conf / "method").glob("*.yaml"))
    raise LitmusError(
        f"method={name}: not a method preset ({', '.join(presets)}), a weighting config "
        "(rw_mtl/conf/weighting/loss|grad/), or a dotted class path (my_pkg.MyWeighting)"
    )


def _custom_overrides(path: str) -> list[str]:
    from hydra.utils import get_class

    from rw_mtl.weighting.base import GradWeighting, LossWeighting

    try:
        cls = get_class(path)
    except Exception as err:  # Hydra wraps the import error of the module or the attribute
        raise LitmusError(f"method={path}: cannot import it ({err}); is its package on PYTHONPATH?") from err
    if isinstance(cls, type) and issubclass(cls, LossWeighting):
        return ["weighting/loss=custom", f"weighting.loss.target={path}", "weighting/grad=none"]
    if isinstance(cls, type) and issubclass(cls, GradWeighting):
        return [f"weighting/loss={EW_PRESET}", "weighting/grad=custom", f"weighting.grad.target={path}"]
    raise LitmusError(
        f"method={path}: a LossWeighting or GradWeighting subclass is needed (rw_mtl.weighting.base)"
    )


def compose(job: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=[*job, "paths.output_dir=."])


def plan(argv: list[str]) -> Plan:
    """Parse ``argv``, choose the method's kind from its composed config, and validate every role's
    config as its runs will (rw_mtl.sweep.validate) before anything trains."""
    from rw_mtl.sweep import validate

    options, method_only, common = parse(argv)
    if options["split"] not in SPLITS:
        raise LitmusError(f"split={options['split']}: one of {', '.join(SPLITS)}")
    datasets = [d for d in options["datasets"].split(",") if d]
    overrides = [*method_overrides(options["method"]), *method_only]
    config = compose([*overrides, f"dataset={datasets[0]}", *common])
    loss, grad = config.weighting.loss.name, config.weighting.grad.name
    kind = "grad" if grad != "none" else "loss"
    if (loss, grad) in (("ew", "none"), ("rlw", "none"), ("ew", "rgw")) and not method_only:
        raise LitmusError(
            f"method={options['method']} is a baseline of the litmus test itself; test another method"
        )
    result = Plan(
        options["method"],
        overrides,
        kind,
        datasets,
        seeds_of(options["seeds"]),
        Path(options["out"]),
        options["split"],
        common,
    )
    jobs = [result.job(role, dataset, result.seeds[0]) for role in result.roles() for dataset in datasets]
    errors = [(job, error) for job, error in zip(jobs, validate(jobs), strict=True) if error]
    if errors:
        raise LitmusError("; ".join(f"`{' '.join(job)}`: {error}" for job, error in errors))
    return result


def sweeps(p: Plan) -> list[list[str]]:
    """The ``python -m rw_mtl -m …`` commands: EW and the random method together, then the method (in
    the same sweep when it is a method preset with no overrides of its own)."""
    shared = [
        f"dataset={','.join(p.datasets)}",
        f"seed={','.join(map(str, p.seeds))}",
        f"hydra.sweep.dir={p.out}",
        *p.common,
    ]
    head = [sys.executable, "-m", "rw_mtl", "-m"]
    baselines = f"+method={EW_PRESET},{p.random}"
    if len(p.method_overrides) == 1 and p.method_overrides[0].startswith("+method="):  # one sweep does all
        return [[*head, f"{baselines},{p.method_overrides[0].partition('=')[2]}", *shared]]
    return [[*head, baselines, *shared], [*head, *p.method_overrides, *shared]]


def identities(p: Plan) -> dict[tuple[str, str], tuple[str, str]]:
    """(role, dataset) → the digests of its config's setting and method parts (rw_mtl.report.identity),
    to find its runs among everything in the sweep directory."""
    from omegaconf import OmegaConf

    from rw_mtl.report.identity import config_identity

    found = {}
    for role in p.roles():
        for dataset in p.datasets:
            config = OmegaConf.to_container(compose(p.job(role, dataset, p.seeds[0])), resolve=True)
            found[(role, dataset)] = config_identity(config)
    return found


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or {"-h", "--help"} & set(args):
        print(__doc__)
        return 0
    try:
        p = plan(args)
    except LitmusError as err:
        print(f"rw-mtl litmus: error: {err}", file=sys.stderr)
        return 2
    failed = [command for command in sweeps(p) if subprocess.run(command).returncode != 0]
    return summarize(p, identities(p), failed)


def _find(tables, identity: tuple[str, str]):
    """(table, row) of the group with this config identity (rw_mtl.report.identity.config_identity)."""
    from rw_mtl.report.identity import config_part, digest

    setting, method = identity
    for table in tables:
        if table.from_paper or digest(config_part(table.section.setting)) != setting:
            continue
        for row in table.rows:
            if digest(config_part(row.group.method)) == method:
                return table, row
    return None


def summarize(p: Plan, wanted: dict[tuple[str, str], tuple[str, str]], failed: list[list[str]]) -> int:
    """Collect the sweep directory, pick each benchmark's method row and its comparison, write and print."""
    from rw_mtl.report.document import build
    from rw_mtl.report.figures import litmus_plot
    from rw_mtl.report.litmus import STATISTICS, render_summary
    from rw_mtl.results import write_json_atomic, write_text_atomic

    report = build([p.out], p.split, PAPER_TABLES_DIR)
    missing, entries, tables = [], [], []
    for dataset in p.datasets:
        found = {role: _find(report.tables, wanted[(role, dataset)]) for role in p.roles()}
        for role, hit in found.items():
            seeds = set(hit[1].group.seeds) if hit else set()
            if not set(p.seeds) <= seeds:
                missing.append(f"{dataset}: {role} lacks seeds {sorted(set(p.seeds) - seeds)}")
        home, row = found["method"] or (None, None)
        if row is None or row.litmus is None:
            missing.append(f"{dataset}: no verdict without runs of EW, {p.random.upper()} and the method")
            continue
        entries.append((home.title, row.litmus))
        kept = [r for r in home.rows if any(hit and r is hit[1] for hit in found.values())]
        tables.append(dataclasses.replace(home, rows=kept))
    name = re.sub(r"[^\w.-]+", "_", p.method)
    out = p.out / f"litmus-{name}"
    lines = [f"# Litmus test: {p.method} against {p.random.upper()}", ""]
    lines.append(f"Seeds {', '.join(map(str, p.seeds))}; split {p.split}; runs in {p.out}.")
    lines.append("")
    lines += [render_summary(entries)] if entries else ["No verdict: see below.", ""]
    if missing or failed:
        lines += ["## Missing", "", *[f"- {line}" for line in missing]]
        lines += [
            f"- failed: `{' '.join(command[1:])}` (see failed.json in its run directories)"
            for command in failed
        ]
        lines.append("")
    text = "\n".join(lines)
    written = [write_text_atomic(out / "litmus.md", text)]
    payload = {
        "method": p.method,
        "random": p.random.upper(),
        "seeds": p.seeds,
        "split": p.split,
        "statistics": STATISTICS,
    }
    payload["benchmarks"] = [{"table": title, **comparison.to_json()} for title, comparison in entries]
    payload["missing"] = missing
    written.append(write_json_atomic(out / "litmus.json", payload))
    figure = litmus_plot(tables, out / "litmus.png")
    if figure is not None:
        written.append(figure)
    print(text)
    print("wrote " + ", ".join(map(str, written)))
    return 1 if missing or failed else 0


if __name__ == "__main__":
    sys.exit(main())
