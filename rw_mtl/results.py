"""results.json: what one run leaves behind for the report, written so a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.json"


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as JSON to ``path`` via a temporary file in the same directory, fsync and rename.

    ``os.replace`` is atomic on POSIX and Windows, so a reader (or a run killed mid-write) sees either the
    previous file or the complete new one, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_results(path: str | Path) -> dict:
    """Load one results.json (a run directory or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    with open(path) as handle:
        return json.load(handle)
