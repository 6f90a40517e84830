"""YAML run configs: loading (duplicate keys rejected, line numbers kept), preset resolution,
validation into typed specs, and ``--set`` overrides."""
from hwsim.config.loader import load_config, resolve_config_dict
from hwsim.config.schema import RunConfig

__all__ = ["load_config", "resolve_config_dict", "RunConfig"]
