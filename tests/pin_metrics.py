"""Write tests/pinned/<config>.json: the `--json` object of every shipped run config, as the
model stood before the machine-model rebuild (issue 10, item 8). Run once, by hand, and commit;
tests/test_regression.py compares every later run against these files.

    python tests/pin_metrics.py
"""
import json
import sys
from pathlib import Path

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.pipeline import evaluate

OUT = Path(__file__).parent / "pinned"


def main(names: list[str]) -> None:
    OUT.mkdir(exist_ok=True)
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        if names and path.stem not in names:
            continue
        doc = evaluate(load_config(path)).to_json()
        doc.pop("hwsim_version", None)
        (OUT / f"{path.stem}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        print(path.stem)


if __name__ == "__main__":
    main(sys.argv[1:])
