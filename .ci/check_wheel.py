#!/usr/bin/env python
"""Compare a built wheel with the committed tree: every file git tracks under a package folder
must be in the wheel. The package folders are read off the tree, not off setup.py: hwsim/ and
every other top-level folder with an __init__.py, installed as hwsim.<folder> (sim/ ->
hwsim/sim/, configs/ -> hwsim/configs/, ...), so a folder dropped from setup.py's ROOTS fails.

    python .ci/check_wheel.py dist/hwsim-0.1.0-py3-none-any.whl

Prints each missing file and exits 1 if any; files in the wheel that git does not track (a stray
local file) are listed as a note.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(wheel: str) -> int:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, check=True, capture_output=True,
                             text=True).stdout.split()
    folders = sorted({p.partition("/")[0] for p in tracked if p.count("/") == 1
                      and p.endswith("/__init__.py")})
    folder_to_package = {f: "hwsim" if f == "hwsim" else f"hwsim/{f}" for f in folders}
    tracked = [p for p in tracked if p.partition("/")[0] in folder_to_package]
    expected = set()
    for path in tracked:
        top, _, rest = path.partition("/")
        expected.add(f"{folder_to_package[top]}/{rest}")
    with zipfile.ZipFile(wheel) as zf:
        shipped = {name for name in zf.namelist() if not name.startswith("hwsim-")}  # not .dist-info
    missing, untracked = sorted(expected - shipped), sorted(shipped - expected)
    for name in untracked:
        print(f"note: in the wheel but not tracked by git: {name}")
    for name in missing:
        print(f"MISSING from the wheel: {name}")
    print(f"{Path(wheel).name}: {len(shipped)} files, {len(expected)} tracked under "
          f"{', '.join(f'{f}/' for f in folders)}; {len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
