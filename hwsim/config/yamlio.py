"""Read YAML so that errors can name a file, a dotted key and a line.

PyYAML silently keeps the last of two equal keys; here a duplicate key is an error. Every value's
line is recorded under its dotted path (``hardware.npu.freq_ghz``, ``workload.requests.0``).

Input is bounded before it can cost memory or time: a file must be UTF-8 text of at most
``MAX_FILE_BYTES``, nest at most ``MAX_DEPTH`` levels (PyYAML's composer recurses per level) and
expand to at most ``MAX_VALUES`` values once aliases are followed (a "billion laughs" file of
a few hundred bytes otherwise expands to 10^9 values). Numbers follow YAML 1.2 as well as
PyYAML's YAML 1.1: ``1e9`` and ``2.5e-3`` are floats, not strings.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from hwsim.errors import ConfigError

MAX_FILE_BYTES = 1 << 20        # 1 MiB: the shipped configs are a few KiB
MAX_DEPTH = 64                  # the shipped configs nest 5 levels
MAX_VALUES = 200_000            # mappings, lists and scalars after following aliases


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e9`` (no dot, or no exponent sign) as a float as YAML 1.2
    does (PyYAML's YAML 1.1 rules would make it the string '1e9'), and refusing to nest deeper
    than MAX_DEPTH before its recursive composer hits Python's recursion limit."""
    depth = 0

    def compose_node(self, parent, index):
        if self.depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"the YAML nests deeper than {MAX_DEPTH} levels",
                                              self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


FLOAT_1_2 = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")

if getattr(yaml, "__with_libyaml__", False):
    class _FastLoader(yaml.CSafeLoader):
        """libyaml's parser and composer (several times faster than PyYAML's), with Loader's
        float rule; used only after ``_check_depth`` (its composer recurses in C)."""
else:   # pragma: no cover (PyYAML built without libyaml)
    _FastLoader = None


def _check_depth(text: str, file: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH from libyaml's event stream, before composing."""
    depth = 0
    for event in yaml.parse(text, Loader=_FastLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"the YAML nests deeper than {MAX_DEPTH} levels", file=file,
                                  line=event.start_mark.line + 1)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


class Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper that quotes the strings ``Loader`` would read as floats ('1e9')."""


for _cls in (Loader, Dumper, _FastLoader):
    if _cls is not None:
        _cls.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_1_2, list("-+0123456789"))


def load_scalar(text: str) -> Any:
    """One YAML value as `--set KEY=VALUE` writes it (`1e9` a float, `true` a bool, `[1, 2]` a
    list). Bounded like a file; a YAMLError is the caller's to handle."""
    return parse_yaml(text, "--set")[0] if text.strip() else None


class SourceMap(dict):
    """Dotted key -> (file, line) of where the value was written."""

    def locate(self, dotted: str) -> tuple[str | None, int | None]:
        key = dotted
        while key:
            if key in self:
                return self[key]
            key = key.rpartition(".")[0]
        return (None, None)


class _Walk:
    """Node tree -> plain Python data, with sources, duplicate-key check and bounds."""

    def __init__(self, file: str, sources: SourceMap):
        self.file, self.sources = file, sources
        self.constructor = Loader("")
        self.values = 0

    def __call__(self, node: yaml.Node, path: str, depth: int = 0) -> Any:
        self.values += 1
        line = node.start_mark.line + 1
        if self.values > MAX_VALUES:
            raise ConfigError(f"the YAML expands to more than {MAX_VALUES:,} values (aliases "
                              "repeating aliases?); hwsim reads at most that many",
                              file=self.file, line=line, key=path or None)
        if depth > MAX_DEPTH:
            raise ConfigError(f"the YAML nests deeper than {MAX_DEPTH} levels (a recursive alias?)",
                              file=self.file, line=line, key=path or None)
        self.sources[path] = (self.file, line)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, (str, int, float, bool)):
                    raise ConfigError("keys must be plain names", file=self.file,
                                      line=key_node.start_mark.line + 1, key=path or None)
                key = str(key)
                child = f"{path}.{key}" if path else key
                if key in out:
                    raise ConfigError(f"duplicate key '{key}' (first set on line {self.sources[child][1]})",
                                      file=self.file, key=child, line=key_node.start_mark.line + 1)
                out[key] = self(value_node, child, depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self(v, f"{path}.{i}" if path else str(i), depth + 1) for i, v in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: str) -> Any:
        try:
            return self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:   # e.g. a bad !!timestamp
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"cannot read value: {problem}", file=self.file,
                              line=node.start_mark.line + 1, key=path or None) from None


def _check_expanded_size(root: yaml.Node, file: str) -> None:
    """Count the values the node graph expands to, each shared (aliased) node once per use but
    computed once: a billion-laughs file is refused in microseconds, before it is expanded."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise ConfigError("a recursive alias (a value that contains itself)", file=file,
                              line=node.start_mark.line + 1)
        on_path.add(key)
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) \
            else node.value if isinstance(node, yaml.SequenceNode) else []
        total = 1 + sum(size(c) for c in children)
        on_path.discard(key)
        if total > MAX_VALUES:
            raise ConfigError(f"the YAML expands to more than {MAX_VALUES:,} values (aliases "
                              "repeating aliases?); hwsim reads at most that many", file=file,
                              line=node.start_mark.line + 1)
        sizes[key] = total
        return total

    size(root)


def parse_yaml(text: str, file: str, prefix: str = "") -> tuple[Any, SourceMap]:
    """Parse YAML text; return the data and where each dotted key was written."""
    sources = SourceMap()
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError(f"{len(text):,} characters is more than hwsim reads "
                          f"({MAX_FILE_BYTES:,}); a config is a few KiB", file=file)
    loader = None
    try:
        try:
            if _FastLoader is None:
                raise yaml.YAMLError("no libyaml")
            _check_depth(text, file)
            loader = _FastLoader(text)
            root = loader.get_single_node()
        except yaml.YAMLError:   # reported by the pure-Python loader, whose messages name lines
            if loader is not None:
                loader.dispose()
                loader = None
            loader = Loader(text)
            root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context
        raise ConfigError(problem if "nests deeper" in str(problem) else f"YAML syntax error: {problem}",
                          file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML syntax error: {' '.join(str(exc).split())}", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        return {}, sources
    _check_expanded_size(root, file)
    data = _Walk(file, sources)(root, prefix)
    return data, sources


def read_text(path: Path) -> str:
    """A file's text: a missing, unreadable, too large or non-UTF-8 file is a ConfigError."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a file", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", file=str(path)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"larger than {MAX_FILE_BYTES:,} bytes, the most hwsim reads; a config "
                          "is a few KiB", file=str(path))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                          "save it as UTF-8", file=str(path)) from None


def read_yaml(path: Path, prefix: str = "") -> tuple[Any, SourceMap]:
    """Read a YAML file; a missing, unreadable or non-UTF-8 file is a ConfigError."""
    return parse_yaml(read_text(path), str(path), prefix)
