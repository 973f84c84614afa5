"""The report as one W&B run in the sweep's group: every table as a W&B table, the figures as images.

The run (job type ``report``) joins the group its training runs logged to (rw_mtl.wandb_run: the sweep's
``experiment_name``, else the sweep directory relative to ``paths.log_dir``), so a dashboard filtered on
that group shows the training curves and the report side by side. Logged keys:

- ``tables/<table>``: each table as printed (method, seeds, every metric, Δp, the litmus column), cells
  as text with the paper's marks;
- ``report``: every row's numbers (``<metric>_mean``/``_std``, ``delta_p_mean``, ``vs_random_*``);
- ``litmus``: one row per method with a random counterpart (the verdict table);
- ``figures/<name>``: the PNGs (Fig. 1, Fig. 2, the litmus plot);
- summary ``litmus/<table>/<method>``: the verdict, to filter runs by.

``WANDB_MODE=offline`` logs locally (``wandb sync`` uploads later).
"""

from __future__ import annotations

import re
from pathlib import Path

from rw_mtl.report.collect import Collection
from rw_mtl.report.identity import flatten
from rw_mtl.report.tables import Table, flat_table, litmus_entries, table_cells, table_header, table_records

DEFAULT_PROJECT = "rw_mtl"  # rw_mtl/conf/logger/wandb.yaml


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def report_group(collection: Collection, directories: list[Path]) -> str:
    """The W&B group the report's runs were logged to (rw_mtl.wandb_run.wandb_group's rule): their common
    ``experiment_name``, else the first directory relative to their ``paths.log_dir``, else its name."""
    configs = [run.get("config") or {} for group in collection.groups for run in group.runs]
    names = {config.get("experiment_name") for config in configs}
    if len(names) == 1 and None not in names:
        return str(names.pop())
    directory = Path(directories[0]).resolve()
    log_dirs = {flatten(config).get("paths.log_dir") for config in configs}
    if len(log_dirs) == 1 and None not in log_dirs:
        log_dir = Path(str(log_dirs.pop())).resolve()
        if directory.is_relative_to(log_dir) and directory != log_dir:
            return str(directory.relative_to(log_dir))
    return directory.name


def log_report(project: str, group: str, out: Path, tables: list[Table], figures: list[Path]) -> str:
    """Log the report as a W&B run; returns the run's directory."""
    import wandb

    run = wandb.init(project=project, job_type="report", group=group, dir=str(out), name=f"report-{group}")
    payload = {}
    for table in tables:
        rows = [
            [block, row.label, "paper" if table.from_paper else str(row.seeds), *cells]
            for block, row, cells in zip(
                [r.block for r in table.rows], table.rows, table_cells(table), strict=True
            )
        ]
        payload[f"tables/{slug(table.title)}"] = wandb.Table(
            columns=["block", *table_header(table)[1:]], data=rows
        )
    header, data = flat_table(table_records(tables))
    payload["report"] = wandb.Table(columns=header, data=data)
    verdicts = [
        [
            title,
            c.method,
            c.reference,
            c.mean,
            *(c.interval or (None, None)),
            len(c.seeds),
            c.verdict,
            c.seeds_needed,
        ]
        for title, c in litmus_entries(tables)
    ]
    columns = [
        "table",
        "method",
        "random",
        "difference",
        "ci_low",
        "ci_high",
        "seeds",
        "verdict",
        "seeds_needed",
    ]
    payload["litmus"] = wandb.Table(columns=columns, data=verdicts)
    payload.update({f"figures/{path.stem}": wandb.Image(str(path)) for path in figures})
    run.log(payload)
    for title, comparison in litmus_entries(tables):
        run.summary[f"litmus/{slug(title)}/{slug(comparison.method)}"] = comparison.verdict
    directory = run.dir
    run.finish()
    wandb.teardown()  # the record is written by W&B's service: complete on disk before the command returns
    return directory
