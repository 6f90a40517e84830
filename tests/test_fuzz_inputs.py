"""Property: no input crashes hwsim. Every shipped run config and sweep spec, mutated at random
(keys deleted, duplicated, added; values swapped for other types, inf, NaN, huge, tiny,
negative, booleans, text; random nesting; random bytes; other encodings), gives exit code 0 or
2 — never 1 ("internal error"), never a traceback, never an exception escaping the CLI.

Each case runs in this process through click's CliRunner: `hwsim show` for run configs (load,
presets, validation) and `hwsim sweep --limit 0` for sweep specs (spec, base, every axis value
checked against the base). A small share of the run configs that load are also simulated, with
their model cut to one layer per pipeline stage so that a case stays cheap, and their metrics
must be finite. HWSIM_FUZZ_CASES sets the number of cases of each test (default: 1,500 configs
and 500 sweep specs, about a minute on 2 cores).
"""
from __future__ import annotations

import copy
import math
import os
import tempfile
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.cli import main
from hwsim.configs import CONFIG_DIR, SWEEPS_DIR
from hwsim.errors import ConfigError

CASES = int(os.environ.get("HWSIM_FUZZ_CASES", "0"))
CONFIG_CASES = CASES or 1500
SWEEP_CASES = CASES // 3 if CASES else 500
SIMULATE_ONE_IN = 8       # one in this many loadable run configs is also simulated

RUN_CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
SWEEP_SPECS = sorted(SWEEPS_DIR.glob("*.yaml"))


def _resolved(path: Path) -> dict:
    """The config with presets expanded and defaults filled in: mutations then reach every field
    of every spec, not only the keys the file names."""
    from hwsim.config.loader import load_config
    return load_config(path).model_dump(mode="json")


RAW = {p: yaml.safe_load(p.read_text()) for p in RUN_CONFIGS}
RESOLVED = {p: _resolved(p) for p in RUN_CONFIGS}
SWEEP_RAW = {p: yaml.safe_load(p.read_text()) for p in SWEEP_SPECS}

SCALARS = st.one_of(
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1e308, 1e-300, 0, 0.0, -1, -0.5, 1, 2,
                     3, 7, 64, 0.5, 1.5, 10**12, 2**63, -2**63, 10**30, True, False, None, "", "64",
                     "1e9", "fast", "../../x", "/tmp/x", "~", "nan", "inf", "fp16", "ws", "csv",
                     "list", "sharegpt", "zipf", "cnn", "transformer", "npu_only", "neupims",
                     "gpu", "fits_memory", "area_mm2 <= 800", "2**2**2**2**2**2", "'a' * 10**12",
                     "throughput_tokens_per_s", "x" * 300, [], {}, [1, 2], {"a": 1}]),
    st.integers(min_value=-10**6, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)


def _paths(node, prefix=()):
    """Every path (tuple of keys and indices) in a tree of dicts and lists."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _get(node, path):
    for p in path:
        node = node[p]
    return node


def _fresh(value):
    """A copy of a drawn constant: the sampled lists and dicts are shared between examples, and a
    later mutation inside one must not change (or make a cycle through) the constant itself."""
    return copy.deepcopy(value)


@st.composite
def mutated_tree(draw, tree):
    tree = copy.deepcopy(tree)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(tree))
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "nest", "wrap",
                                   "copy"]))
        if not path:
            if op in ("replace", "wrap"):
                tree = _fresh(draw(SCALARS)) if op == "replace" else [tree]
            continue
        parent, key = _get(tree, path[:-1]), path[-1]
        if op == "replace":
            parent[key] = _fresh(draw(SCALARS))
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "batch", "tp", "name", "key", "values", "zip",
                                         "preset", "kind", "path", "distribution"]))] = _fresh(draw(SCALARS))
        elif op == "nest":
            depth = draw(st.sampled_from([1, 3, 70]))
            value = parent[key]
            for _ in range(depth):
                value = [value] if draw(st.booleans()) else {"k": value}
            parent[key] = value
        elif op == "wrap":
            parent[key] = [parent[key]]
        elif op == "copy":           # another key's value here (right shape, wrong place)
            parent[key] = copy.deepcopy(_get(tree, draw(st.sampled_from(paths))))
    return tree


@st.composite
def file_bytes(draw, tree):
    """A mutated tree as YAML, then maybe mutated as text or bytes."""
    text = yaml.safe_dump(draw(mutated_tree(tree)), sort_keys=False, allow_unicode=True)
    op = draw(st.sampled_from(["none", "none", "none", "duplicate_line", "delete_line", "bytes",
                               "utf16", "latin1", "truncate", "alias_bomb"]))
    lines = text.splitlines(keepends=True) or [""]
    if op == "duplicate_line":
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
    elif op == "delete_line":
        del lines[draw(st.integers(0, len(lines) - 1))]
    text = "".join(lines)
    data = text.encode("utf-8")
    if op == "bytes":
        i = draw(st.integers(0, len(data)))
        data = data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]
    elif op == "utf16":
        data = text.encode("utf-16")
    elif op == "latin1":
        data = (text + "# caf\u00e9\n").encode("latin-1", errors="replace")
    elif op == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif op == "alias_bomb":
        data += (b"\nbomb0: &b0 [x, x, x, x, x, x, x, x, x]\n"
                 + b"".join(b"bomb%d: &b%d [" % (i, i) + b", ".join([b"*b%d" % (i - 1)] * 9) + b"]\n"
                            for i in range(1, 9)))
    return data


def _assert_clean(result, what: str):
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{what}: exception escaped: {result.exception!r}\n{output}"
    assert result.exit_code in (0, 2), f"{what}: exit {result.exit_code}\n{output}"
    assert "Traceback" not in output and "internal error" not in output, f"{what}:\n{output}"


def _simulate(path: Path) -> None:
    """A loadable config, cut to one layer per pipeline stage, simulates or fails with a
    ConfigError; its metrics are finite numbers."""
    from hwsim.config.loader import load_config
    from hwsim.outputs import check_finite
    from hwsim.pipeline import evaluate
    try:
        cfg = load_config(path)
    except ConfigError:      # the cut itself may not fit (n_layers not a multiple of pp)
        return
    try:
        check_finite(evaluate(cfg).to_json())
    except ConfigError:
        pass


def _cheap(tree: dict) -> dict:
    """One layer per pipeline stage (a model named by preset becomes {preset, n_layers}), so
    that a simulated case costs milliseconds."""
    if not isinstance(tree, dict):
        return tree
    baselines = tree.get("baselines") if isinstance(tree.get("baselines"), dict) else {}
    for system in [tree, *baselines.values()]:
        wl = system.get("workload") if isinstance(system, dict) else None
        if not isinstance(wl, dict):
            continue
        pp = wl.get("pp", 1)
        layers = pp if isinstance(pp, int) and not isinstance(pp, bool) and 0 < pp <= 8 else 1
        if isinstance(wl.get("model"), str) and wl.get("kind", "transformer") == "transformer":
            wl["model"] = {"preset": wl["model"], "n_layers": layers}
        elif isinstance(wl.get("model"), dict) and "n_layers" in wl["model"]:
            wl["model"]["n_layers"] = layers
        scenario = system.get("scenario")       # serving: a few requests
        arrivals = scenario.get("arrivals") if isinstance(scenario, dict) else None
        if isinstance(arrivals, dict):
            arrivals["num_requests"] = 12
            for lengths in (arrivals.get("prompt"), arrivals.get("output")):
                if isinstance(lengths, dict):
                    lengths["max_tokens"] = 64
    return tree


FUZZ_SETTINGS = dict(deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))


@settings(max_examples=CONFIG_CASES, **FUZZ_SETTINGS)
@given(st.data())
def test_mutated_run_configs_exit_0_or_2(data):
    source = data.draw(st.sampled_from(RUN_CONFIGS))
    tree = data.draw(st.sampled_from([RAW[source], RESOLVED[source]]))
    raw = data.draw(file_bytes(tree))
    # drawn before running, so that what is drawn never depends on how a case ran (a case that
    # is slow under load must replay the same draws: hypothesis refuses "flaky" strategies)
    simulate = data.draw(st.integers(0, SIMULATE_ONE_IN - 1)) == 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / source.name      # beside the config: its relative paths do not resolve,
        path.write_bytes(raw)               # which is one more bad input
        result = CliRunner().invoke(main, ["show", str(path)])
        _assert_clean(result, f"show {source.name}: {raw[:2000]!r}")
        if result.exit_code == 0 and simulate:
            cheap = _cheap(yaml.load(raw.decode("utf-8-sig"), Loader=_loader()))
            path.write_text(yaml.safe_dump(cheap, sort_keys=False))
            _simulate(path)


def _loader():
    from hwsim.config.yamlio import Loader
    return Loader


@settings(max_examples=SWEEP_CASES, **FUZZ_SETTINGS)
@given(st.data())
def test_mutated_sweep_specs_exit_0_or_2(data):
    source = data.draw(st.sampled_from(SWEEP_SPECS))
    raw = data.draw(file_bytes(SWEEP_RAW[source]))
    with tempfile.TemporaryDirectory() as tmp:
        # The spec's `base: ../neupims.yaml` resolves against its folder: give it one.
        (Path(tmp) / "neupims.yaml").write_bytes((CONFIG_DIR / "neupims.yaml").read_bytes())
        sweeps = Path(tmp) / "sweeps"
        sweeps.mkdir()
        path = sweeps / source.name
        path.write_bytes(raw)
        result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(Path(tmp) / "out"),
                                           "--limit", "0", "--quiet", "--jobs", "1"])
        _assert_clean(result, f"sweep {source.name}: {raw[:2000]!r}")
