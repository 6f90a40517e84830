"""Read SCALE-Sim topology CSVs (scalesim-project/scale-sim-v2, topologies/).

Two forms, told apart by the header (SCALE-Sim picks by its `-i conv|gemm` flag instead):

    Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
    Layer, M, N, K,

Conv rows are read as SCALE-Sim reads them (topology_utils.py): the ifmap size already includes
any padding and the output size is ceil((H - R + stride) / stride) (``Conv.ceil_mode``); an
optional ninth number is the column stride (only equal strides are supported here); a layer
whose name contains "DP" is depthwise: SCALE-Sim splits it into `Channels` single-channel layers
with `Num Filter` filters each, i.e. a conv with groups = Channels and Channels x Num Filter
outputs. GEMM rows M, N, K become SCALE-Sim's conv with an M x K ifmap and a 1 x K filter
(``hwsim.hw.systolic.gemm_as_conv``).

Unlike SCALE-Sim (which drops the last field of every row, so a row without the trailing comma
silently loses its stride), the trailing comma is optional here; fields are trimmed, blank lines
and text after `#` are ignored. A bad row is a ``ConfigError`` naming the file, the line and the
column.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hwsim.input_error import ConfigError
from hwsim.workloads.ops import Conv

CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
                "Channels", "Num Filter", "Strides")
GEMM_COLUMNS = ("Layer", "M", "N", "K")


@dataclass(frozen=True)
class TopologyLayer:
    name: str
    conv: Conv
    line: int                                 # 1-based line in the file
    gemm: tuple[int, int, int] | None = None  # (M, N, K) for GEMM-form rows

    @property
    def is_depthwise(self) -> bool:
        return self.conv.is_depthwise


def _fields(raw: str) -> list[str]:
    text = raw.split("#", 1)[0].strip()
    fields = [f.strip() for f in text.split(",")]
    if fields and fields[-1] == "":
        fields.pop()                          # the trailing comma SCALE-Sim requires
    return fields


def _header_kind(fields: list[str], file: str, line: int) -> str:
    names = [f.lower() for f in fields]
    if len(names) >= 4 and names[1:4] == ["m", "n", "k"]:
        return "gemm"
    if len(names) >= 8 and "ifmap" in names[1] and "filter" in names[3]:
        return "conv"
    raise ConfigError("unrecognised topology header; expected SCALE-Sim's conv form "
                      f"'{', '.join(CONV_COLUMNS)},' or GEMM form '{', '.join(GEMM_COLUMNS)},'",
                      file=file, line=line)


def read_topology(path: str | Path, batch: int = 1) -> list[TopologyLayer]:
    """The layers of a SCALE-Sim topology CSV (``batch`` multiplies each conv's output pixels;
    SCALE-Sim itself is batch 1)."""
    file = str(path)
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise ConfigError("topology file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read topology file: {exc}", file=file) from None
    kind, columns, layers = None, (), []
    for lineno, raw in enumerate(lines, start=1):
        fields = _fields(raw)
        if not fields or fields == [""]:
            continue
        if kind is None:
            kind = _header_kind(fields, file, lineno)
            columns = GEMM_COLUMNS if kind == "gemm" else CONV_COLUMNS + ("Stride Width",)
            continue
        layers.append(_row(kind, fields, columns, file, lineno, batch))
    if kind is None:
        raise ConfigError("empty topology file (expected a header and at least one layer row)", file=file)
    if not layers:
        raise ConfigError("topology file has a header but no layer rows", file=file)
    return layers


def _row(kind: str, fields: list[str], columns: tuple[str, ...], file: str, line: int,
         batch: int) -> TopologyLayer:
    def fail(col: int, message: str):
        raise ConfigError(message, file=file, line=line, key=f"column {col + 1} ({columns[col]})")

    needed = len(columns) - (0 if kind == "gemm" else 1)
    if len(fields) < needed:
        fail(len(fields), f"missing value: a {kind} row has {needed} fields "
                          f"({', '.join(columns[:needed])}), this one has {len(fields)}")
    if len(fields) > len(columns):
        raise ConfigError(f"{len(fields)} fields, at most {len(columns)} expected "
                          f"({', '.join(columns)})", file=file, line=line,
                          key=f"column {len(columns) + 1}")
    name = fields[0]
    if not name:
        fail(0, "empty layer name")
    values = []
    for col in range(1, len(fields)):
        text = fields[col]
        try:
            value = int(text)
        except ValueError:
            fail(col, f"expected a positive integer, got {text!r}")
        if value <= 0:
            fail(col, f"expected a positive integer, got {value}")
        values.append(value)
    if kind == "gemm":
        m, n, k = values
        return TopologyLayer(name, Conv(in_h=m, in_w=k, in_c=1, out_c=n, kernel_h=1, kernel_w=k,
                                        batch=batch), line, gemm=(m, n, k))
    h, w, fh, fw, ch, nf, stride = values[:7]
    if len(values) == 8 and values[7] != stride:
        fail(8, f"row stride {stride} and column stride {values[7]} differ; only equal strides "
                "are supported")
    if fh > h:
        fail(3, f"filter height {fh} is larger than the ifmap height {h}")
    if fw > w:
        fail(4, f"filter width {fw} is larger than the ifmap width {w}")
    depthwise = "DP" in name
    conv = Conv(in_h=h, in_w=w, in_c=ch, out_c=ch * nf if depthwise else nf, kernel_h=fh,
                kernel_w=fw, stride=stride, padding=0, groups=ch if depthwise else 1,
                batch=batch, ceil_mode=True)
    return TopologyLayer(name, conv, line)
