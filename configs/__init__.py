"""Shipped YAML: run configs, the model zoo (``models/``), hardware presets (``presets/``), sweep
specs (``sweeps/``) and SCALE-Sim topologies (``topologies/``).

They install with the package, so a command can name one from any folder: ``hwsim run neupims``,
``hwsim sweep tiny``, ``hwsim scalesim --topology resnet18`` (``find`` below; ``hwsim list``
prints the names). Kept free of heavy imports: ``hwsim scalesim`` looks names up here.
"""
from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
MODELS_DIR = CONFIG_DIR / "models"
PRESETS_DIR = CONFIG_DIR / "presets"
SWEEPS_DIR = CONFIG_DIR / "sweeps"
TOPOLOGIES_DIR = CONFIG_DIR / "topologies"

# What `hwsim list KIND` prints: the folder and the file suffix of each kind of shipped file.
SHIPPED = {"configs": (CONFIG_DIR, ".yaml"), "models": (MODELS_DIR, ".yaml"),
           "presets": (PRESETS_DIR, ".yaml"), "sweeps": (SWEEPS_DIR, ".yaml"),
           "topologies": (TOPOLOGIES_DIR, ".csv")}
SINGULAR = {"configs": "config", "models": "model", "presets": "preset", "sweeps": "sweep spec",
            "topologies": "topology"}


def names(kind: str) -> list[str]:
    """The shipped files of a kind, by name (the file name without its suffix)."""
    folder, suffix = SHIPPED[kind]
    return sorted(p.stem for p in folder.glob(f"*{suffix}"))


def find(arg: str | Path, kind: str, option: str | None = None) -> Path:
    """The file a command argument names: an existing file wins; else a shipped file of `kind`
    by name (``neupims`` -> configs/neupims.yaml); else a ConfigError listing close names."""
    from hwsim.errors import ConfigError

    path = Path(arg)
    if _is(path, Path.is_file):
        return path
    if _is(path, Path.is_dir):
        raise ConfigError("is a folder, expected a file", file=str(arg), key=option)
    folder, suffix = SHIPPED[kind]
    shipped = folder / f"{arg}{suffix}"
    if path.name == str(arg) and _is(shipped, Path.is_file):   # a bare name, not a missing path
        return shipped
    if path.name != str(arg):                          # a path: the file is missing
        raise ConfigError("file not found", file=str(arg), key=option)
    import difflib
    close = difflib.get_close_matches(str(arg), names(kind), n=4, cutoff=0.5)
    hint = f"close names: {', '.join(close)}; " if close else ""
    raise ConfigError(f"no such file, nor a shipped {SINGULAR[kind]} of that name ({hint}"
                      f"`hwsim list {kind}` lists them)", file=str(arg), key=option)


def _is(path: Path, test) -> bool:
    """`path.is_file()` and the like, False for names the OS refuses (a NUL byte, too long)."""
    try:
        return test(path)
    except (OSError, ValueError):
        return False
