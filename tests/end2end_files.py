"""Step 9's files for the tests: built once per test run by the real script 05, from the pair 03 exported.

The pair comes from conftest's `exported_run` (all precisions, exported once per
run). It is linked into a folder of its own, so the one-file models never appear
in the folder the export tests list.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from conftest import run_script

_BUILT: dict[str, Built] = {}


@dataclass(frozen=True)
class Built:
    folder: Path
    stdout: str
    stderr: str

    def file(self, precision: str) -> Path:
        return self.folder / ("whisper-base_end2end.onnx" if precision == "fp32" else f"whisper-base_end2end_{precision}.onnx")


def built_end2end(exported_folder: Path, scratch: Path) -> Built:
    """Run `05 --precision all` once per test run (pytest imports this module once for every test file)."""
    if "all" not in _BUILT:
        folder = scratch / "end2end"
        folder.mkdir()
        for source in exported_folder.iterdir():
            if source.suffix in (".onnx", ".json"):
                (folder / source.name).symlink_to(source)
        start = time.perf_counter()
        result = run_script("05-export-end-to-end.py", "--precision", "all", "--output-dir", folder, timeout=1200)
        assert result.returncode == 0, result.stderr
        print(f"\n05 --precision all: {time.perf_counter() - start:.0f} s\n{result.stdout}")
        _BUILT["all"] = Built(folder, result.stdout, result.stderr)
    return _BUILT["all"]
