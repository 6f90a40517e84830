"""Hardwired-Neurons LPU (HNLPU, Liu et al., "Hardwired-Neurons Language Processing Units as
General-Purpose Cognitive Substrates", arXiv 2508.16151 v2, Jan 2026; cited below as [HN] with
section, table or figure): an LLM's weights embedded in the metal wires of 16 chips, so that no
weight is ever read from a memory.

The machine ([HN] section 4, Fig. 9): 16 chips on a logical 4 x 4 row-column fully connected
fabric (a CXL 3.0 x16 link from each chip to the 3 others of its row and the 3 others of its
column); per chip an HN array (the hardwired weights of its slice of the model), a VEX unit
(attention, norms, SwiGLU, residuals, sampling), a 320 MB on-chip Attention Buffer holding the KV
cache, and 8 HBM stacks for the embedding table and the KV entries the buffer cannot hold.

Hardwired neurons ([HN] 3.1, Fig. 4): each output neuron accumulates its inputs bit-serially
(LSB first), grouped by the 16 FP4 weight values, then multiplies the 16 sums by constants. A
block of HNs therefore takes one token every ``activation_bits`` cycles and nothing else uses it:

    hn_ns(tokens, k) = tokens x activation_bits / clock + (activation_bits + ceil(log2 k)) / clock

the second term being one token's latency through the bit-serial carry-save tree (the tree depth
over the fan-in k [assumed reading of Fig. 3/4]).

VEX ([HN] 4.3): "32 cached KV-heads per cycle" per chip, read as 32 cached (head, position)
K or V vectors per cycle; the other vector work at `vex_elements_per_cycle` [assumed]:

    vex_attention_ns = entries / (vex_kv_heads_per_cycle x clock)
    vex_vector_ns    = elements / (vex_elements_per_cycle x clock)

Fabric ([HN] 4.2-4.3, Appendix A): the collectives are built from the Interconnect Engine's
Reduce, Broadcast and Gather. An all-reduce of N bytes over a group of p chips is a reduce to a
root then a broadcast (2 link crossings); the root rotates over tokens, so each chip sends on
average

    all_reduce_egress(p, N) = 2 N (p - 1) / p,   reduce_egress(p, N) = N (p - 1) / p,
    all_gather_egress(p, c) = c (p - 1)              (c: the chunk each chip contributes)

over its p - 1 links of that row or column; one crossing costs `link_latency_ns` ([HN] 4.2: "<100
ns", 128 GB/s per x16 link).

Area ([HN] 2.2, 3.1, Table 1): a cell-embedded FP4 constant-MAC needs `cmac_transistors` (200+) at
`transistor_density_mtr_per_mm2` (138 MTr/mm2, high-density 5 nm); metal embedding is
`metal_embedding_density_gain` (15x) denser:

    mm2_per_weight = cmac_transistors / (transistor_density_mtr_per_mm2 x 1e6) / gain
    hn_array_mm2   = hardwired weights of the chip x mm2_per_weight

The other blocks' areas are [HN] Table 1's post-layout figures; the Attention Buffer's per MB.

Power ([HN] Table 1, post-layout at the evaluated workload): each block's power is drawn by every
chip for the whole iteration (static power); HBM traffic adds `hbm_pj_per_bit`. The paper's
system power (6.9 kW, Table 2) exceeds 16 x 308.39 W by 1.97 kW that the paper does not break
down; it is not added here (no constant stands in for it).

Economics (`Economics`, [HN] section 7.5, Appendix B, Table 5): NRE = the shared mask layers
(60 of 70, including every EUV layer) once + the 10 metal-embedding DUV layers per chip + design
and development; recurring cost per chip from the wafer price, dies per wafer and Murphy yield at
the die area, packaging, HBM and system integration; cost per token and carbon over a lifetime.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from pydantic import Field, model_validator

from hwsim.hw.cost import OpCost
from hwsim.hw.memory import MemoryLevel
from hwsim.spec import Spec
from hwsim.workloads.ops import Op, OpKind

@functools.cache
def _load_model(name: str):
    import yaml

    from hwsim.configs import MODELS_DIR
    from hwsim.workloads.models import ModelSpec
    return ModelSpec(**yaml.safe_load((MODELS_DIR / f"{name}.yaml").read_text()))


BUFFER_LEVEL = "attention_buffer"
HBM_LEVEL = "hbm"
ROW_PORTS = "cxl_row"
COL_PORTS = "cxl_col"


class HNLPUSpec(Spec):
    """One HNLPU system (its chips and fabric): see the module docstring; constants in the preset
    (configs/presets/hnlpu-gpt-oss-120b.yaml) with their sources."""
    model: str = Field(description="the model hardwired in the chips' metal (configs/models/); the "
                       "workload must run this model")
    chips: int = Field(gt=0)
    grid_rows: int = Field(gt=0)
    grid_cols: int = Field(gt=0)
    process_nm: int = Field(gt=0, description="a label (no scaling from it)")
    clock_ghz: float = Field(gt=0)
    stages_per_layer: int = Field(gt=0, description="intra-layer pipeline stages: the machine holds "
                                  "stages x layers sequences in flight")
    activation_bits: int = Field(gt=0, le=64, description="bits of an activation, fed bit-serially")
    vex_kv_heads_per_cycle: float = Field(gt=0)
    vex_elements_per_cycle: float = Field(gt=0)
    link_gb_per_s: float = Field(gt=0, description="one x16 CXL link, each direction")
    link_latency_ns: float = Field(ge=0)
    attention_buffer_mb: float = Field(gt=0, description="per chip (1e6 bytes)")
    attention_buffer_tb_per_s: float = Field(gt=0, description="per chip")
    hbm_stacks_per_chip: int = Field(gt=0)
    hbm_gb_per_stack: float = Field(gt=0)
    hbm_gb_per_s_per_stack: float = Field(gt=0)
    hbm_pj_per_bit: float = Field(gt=0)
    # area
    cmac_transistors: float = Field(gt=0)
    transistor_density_mtr_per_mm2: float = Field(gt=0)
    metal_embedding_density_gain: float = Field(gt=0)
    vex_mm2: float = Field(ge=0)
    control_mm2: float = Field(ge=0)
    attention_buffer_mm2_per_mb: float = Field(gt=0)
    interconnect_mm2: float = Field(ge=0)
    hbm_phy_mm2: float = Field(ge=0)
    # power per chip
    hn_array_w: float = Field(ge=0)
    vex_w: float = Field(ge=0)
    control_w: float = Field(ge=0)
    attention_buffer_w: float = Field(ge=0)
    interconnect_w: float = Field(ge=0)
    hbm_phy_w: float = Field(ge=0)
    economics: "EconomicsSpec | None" = Field(default=None, description="cost and carbon constants")

    @model_validator(mode="after")
    def _model_is_shipped(self):
        from hwsim.configs import MODELS_DIR
        if not (MODELS_DIR / f"{self.model}.yaml").is_file():
            names = sorted(p.stem for p in MODELS_DIR.glob("*.yaml"))
            raise ValueError(f"no model '{self.model}' in configs/models/ (one of: {', '.join(names)})")
        m = _load_model(self.model)
        if m.moe is None:
            raise ValueError(f"model '{self.model}': the HNLPU dataflow maps a Mixture-of-Experts "
                             "model (experts spread over the chips)")
        if m.moe.n_experts % self.chips:
            raise ValueError(f"chips ({self.chips}) must divide the model's {m.moe.n_experts} experts")
        if m.n_heads % self.grid_cols or m.d_model % self.grid_rows:
            raise ValueError(f"grid_cols ({self.grid_cols}) must divide the {m.n_heads} heads and "
                             f"grid_rows ({self.grid_rows}) the model width {m.d_model}")
        return self

    @model_validator(mode="after")
    def _grid_is_the_chips(self):
        if self.grid_rows * self.grid_cols != self.chips:
            raise ValueError(f"grid_rows x grid_cols ({self.grid_rows} x {self.grid_cols}) must be "
                             f"the chips ({self.chips})")
        return self

    # ---- derived ---------------------------------------------------------------------------
    @property
    def model_spec(self):
        return _load_model(self.model)

    @property
    def mm2_per_weight(self) -> float:
        return self.cmac_transistors / (self.transistor_density_mtr_per_mm2 * 1e6) \
            / self.metal_embedding_density_gain

    @property
    def slots(self) -> int:
        """Sequences the pipeline holds ([HN] 5.2: 6 stages x 36 layers = 216)."""
        return self.stages_per_layer * self.model_spec.n_layers

    @property
    def buffer_bytes_per_chip(self) -> float:
        return self.attention_buffer_mb * 1e6

    @property
    def hbm_bytes_per_chip(self) -> float:
        return self.hbm_stacks_per_chip * self.hbm_gb_per_stack * 1e9

    @property
    def hbm_bw_per_chip(self) -> float:
        """bytes/ns"""
        return self.hbm_stacks_per_chip * self.hbm_gb_per_s_per_stack

    @property
    def buffer_bw_per_chip(self) -> float:
        """bytes/ns"""
        return self.attention_buffer_tb_per_s * 1e3

    @property
    def row_port_bw(self) -> float:
        """bytes/ns a chip sends to the rest of its row (grid_cols - 1 links)"""
        return (self.grid_cols - 1) * self.link_gb_per_s

    @property
    def col_port_bw(self) -> float:
        return (self.grid_rows - 1) * self.link_gb_per_s

    @property
    def chip_power_w(self) -> float:
        return (self.hn_array_w + self.vex_w + self.control_w + self.attention_buffer_w
                + self.interconnect_w + self.hbm_phy_w)


def hardwired_weights(m) -> dict[str, int]:
    """Weights in the HN arrays of all chips ([HN] 5.1, Appendix A): every linear layer of every
    decoder layer (attention with biases, the experts, norms' gains), the router replicated on each
    chip, and the unembedding (its 16 column slices, Fig. 10 (I); hardwired [assumed]: an
    HBM-resident 1.16 GB head could not keep up with one token per stage). The input embedding
    table is in HBM ([HN] 4.2) and not hardwired."""
    layers = sum(m.layer_params(i) for i in range(m.n_layers))
    router = m.d_model * m.moe.n_experts * m.n_layers if m.moe else 0
    return {"layers": layers, "router_copies": router, "unembedding": m.vocab * m.d_model}


def hardwired_weights_total(spec: HNLPUSpec) -> int:
    w = hardwired_weights(spec.model_spec)
    return w["layers"] + (spec.chips - 1) * w["router_copies"] + w["unembedding"]


def chip_area_mm2(spec: HNLPUSpec) -> dict[str, float]:
    """One chip (the closed form of the module docstring): the HN array holds 1/chips of the
    hardwired weights."""
    return {"hn_array": hardwired_weights_total(spec) / spec.chips * spec.mm2_per_weight,
            "vex": spec.vex_mm2, "control": spec.control_mm2,
            "attention_buffer": spec.attention_buffer_mb * spec.attention_buffer_mm2_per_mb,
            "interconnect": spec.interconnect_mm2, "hbm_phy": spec.hbm_phy_mm2}


# ---- op costs ----------------------------------------------------------------------------------

def hn_ns(spec: HNLPUSpec, tokens: int, fan_in: int) -> tuple[float, float]:
    """(busy, latency) of an HN block taking `tokens` tokens of fan-in `fan_in` (docstring)."""
    busy = tokens * spec.activation_bits / spec.clock_ghz
    latency = (spec.activation_bits + math.ceil(math.log2(max(fan_in, 2)))) / spec.clock_ghz
    return busy, latency


def vex_attention_ns(spec: HNLPUSpec, entries: float) -> float:
    return entries / (spec.vex_kv_heads_per_cycle * spec.clock_ghz)


def vex_vector_ns(spec: HNLPUSpec, elements: float) -> float:
    return elements / (spec.vex_elements_per_cycle * spec.clock_ghz)


def all_reduce_egress(p: int, nbytes: float) -> float:
    return 2.0 * nbytes * (p - 1) / p


def reduce_egress(p: int, nbytes: float) -> float:
    return nbytes * (p - 1) / p


def all_gather_egress(p: int, chunk: float) -> float:
    return chunk * (p - 1)


def hnlpu_op_cost(device, op: Op, where=None) -> OpCost:
    """The registry's view of an op on the system: matmuls on the HN arrays (no bytes of weights
    read), attention and vector ops on one chip's VEX over its 1/chips share. The mapper builds
    finer tasks (per chip share, fabric collectives) with the functions above."""
    spec: HNLPUSpec = device.spec("hnlpu")
    if op.matmul is not None:
        busy, lat = hn_ns(spec, op.matmul.m, op.matmul.k)
        return OpCost(compute_ns=busy, bytes_by_level={}, energy_j=0.0, roofline_ns=busy,
                      latency_ns=lat, engine="hn_array")
    if op.kind.is_attention:
        a = op.attention
        entries = sum(a.context_lens) * a.kv_heads / spec.chips
        t = max(vex_attention_ns(spec, entries), op.kv_read_bytes / spec.chips / spec.buffer_bw_per_chip)
        return OpCost(compute_ns=t, bytes_by_level={BUFFER_LEVEL: op.kv_read_bytes / spec.chips},
                      energy_j=0.0, roofline_ns=t, engine="vex")
    t = vex_vector_ns(spec, op.elements)
    return OpCost(compute_ns=t, bytes_by_level={}, energy_j=0.0, roofline_ns=t, engine="vex")


# ---- economics ---------------------------------------------------------------------------------

class EconomicsSpec(Spec):
    """Cost and carbon constants ([HN] 7.5, Appendix B, Table 5; optimistic-pessimistic ranges as
    [low, high]); the preset cites each."""
    mask_set_usd: tuple[float, float]
    euv_layers: int = Field(ge=0)
    duv_layers: int = Field(ge=0)
    euv_cost_weight: float = Field(gt=0, description="one EUV reticle in DUV-reticle units")
    embedding_layers: int = Field(ge=0, description="DUV mask layers made per chip (metal embedding)")
    design_usd: tuple[float, float] = Field(description="architecture + verification + physical + IP")
    wafer_usd: float = Field(gt=0)
    wafer_diameter_mm: float = Field(gt=0)
    defect_density_per_cm2: float = Field(ge=0)
    package_test_usd_per_wafer: tuple[float, float]
    hbm_usd_per_gb: tuple[float, float]
    system_integration_usd_per_chip: tuple[float, float]
    facility_usd_per_mw: float = Field(ge=0)
    network_usd_per_chip: float = Field(ge=0)
    pue: float = Field(ge=1)
    electricity_usd_per_kwh: float = Field(ge=0)
    lifetime_years: float = Field(gt=0)
    embodied_kgco2e_per_module: float = Field(ge=0)
    grid_kgco2e_per_kwh: float = Field(ge=0)

    @model_validator(mode="after")
    def _ranges_ordered(self):
        for name in ("mask_set_usd", "design_usd", "package_test_usd_per_wafer", "hbm_usd_per_gb",
                     "system_integration_usd_per_chip"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name}: [low, high] with 0 <= low <= high, got [{lo}, {hi}]")
        if self.embedding_layers > self.duv_layers:
            raise ValueError("embedding_layers cannot exceed duv_layers")
        return self


HNLPUSpec.model_rebuild()


def dies_per_wafer(die_mm2: float, diameter_mm: float) -> int:
    """Gross dies on a round wafer (the standard approximation: pi d^2 / 4A - pi d / sqrt(2A))."""
    d = diameter_mm
    return max(0, int(math.pi * d * d / (4 * die_mm2) - math.pi * d / math.sqrt(2 * die_mm2)))


def murphy_yield(die_mm2: float, defects_per_cm2: float) -> float:
    """Murphy's model: ((1 - exp(-A D)) / (A D))^2."""
    ad = die_mm2 / 100.0 * defects_per_cm2
    return 1.0 if ad == 0 else ((1 - math.exp(-ad)) / ad) ** 2


@dataclass(frozen=True)
class Economics:
    """Costs of one HNLPU system ([low, high] in USD) and its carbon, from `EconomicsSpec`."""
    mask_shared_usd: tuple[float, float]
    mask_embedding_usd: tuple[float, float]
    design_usd: tuple[float, float]
    die_usd: float
    good_dies_per_wafer: float
    recurring_usd_per_chip: tuple[float, float]
    facility_usd: float
    initial_capex_usd: tuple[float, float]
    respin_usd: tuple[float, float]
    cost_per_mtoken_usd: tuple[float, float]
    carbon_tco2e: float

    @property
    def nre_usd(self) -> tuple[float, float]:
        return tuple(a + b + c for a, b, c in zip(self.mask_shared_usd, self.mask_embedding_usd,
                                                  self.design_usd))


def economics(spec: HNLPUSpec, e: EconomicsSpec, die_mm2: float, power_w: float,
              tokens_per_s: float) -> Economics:
    """The closed forms of [HN] Appendix B for one system of `spec.chips` chips of `die_mm2`
    drawing `power_w` at `tokens_per_s`."""
    units = e.duv_layers + e.euv_layers * e.euv_cost_weight          # normalised DUV reticles
    share_embed = e.embedding_layers / units
    mask_shared = tuple(m * (1 - share_embed) for m in e.mask_set_usd)
    mask_embed = tuple(m * share_embed * spec.chips for m in e.mask_set_usd)
    gross = dies_per_wafer(die_mm2, e.wafer_diameter_mm)
    if gross == 0:
        raise ValueError(f"a {die_mm2:.0f} mm2 die does not fit a {e.wafer_diameter_mm:.0f} mm wafer")
    good = gross * murphy_yield(die_mm2, e.defect_density_per_cm2)
    die_usd = e.wafer_usd / good
    hbm_gb = spec.hbm_stacks_per_chip * spec.hbm_gb_per_stack
    recurring = tuple(die_usd + pt / good + h * hbm_gb + si for pt, h, si in
                      zip(e.package_test_usd_per_wafer, e.hbm_usd_per_gb, e.system_integration_usd_per_chip))
    facility = e.facility_usd_per_mw * power_w * e.pue / 1e6 + e.network_usd_per_chip * spec.chips
    design = e.design_usd
    capex = tuple(ms + me + d + r * spec.chips + facility for ms, me, d, r in
                  zip(mask_shared, mask_embed, design, recurring))
    respin = tuple(me + r * spec.chips for me, r in zip(mask_embed, recurring))
    hours = e.lifetime_years * 365 * 24
    energy_kwh = power_w * e.pue / 1e3 * hours
    electricity = energy_kwh * e.electricity_usd_per_kwh
    mtokens = tokens_per_s * hours * 3600 / 1e6
    per_mtoken = tuple((c + electricity) / mtokens for c in capex)
    carbon = (e.embodied_kgco2e_per_module * spec.chips + energy_kwh * e.grid_kgco2e_per_kwh) / 1e3
    return Economics(mask_shared, mask_embed, design, die_usd, good, recurring, facility, capex,
                     respin, per_mtoken, carbon)


# ---- registration ------------------------------------------------------------------------------

def _levels(spec: HNLPUSpec) -> list[MemoryLevel]:
    """The Attention Buffers (on-chip SRAM, their energy inside the chips' power) and the HBM of
    all chips."""
    n = spec.chips
    return [MemoryLevel(BUFFER_LEVEL, capacity_bytes=spec.buffer_bytes_per_chip * n,
                        peak_bw_gbps=spec.buffer_bw_per_chip * n, sustained_bw_gbps=spec.buffer_bw_per_chip * n,
                        energy_pj_per_bit=0.0, on_chip=False),
            MemoryLevel(HBM_LEVEL, capacity_bytes=spec.hbm_bytes_per_chip * n,
                        peak_bw_gbps=spec.hbm_bw_per_chip * n, sustained_bw_gbps=spec.hbm_bw_per_chip * n,
                        energy_pj_per_bit=spec.hbm_pj_per_bit, on_chip=False)]


def _area(spec: HNLPUSpec, device, dtype: str) -> dict[str, float]:
    return {f"hnlpu_{k}": v * spec.chips for k, v in chip_area_mm2(spec).items()}


def _power(spec: HNLPUSpec, device, dtype: str) -> float:
    return spec.chip_power_w * spec.chips


def _check_cases(datapath: str, device, op: Op, ctx):
    """`--check`: a matmul on the HN arrays is the bit-serial hardwired-neuron product with MXFP4
    weights (hw/kernels/mxfp4.py) against float64 on the dequantized weights; M, N capped at 16
    and 64, K at 512 (whole MX blocks). Other ops: no functional model here."""
    if op.matmul is None:
        return None
    from hwsim.hw.kernels.cases import KernelCase
    from hwsim.hw.kernels.mxfp4 import BLOCK, hn_bit_serial_gemm, quantize_mxfp4
    spec: HNLPUSpec = device.spec("hnlpu")
    bits = spec.activation_bits
    m, n = max(1, min(op.matmul.m, 16)), max(1, min(op.matmul.n, 64))
    k = max(BLOCK, min(op.matmul.k, 512) // BLOCK * BLOCK)

    def run(rng):
        x = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(m, k))
        codes, exp = quantize_mxfp4(rng.standard_normal((k, n)))
        from hwsim.hw.kernels.mxfp4 import dequantize_mxfp4
        return hn_bit_serial_gemm(x, codes, exp, bits), x.astype(float) @ dequantize_mxfp4(codes, exp)
    return KernelCase(str(op.kind.value), "hnlpu/hn_array",
                      f"hardwired neurons (bit-serial POPCNT per weight value, {bits}-bit inputs)",
                      f"int{bits} x mxfp4 -> exact", "int32", f"[{m}x{k}] @ [{k}x{n}]", run)


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

HNLPU_KINDS = (OpKind.MATMUL, OpKind.ROUTER, OpKind.ATTENTION_SCORE, OpKind.ATTENTION_CONTEXT,
               OpKind.NORM, OpKind.SOFTMAX, OpKind.ELEMENTWISE, OpKind.EMBEDDING)

register_component(ComponentKind(
    name="hnlpu", spec=HNLPUSpec, role="compute",
    summary="hardwired-neurons LPU: an LLM's weights in the metal of 16 chips on a row-column CXL "
            "fabric, KV cache in on-chip Attention Buffers and HBM (arXiv 2508.16151)",
    op_costs={k.value: hnlpu_op_cost for k in HNLPU_KINDS},
    area_mm2=_area, static_power_w=_power, energy_buckets=(), memory_levels=_levels,
    check_cases=_check_cases, check_unit=lambda datapath: f"hnlpu/{datapath or 'vex'}",
    weights_in_metal=True))
