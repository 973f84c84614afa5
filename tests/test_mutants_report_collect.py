"""How the report gathers results.json files (rw_mtl/report/collect.py), asserted exactly (fast).

Written against the surviving mutants of ``make mutate`` (docs/testing.md, "Report: collect"): the names a
row gets (the paper's, a class path's last part, a variant naming only what differs from the method's YAML
defaults or from a namesake), the section titles (only the setting keys that tell a section from the same
dataset's others, and the task count), the baseline Δp is taken against, the notes naming each file that
is skipped or counted once, and the exact error for every results.json that cannot count.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rw_mtl.report.collect import (
    Group,
    Section,
    collect,
    find_results,
    integer_seed,
    load_run,
    method_label,
    method_name,
)
from rw_mtl.results import write_json_atomic
from tests.test_mutants_report import DIRECTIONS

TWO_TASKS = {"segmentation": {"miou": True}, "depth": {"abs_err": False}}


def write_run(
    path: Path, *, dataset="nyuv2", arch="hps", loss="ew", grad="none", seed=0, tasks=None, config=None
):
    """One results.json at ``path`` (a directory), every metric of ``tasks`` set to 1.0; ``config``
    None: a results.json without its config (older or hand-written files)."""
    tasks = tasks or TWO_TASKS
    payload = {
        "dataset": dataset,
        "arch": arch,
        "loss_method": loss,
        "grad_method": grad,
        "seed": seed,
        "tasks": tasks,
        "metrics": {"test": {task: dict.fromkeys(metrics, 1.0) for task, metrics in tasks.items()}},
    }
    if config is not None:
        payload["config"] = config
    write_json_atomic(path / "results.json", payload)
    return path / "results.json"


def labels(collection) -> list[str]:
    return [group.label for group in collection.groups]


# ------------------------------------------------------------------------------------------- names
def test_method_names_are_the_papers_or_a_class_paths_last_part():
    assert method_name("imtl_l") == "IMTL-L"
    assert method_name("my_pkg.weighting.MyLoss") == "MyLoss"
    assert method_name("MyLoss") == "MyLoss"
    assert method_label("rlw", "none") == "RLW"
    assert method_label("ew", "cagrad") == "CAGrad"
    assert method_label("uw", "my_pkg.Grad") == "UW + Grad"
    assert method_label("my_pkg.Loss", "pcgrad") == "Loss + PCGrad"


# -------------------------------------------------------------------------------------- a section
def test_the_reference_is_plain_hps_ew_else_any_hps_ew_else_any_ew():
    """Δp's baseline: EW on HPS with its defaults first, wherever it is listed; EW + a gradient method is
    not EW."""
    uw = Group("nyuv2", "hps", "uw", "none")
    ew_cagrad = Group("nyuv2", "hps", "ew", "cagrad")
    mtan = Group("nyuv2", "mtan", "ew", "none")
    hps_variant = Group("nyuv2", "hps", "ew", "none", variant="width=64")
    hps = Group("nyuv2", "hps", "ew", "none")

    def reference(*groups):
        return Section("nyuv2", {}, "key", groups=list(groups)).reference()

    assert reference(uw, ew_cagrad, mtan, hps_variant, hps) is hps
    assert reference(uw, ew_cagrad, mtan, hps_variant) is hps_variant
    assert reference(uw, ew_cagrad, mtan) is mtan
    assert reference(uw, ew_cagrad) is None


def test_architectures_are_listed_once_in_table_5s_order_then_by_name():
    groups = [
        Group("nyuv2", arch, "ew", "none") for arch in ("zzz", "ltb", "mtan", "cross_stitch", "hps", "mtan")
    ]
    assert Section("nyuv2", {}, "key", groups=groups).archs() == ["hps", "cross_stitch", "mtan", "ltb", "zzz"]


# ------------------------------------------------------------------------------------ reading files
def test_find_results_takes_a_file_as_given_and_names_a_missing_directory(tmp_path):
    first = write_run(tmp_path / "runs" / "b")
    second = write_run(tmp_path / "runs" / "a" / "s0")
    assert find_results([first, tmp_path / "runs"]) == [first, second, first]
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as error:
        find_results([missing])
    assert str(error.value) == f"no such results directory: {missing}"


@pytest.mark.parametrize(("seed", "expected"), [(3, 3), (2.0, 2), (-1.0, -1)])
def test_an_integral_seed_is_an_int(seed, expected):
    assert integer_seed(seed) == expected and type(integer_seed(seed)) is int


def not_integral(seed, trained):
    return (
        f"its seed {seed!r} is not an integer: Lightning trained it as seed {trained} while it records "
        f"{seed!r}, so it is neither a new seed nor safely seed {trained}; rerun it with an integer seed"
    )


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        (True, "its seed True is not an integer"),
        ("3", "its seed '3' is not an integer"),
        (None, "its seed None is not an integer"),
        (1.5, not_integral(1.5, 1)),
        (-2.5, not_integral(-2.5, -2)),
        (math.inf, not_integral(math.inf, "?")),
        (math.nan, not_integral(math.nan, "?")),
    ],
)
def test_a_seed_that_is_not_an_integer_is_refused_saying_why(seed, message):
    with pytest.raises(ValueError) as error:
        integer_seed(seed)
    assert str(error.value) == message


def json_error(text) -> str:
    """What Python's own parser says about ``text`` (the wording differs between Python versions)."""
    try:
        json.loads(text.decode() if isinstance(text, bytes) else text)
    except ValueError as error:
        return str(error)
    raise AssertionError(f"{text!r} parses")


NOT_UTF8 = b"\xff"
COMPLETE = '{"dataset": "d", "arch": "hps", "loss_method": "ew", "grad_method": "none", "metrics": {}, '


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", f"unreadable (JSONDecodeError: {json_error('{')})"),
        (NOT_UTF8, f"unreadable (UnicodeDecodeError: {json_error(NOT_UTF8)})"),
        ("[]", "not a results object"),
        ('{"dataset": "d", "tasks": {}}', "no arch, loss_method, grad_method, metrics"),
        (COMPLETE + '"tasks": {}}', "no seed"),
        (COMPLETE + '"tasks": ["miou"], "seed": 0}', "`tasks` is not task → metric → higher-is-better"),
        (COMPLETE + '"tasks": {"seg": true}, "seed": 0}', "`tasks` is not task → metric → higher-is-better"),
        (COMPLETE + '"tasks": {}, "seed": 0.5}', not_integral(0.5, 0)),
    ],
)
def test_a_results_json_the_report_cannot_read_is_refused_naming_the_problem(tmp_path, text, message):
    path = tmp_path / "results.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError) as error:
        load_run(path)
    assert str(error.value) == message


def test_a_results_json_read_has_its_seed_as_an_int(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(COMPLETE + '"tasks": {"seg": {"miou": true}}, "seed": 2.0}')
    run = load_run(path)
    assert run["seed"] == 2 and type(run["seed"]) is int
    assert run["tasks"] == {"seg": {"miou": True}} and run["dataset"] == "d"


# ----------------------------------------------------------------------------------------- collect
def test_collect_counts_a_file_and_a_config_and_seed_once_and_sorts_seeds(tmp_path):
    """``a`` is given twice (once through ``c/..``), ``b`` is a copy of ``a``'s run; ``c`` (seed 0) is read
    last but comes first: a group's runs go by seed."""
    runs = tmp_path / "runs"
    a = write_run(runs / "a", seed=1)
    b = write_run(runs / "b", seed=1)
    c = write_run(runs / "c", seed=0)
    write_json_atomic(runs / "d" / "results.json", {"dataset": "nyuv2"})
    via_c = runs / "c" / ".." / "a" / "results.json"
    collection = collect([via_c, runs])
    assert collection.notes == [
        f"{a}: the same file as {via_c}; counted once",
        f"{b}: the same config and seed (1) as {via_c}; counted once",
        f"skipped {runs / 'd' / 'results.json'}: no arch, loss_method, grad_method, tasks, metrics",
    ]
    assert collection.files == 2
    (group,) = collection.groups
    assert (group.dataset, group.arch, group.loss, group.grad) == ("nyuv2", "hps", "ew", "none")
    assert group.seeds == [0, 1] and group.paths == [c, via_c]
    assert collect([runs], split="val").notes == [f"skipped {path}: no val metrics" for path in (a, b, c)] + [
        f"skipped {runs / 'd' / 'results.json'}: no arch, loss_method, grad_method, tasks, metrics"
    ]


def weighting(loss: dict, grad: dict) -> dict:
    return {"weighting": {"loss": loss, "grad": grad}}


def test_a_variant_names_what_differs_from_the_methods_yaml(tmp_path):
    """CAGrad's c and a custom method's mode against conf/weighting/grad/{cagrad,custom}.yaml; a config
    without the weighting's name (an older results.json) is read against ``loss_method``'s and
    ``grad_method``'s YAML."""
    runs = tmp_path / "runs"
    cagrad = {"name": "cagrad", "mode": "param", "hparams": {"c": 0.5, "rescale": 1}}
    write_run(runs / "a", grad="cagrad", config=weighting({"name": "ew"}, cagrad))
    write_run(runs / "b", grad="cagrad", config=weighting({"name": "ew"}, {**cagrad, "hparams": {"c": 0.4}}))
    for directory, mode in (("c", "param"), ("d", "rep")):
        custom = {"name": "custom", "target": "my_pkg.MyGrad", "mode": mode, "hparams": {}}
        write_run(runs / directory, grad="my_pkg.MyGrad", config=weighting({"name": "ew"}, custom))
    nameless = weighting({"hparams": {"distribution": "uniform"}}, {"hparams": {"c": 0.4}})
    write_run(runs / "e", loss="rlw", grad="cagrad", config=nameless)
    assert labels(collect([runs])) == [
        "CAGrad",
        "CAGrad (c=0.4)",
        "MyGrad",
        "MyGrad (mode=rep)",
        "RLW + CAGrad (c=0.4, distribution=uniform)",
    ]


def test_namesakes_are_told_apart_by_their_other_method_keys_null_and_missing_included(tmp_path):
    """Two EW-on-HPS rows of one section: one sets ``arch.width: null``, one has no such key (``—``); a
    results.json without a config next to one with it: the names (already the row's label) are not
    repeated."""
    runs = tmp_path / "runs"
    names = weighting({"name": "ew"}, {"name": "none"})
    write_run(runs / "a", dataset="aaa", config={"arch": {"name": "hps", "width": None}, **names})
    write_run(runs / "b", dataset="aaa", config={"arch": {"name": "hps"}, **names})
    write_run(runs / "c", dataset="bbb", config={"arch": {"name": "hps", "width": 64}, **names})
    write_run(runs / "d", dataset="bbb")
    assert labels(collect([runs])) == ["EW (width=null)", "EW (width=—)", "EW (width=64)", "EW (width=—)"]


def test_section_titles_name_the_settings_that_differ_within_a_dataset(tmp_path):
    """Only keys that differ from the same dataset's other sections (a key one lacks: ``—``; ``null`` is a
    value), and the task count where the task sets differ; a dataset with one section is its name."""
    runs = tmp_path / "runs"
    three = {**TWO_TASKS, "normal": {"mean": False}}

    def setting(**trainer):
        return {"trainer": trainer, "optim": {"lr": 1e-4}}

    write_run(runs / "1", config=setting(max_epochs=10, precision="bf16"))
    write_run(runs / "2", config=setting(max_epochs=20))
    write_run(runs / "3", dataset="aaa", config=setting(max_epochs=10, precision=None))
    write_run(runs / "4", dataset="aaa", config=setting(max_epochs=10))
    write_run(runs / "5", dataset="bbb", config=setting(max_epochs=10))
    write_run(runs / "6", dataset="bbb", tasks=three, config=setting(max_epochs=10))
    write_run(runs / "7", dataset="ccc", config=setting(max_epochs=10))
    write_run(runs / "8", dataset="ccc", tasks=three, config=setting(max_epochs=20))
    write_run(runs / "9", dataset="cityscapes", tasks=DIRECTIONS, config=setting(max_epochs=10))
    assert [section.title for section in collect([runs]).sections] == [
        "nyuv2 (max_epochs=10, precision=bf16)",
        "nyuv2 (max_epochs=20, precision=—)",
        "aaa (precision=null)",
        "aaa (precision=—)",
        "bbb (2 tasks)",
        "bbb (3 tasks)",
        "ccc (max_epochs=10, 2 tasks)",
        "ccc (max_epochs=20, 3 tasks)",
        "cityscapes",
    ]
