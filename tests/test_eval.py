"""rw-mtl eval: a saved checkpoint tested on one split gives the numbers its run measured, written as a run
writes them."""

from __future__ import annotations

import json
from pathlib import Path

from rw_mtl.eval import main
from rw_mtl.train import run


def test_checkpoints_reproduce_the_runs_own_metrics(fast_config, capsys):
    config = fast_config("weighting/loss=ew", "print_config=false")
    results = run(config)
    run_dir = Path(config.paths.output_dir)

    assert main([f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"]) == 0
    written = json.loads((run_dir / "eval" / "last-test.json").read_text())
    assert written["metrics"]["test"] == results["metrics"]["test"]  # the final model, as the run tested it
    assert (written["dataset"], written["loss_method"], written["split"]) == ("multi_digits", "ew", "test")
    assert "digit0" in capsys.readouterr().out

    out = run_dir / "elsewhere.json"
    arguments = [f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", "split=val", f"out={out}"]
    assert main([*arguments, "dataset.datamodule.batch_size=32"]) == 0  # batching does not change metrics
    assert json.loads(out.read_text())["metrics"]["val"] == results["metrics"]["val_at_best"]


def test_bad_arguments_name_the_fix(fast_config, tmp_path, capsys):
    assert main(["split=val"]) == 2
    assert "ckpt_path=… is required" in capsys.readouterr().err
    stray = tmp_path / "stray.ckpt"
    stray.write_bytes(b"")
    assert main([f"ckpt_path={stray}"]) == 2
    assert "pass run_config=<the run's run_config.json>" in capsys.readouterr().err
    config = fast_config("trainer.max_epochs=1", "print_config=false")
    run(config)
    checkpoint = Path(config.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert main([f"ckpt_path={checkpoint}", "dataset.datamodule.batch_sise=32"]) == 2
    assert "batch_sise" in capsys.readouterr().err
    assert main([f"ckpt_path={checkpoint}", "split=train"]) == 2
    capsys.readouterr()
    damaged = checkpoint.with_name("damaged.ckpt")
    damaged.write_bytes(checkpoint.read_bytes()[:1000])
    assert main([f"ckpt_path={damaged}"]) == 2
    assert f"ckpt_path={damaged} cannot be loaded (BadZipFile" in capsys.readouterr().err
