"""Read YAML so that errors can name a file, a dotted key and a line.

PyYAML silently keeps the last of two equal keys; here a duplicate key is an error. Every value's
line is recorded under its dotted path (``hardware.npu.freq_ghz``, ``workload.requests.0``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hwsim.errors import ConfigError


class SourceMap(dict):
    """Dotted key -> (file, line) of where the value was written."""

    def locate(self, dotted: str) -> tuple[str | None, int | None]:
        key = dotted
        while key:
            if key in self:
                return self[key]
            key = key.rpartition(".")[0]
        return (None, None)


def _walk(node: yaml.Node, loader: yaml.SafeLoader, path: str, file: str, sources: SourceMap) -> Any:
    sources[path] = (file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, (str, int, float, bool)):
                raise ConfigError("keys must be plain names", file=file,
                                  line=key_node.start_mark.line + 1, key=path or None)
            key = str(key)
            child = f"{path}.{key}" if path else key
            if key in out:
                raise ConfigError(f"duplicate key '{key}' (first set on line {sources[child][1]})",
                                  file=file, key=child, line=key_node.start_mark.line + 1)
            out[key] = _walk(value_node, loader, child, file, sources)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(v, loader, f"{path}.{i}" if path else str(i), file, sources)
                for i, v in enumerate(node.value)]
    return loader.construct_object(node)


def parse_yaml(text: str, file: str, prefix: str = "") -> tuple[Any, SourceMap]:
    """Parse YAML text; return the data and where each dotted key was written."""
    sources = SourceMap()
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError(f"YAML syntax error: {exc.problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML syntax error: {exc}", file=file) from None
    finally:
        loader.dispose()
    if root is None:
        return {}, sources
    data = _walk(root, yaml.SafeLoader(""), prefix, file, sources)
    return data, sources


def read_yaml(path: Path, prefix: str = "") -> tuple[Any, SourceMap]:
    """Read a YAML file; a missing or unreadable file is a ConfigError."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", file=str(path)) from None
    return parse_yaml(text, str(path), prefix)
