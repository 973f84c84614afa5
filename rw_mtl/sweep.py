"""``python -m rw_mtl.sweep EXPERIMENT [override …]``: the jobs that rw_mtl/conf/experiment/<EXPERIMENT>.yaml
would run, one line of overrides each, without training (``make tableN DRY=1``). Every job is composed and
checked as its run would check it before building anything, so that a typo or an incompatible pair (a
rep-mode gradient method on an architecture without one shared representation, …) fails here, listed with
its job, rather than hours into the sweep; the exit code is 1 if any job is invalid.

``--check`` (``make tableN`` runs it after the sweep, before the report) lists instead the jobs that have no
results.json in their run directory (never run, interrupted, failed) and exits 1 if there are any.

The expansion is the basic sweeper's: the cartesian product of ``hydra.sweeper.params`` and any sweep
overrides given here, parsed with Hydra's own override grammar.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser

from rw_mtl.resources import CONFIG_DIR
from rw_mtl.results import RESULTS_FILE, read_results
from rw_mtl.run_dir import FAILED_FILE


def expand(experiment: str, overrides: list[str]) -> list[list[str]]:
    """Every job of the sweep as its list of overrides, in the order Hydra's basic sweeper runs them."""
    if not (Path(CONFIG_DIR) / "experiment" / f"{experiment}.yaml").is_file():
        choices = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
        raise ValueError(f"no rw_mtl/conf/experiment/{experiment}.yaml; experiments: {choices}")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        config = compose(
            config_name="config",
            overrides=[f"+experiment={experiment}", "paths.output_dir=."],
            return_hydra_config=True,
        )
    params = {str(key): str(value) for key, value in (config.hydra.sweeper.params or {}).items()}
    for text in overrides:
        key, _, value = text.partition("=")
        params[key] = value
    parsed = OverridesParser.create().parse_overrides([f"{key}={value}" for key, value in params.items()])
    axes = []
    for override in parsed:
        key = override.get_key_element()
        values = (
            override.sweep_string_iterator()
            if override.is_sweep_override()
            else [override.get_value_element_as_str()]
        )
        axes.append([f"{key}={value}" for value in values])
    return [[f"+experiment={experiment}", *combination] for combination in itertools.product(*axes)]


def validate(jobs: list[list[str]]) -> list[str | None]:
    """For every job, None if its config composes and passes the checks a run makes before it builds
    anything (rw_mtl.config_checks, rw_mtl.scores), else the error that run would stop with."""
    from rw_mtl.config_checks import validate_config
    from rw_mtl.scores import check_objective

    errors: list[str | None] = []
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for job in jobs:
            try:
                config = compose(config_name="config", overrides=[*job, "paths.output_dir=."])
                validate_config(config)
                check_objective(config)
                errors.append(None)
            except Exception as err:  # Hydra's composition errors and our checks' ValueErrors alike
                errors.append(f"{type(err).__name__}: {err}".splitlines()[0])
    return errors


def job_directories(jobs: list[list[str]]) -> list[Path]:
    """Where each job of the sweep writes: ``hydra.sweep.dir``/``hydra.sweep.subdir`` as Hydra resolves them
    for that job's overrides (the override_dirname included), relative to the working directory."""
    directories = []
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for job in jobs:
            config = compose(config_name="config", overrides=job, return_hydra_config=True)
            HydraConfig.instance().set_config(config)  # ${hydra:job.override_dirname} reads it from here
            try:
                directories.append(Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir))
            finally:
                HydraConfig.instance().cfg = None
    return directories


def missing_results(jobs: list[list[str]]) -> list[tuple[int, Path, str]]:
    """(job number, its directory, why) for every job without a readable results.json: never run or
    interrupted, failed (failed.json's error), or an unreadable results.json."""
    missing = []
    for number, directory in enumerate(job_directories(jobs)):
        results, failed = directory / RESULTS_FILE, directory / FAILED_FILE
        if results.is_file():
            try:
                read_results(results)
                continue
            except (OSError, ValueError) as err:
                why = f"unreadable {RESULTS_FILE} ({type(err).__name__}: {err})"
        elif failed.is_file():
            try:
                why = "failed: " + read_results(failed)["error"].splitlines()[0]
            except (OSError, ValueError, KeyError, IndexError):
                why = f"failed (see {FAILED_FILE})"
        else:
            why = "no results (not run, running, or interrupted: run the sweep again to resume it)"
        missing.append((number, directory, why))
    return missing


def check(experiment: str, jobs: list[list[str]]) -> int:
    """``--check``: 0 if every job of the sweep has its results.json, else 1 after listing those without;
    ``make tableN`` runs it between the sweep and the report, so no report is built from a partial sweep
    without saying which jobs it lacks."""
    missing = missing_results(jobs)
    for number, directory, why in missing:
        print(f"#{number}: python -m rw_mtl {' '.join(jobs[number])}\n    {directory}: {why}")
    if missing:
        print(
            f"{len(missing)} of {len(jobs)} jobs of {experiment} have no results (above): the sweep is "
            f"incomplete; run it again (finished jobs are skipped) or report what there is with "
            f"python -m rw_mtl.report <sweep dir>"
        )
        return 1
    print(f"all {len(jobs)} jobs of {experiment} have their results")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rw_mtl.sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", help="a rw_mtl/conf/experiment name: table1 … table8, fig1, fig2")
    parser.add_argument("overrides", nargs="*", help="extra sweep overrides, e.g. seed=0")
    parser.add_argument(
        "--check",
        action="store_true",
        help="list the jobs without results.json in their run directories (exit 1 if any)",
    )
    args = parser.parse_intermixed_args(argv)  # `EXPERIMENT --check overrides…` as make writes it
    try:
        jobs = expand(args.experiment, args.overrides)
    except ValueError as err:
        parser.error(str(err))
    if args.check:
        return check(args.experiment, jobs)
    errors = validate(jobs)
    for number, (job, error) in enumerate(zip(jobs, errors, strict=True)):
        print(f"#{number}: python -m rw_mtl {' '.join(job)}")
        if error:
            print(f"    invalid: {error}")
    invalid = sum(error is not None for error in errors)
    if invalid:
        print(f"{invalid} of {len(jobs)} jobs invalid (above); nothing was run")
        return 1
    print(f"{len(jobs)} jobs, each composed and validated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
