"""Shipped YAML: run configs, the model zoo (``models/``) and hardware presets (``presets/``)."""
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
MODELS_DIR = CONFIG_DIR / "models"
PRESETS_DIR = CONFIG_DIR / "presets"
SWEEPS_DIR = CONFIG_DIR / "sweeps"
