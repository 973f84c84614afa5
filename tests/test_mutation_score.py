"""scripts/mutation_score.py (``make mutate``'s summary) on mutmut meta files written by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mutation_score.py"


def _meta(root: Path, source: str, codes: dict[str, int | None]) -> None:
    path = root / f"{source}.meta"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code_by_key": codes}))


def test_each_exit_code_lands_in_its_column_and_the_score_is_caught_over_checked(tmp_path):
    name = "rw_mtl.weighting.simplex.x_{}__mutmut_{}"
    weighting = {name.format("f", i): code for i, code in enumerate([1, 3, 1, -24, 0])}
    weighting |= {name.format("g", 1): -9, name.format("g", 2): None}
    _meta(tmp_path, "rw_mtl/weighting/simplex.py", weighting)
    _meta(tmp_path, "rw_mtl/tasks/dense.py", {"rw_mtl.tasks.dense.x_h__mutmut_1": 33})
    _meta(tmp_path, "rw_mtl/arch/hps.py", {"rw_mtl.arch.hps.x_k__mutmut_1": 0})  # outside every scope

    printed = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout
    lines = printed.splitlines()

    # 7 mutants: 1 not checked; of the 6 checked, 3 killed + 1 timeout caught: 4 / 6
    assert "| rw_mtl/weighting | 7 | 1 | 3 | 1 | 1 | 0 | 1 | 66.7% |" in lines
    assert "| rw_mtl/tasks | 1 | 0 | 0 | 0 | 0 | 1 | 0 | 0.0% |" in lines
    assert "| rw_mtl/report | 0 | 0 | 0 | 0 | 0 | 0 | 0 | — |" in lines
    survivors = [line for line in lines if line.startswith(("survived", "no tests", "suspicious"))]
    assert survivors == [
        "no tests: rw_mtl.tasks.dense.x_h__mutmut_1",
        "survived: rw_mtl.weighting.simplex.x_f__mutmut_4",
        "suspicious: rw_mtl.weighting.simplex.x_g__mutmut_1",
    ]
