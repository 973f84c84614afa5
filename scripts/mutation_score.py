"""Mutation score per module from a finished ``mutmut run`` (``make mutate``): reads mutants/**/*.meta.

Scopes: rw_mtl/weighting, rw_mtl/tasks, rw_mtl/report, rw_mtl/data/multi_digits.py. A mutant counts as
caught when a test failed on it (killed) or it ran past the CPU-time limit (timeout: an endless loop);
``survived`` and ``no tests`` (no selected test reaches the code) are not caught. The score is caught /
checked; ``not checked`` (a run stopped early) are left out of it and counted in their own column. Any
other exit is ``suspicious`` and not caught (e.g. -9: the worker was killed by a signal, such as the
kernel's OOM killer; tests/conftest.py caps a mutant's memory so that this should not happen).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

SCOPES = ("rw_mtl/weighting", "rw_mtl/tasks", "rw_mtl/report", "rw_mtl/data/multi_digits.py")
CAUGHT = {
    1: "killed",
    3: "killed",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
}
NAMES = {0: "survived", 5: "no tests", 33: "no tests", None: "not checked"}


def status(code: int | None) -> str:
    return CAUGHT.get(code) or NAMES.get(code, "suspicious")


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "mutants")
    counts: dict[str, Counter] = {scope: Counter() for scope in SCOPES}
    survivors: list[str] = []
    for meta in sorted(root.rglob("*.py.meta")):
        source = meta.relative_to(root).as_posix().removesuffix(".meta")
        scope = next((s for s in SCOPES if source == s or source.startswith(s + "/")), None)
        if scope is None:
            continue
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            counts[scope][status(code)] += 1
            if status(code) not in ("killed", "timeout", "not checked"):
                survivors.append(f"{status(code)}: {name}")
    print("| scope | mutants | not checked | killed | timeout | survived | no tests | suspicious | score |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scope, count in counts.items():
        total = sum(count.values())
        checked = total - count["not checked"]
        caught = count["killed"] + count["timeout"]
        score = f"{100 * caught / checked:.1f}%" if checked else "—"
        print(
            f"| {scope} | {total} | {count['not checked']} | {count['killed']} | {count['timeout']} | "
            f"{count['survived']} | {count['no tests']} | {count['suspicious']} | {score} |"
        )
    print("\n" + "\n".join(survivors))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
