"""AttAcc: bank-level PIM in HBM3 stacks that runs the attention of batched decode beside a GPU.

Park et al., "AttAcc! Unleashing the Power of PIM for Batched Transformer-based Generative Model
Inference", ASPLOS'24 (doi 10.1145/3620665.3640422), and its released simulator
scale-snu/attacc_simulator (src/config.py, pim_ramulator_src/HBM3-PIM.cpp, attacc_bank.yaml;
research/pim_anchors.md section 3.1). An AttAcc unit is a board of HBM3 stacks with processing
units in every bank (AttAcc_bank); the KV cache of the batch lives in its stacks, the GPU sends
each decode step's query (and the new key and value) over the GPU-AttAcc interface and gets the
attention output back. The GEMMs (QKV, projection, FFN) stay on the GPU.

The bank datapath is hwsim.hw.pim's (NewtonSim's command model: GWRITE of the query into the
global buffer, tiles of one row open in every bank, a stream of all-bank MAC commands, READRES,
precharge; NeuPIMs' KV layout), on the AttAcc HBM3 device (hwsim.hw.dram preset `hbm3_attacc`:
HBM3_5.2Gbps, 2 pseudo-channels x 2 ranks x 4 bank groups x 4 banks = 64 banks per channel, 1 KB
rows). What is AttAcc's own:

- a MAC command every `comp_interval_cycles` = nCCDAB = 6 cycles: the power limit, which the
  simulator models by raising nCCDAB/nCCDSB from 4 to 6 (HBM3-PIM.cpp HBM3_5.2Gbps vs
  HBM3_5.2Gbps_NPC; README "Modeling AttAcc with a Power Constraint");
- `macs_per_bank` = 16 FP16 MACs, one 32 B column (BL8 x 32 DQ) per MAC command
  (trace_gen/gen_trace_attacc_bank.py: n_mac = prefetch 32 B / 2 B; the simulator's internal-
  bandwidth multiplier for AttAcc_bank without the power limit, ranks x bank groups x banks / 2 =
  16 per pseudo-channel (config.py BW_SCALE), is the same rate: a column per bank per tCCD_L).
  The trace generator's comment gives an all-bank MAC 8 tCK ("tCCDL x 2"); the Ramulator preset's
  nCCDAB (6) is what its timing enforces, and what we use;
- softmax on the stacks' buffer dies at the stacks' external bandwidth, one FLOP per byte
  (config.py: SOFTMAX_MEM_BW = 670.4 GB/s x stacks, SOFTMAX_FLOPS = the same number), so the
  scores never leave the AttAcc;
- KV placement: AttAcc deals (request, head) pairs over the channels (gen_trace_attacc_bank.py
  run_attention: n_head_per_hbm heads over 16 channels per stack); hwsim.hw.pim's cost functions
  use NeuPIMs' layout (4 heads' 128-element keys share a 1 KB row), so the mapper binds whole
  requests to channels: at batch 64 on 80 channels per unit, 16 channels idle (the PIM attention is
  under a tenth of the decode step, so this costs under 2% of it);
- the GPU-AttAcc interface: NVLink 3, 600 GB/s (config.py make_pim_config, InterfaceType.NVLINK3,
  as main.py uses it), 1.3 pJ/bit (config.py ENERGY_TABLE PIM 'comm' 10.4 pJ per byte, citing
  IEEE doc 10067395).

Internal bandwidth per channel = 64 banks x 32 B / (6 x 0.769 ns) = 443.9 GB/s against the
channel's 41.6 GB/s external: 10.7x. The simulator's analytical mode uses 9x with the power limit
(config.py BW_SCALE[True][BA]); its Ramulator mode uses nCCDAB 6, which is what we model.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from hwsim.hw.energy import add_pj
from hwsim.hw.pim import PIM_INTERNAL_PJ_PER_BIT, ChannelWork, PIMSpec, attention_on_channels
from hwsim.workloads.ops import Op, OpKind

# GPU-AttAcc interface energy: 10.4 pJ per byte (scale-snu/attacc_simulator src/config.py,
# ENERGY_TABLE['PIM'][*]['comm'], citing IEEE doc 10067395).
INTERFACE_PJ_PER_BIT = 10.4 / 8


class AttAccSpec(PIMSpec):
    """An AttAcc unit: bank-level PIM in the HBM3 stacks of memory level `level` (its channels are
    the PIM channels), plus the interface to the GPU. Fields as hwsim.hw.pim.PIMSpec."""
    timing: str = Field(default="hbm3_attacc", description="DRAM timing preset of the PIM stacks")
    level: str = Field(default="attacc", description="the memory level made of the AttAcc stacks")
    macs_per_bank: int = Field(default=16, gt=0)
    comp_interval_cycles: int | None = Field(default=6, gt=0, description="nCCDAB: cycles between "
                                             "all-bank MAC commands (6: power-limited, 4: not)")
    internal_pj_per_bit: float = Field(default=PIM_INTERNAL_PJ_PER_BIT, gt=0)
    interface_gbps: float = Field(default=600.0, gt=0, description="GPU<->AttAcc bandwidth per "
                                  "GPU, GB/s")
    interface_pj_per_bit: float = Field(default=INTERFACE_PJ_PER_BIT, gt=0)
    softmax_gbps_per_channel: float | None = Field(default=None, gt=0, description="buffer-die "
                                                   "softmax rate per channel (bytes and FLOPs per "
                                                   "ns); default: the channel's external bandwidth")


def softmax_on_channels(pim: AttAccSpec, level, op: Op, channel_of: np.ndarray, channels: int,
                        pairs: np.ndarray) -> list[ChannelWork]:
    """The softmax of each request's scores on the buffer dies of the stacks holding its KV
    (`channel_of[r]`; `pairs[r]`: its (query, key) pairs, the size of its score matrix). The
    scores come up from the banks (READRES) and the probabilities go back down (the context
    GEMV's GWRITE), both over the channel; the simulator charges softmax at the external
    bandwidth in bytes and in FLOPs (config.py SOFTMAX_MEM_BW, SOFTMAX_FLOPS), so a channel takes
    max(bytes, FLOPs) / rate. Energy: the FLOPs at an adder's energy; the bytes at the level's."""
    rate = pim.softmax_gbps_per_channel or level.peak_bw_gbps / channels
    weights = np.asarray(pairs, dtype=float)
    per_channel = np.bincount(channel_of, weights=weights, minlength=channels)
    total = float(weights.sum()) or 1.0
    nbytes_all = float(op.act_in_bytes + op.act_out_bytes)
    add = add_pj(op.dtype, pim.tech_node_nm)
    out = []
    for c in np.flatnonzero(per_channel):
        share = float(per_channel[c]) / total
        nbytes, flops = nbytes_all * share, op.flops * share
        ns = max(nbytes, flops) / rate
        energy = {"pim": flops * add * 1e-12, "dram": level.energy_j(nbytes)}
        out.append(ChannelWork(int(c), ns, nbytes, nbytes, 0.0, flops, energy, ns))
    return out


def interface_ns(pim: AttAccSpec, nbytes: float) -> float:
    return nbytes / pim.interface_gbps


def interface_energy_j(pim: AttAccSpec, nbytes: float) -> float:
    return nbytes * 8 * pim.interface_pj_per_bit * 1e-12


# ---- registration ------------------------------------------------------------------------------

def _attacc_area(spec: AttAccSpec, device, dtype: str) -> dict[str, float]:
    from hwsim.hw.area import pim_area_breakdown_mm2
    from hwsim.hw.pim import pim_channels
    parts = pim_area_breakdown_mm2(spec, pim_channels(spec, device), dtype)
    return {f"attacc_{part}": mm2 for part, mm2 in parts.items()}     # attacc_pim_macs, ..._buffers


def _attacc_static_power(spec: AttAccSpec, device, dtype: str) -> float:
    from hwsim.hw.area import leakage_power_w
    return leakage_power_w(sum(_attacc_area(spec, device, dtype).values()))


def _check_case(datapath: str, device, op, ctx):
    """`--check`: the bank-partitioned PIM attention GEMVs with their accumulation precision
    (hwsim.hw.kernels, as for NeuPIMs' `pim`) on the AttAcc banks; the buffer-die softmax has no
    functional model here."""
    from hwsim.hw.kernels.cases import op_case
    return op_case("attacc", device.hardware, op, ctx)


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

register_component(ComponentKind(
    name="attacc", spec=AttAccSpec, role="pim",
    summary="AttAcc: bank-level PIM in HBM3 stacks running decode attention (score, softmax, "
            "context) beside a GPU",
    op_costs={OpKind.ATTENTION_SCORE.value: attention_on_channels,
              OpKind.ATTENTION_CONTEXT.value: attention_on_channels,
              OpKind.SOFTMAX.value: softmax_on_channels},
    area_mm2=_attacc_area, static_power_w=_attacc_static_power, energy_buckets=("pim", "dram", "link"),
    check_cases=_check_case, check_unit=lambda datapath: "attacc"))
