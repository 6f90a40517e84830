"""Silicon area of a device, per component, from cited 45 nm cell areas scaled by node.

What is counted (per device, in mm²):
- NPU: the PE array (one multiplier + one adder + `PE_REGISTERS` pipeline registers per PE, at
  the workload's dtype: an array that runs fp16 is built from fp16 MACs), the vector lanes (same
  datapath per lane) and the scratchpad SRAM. Control, NoC/wiring, clock tree, I/O and the HBM
  PHY are not counted, so this is a standard-cell lower bound: TPUv1's measured matrix unit is
  ~6x our int8 PE area (tests/test_energy_area.py keeps that bracket honest).
- PIM: the logic a PIM adds to the DRAM dies: `macs_per_bank` MACs (+ one accumulator register)
  per bank and a global buffer of one DRAM row per channel (Newton's channel-wide input-vector
  buffer, which a GWRITE fills with one row's worth of the vector). The DRAM arrays themselves
  are not counted (they exist without PIM), nor the density penalty of logic built in a DRAM
  process (no verified figure).
- GPU: the die area from the datasheet (`GPUSpec.die_area_mm2`), never node-scaled.
- Memory levels: HBM stacks on the package, by their footprint (hwsim.hw.memory: stacks x the
  timing preset's stack footprint, or the level's `area_mm2`); off-package DDR/flash and links
  are not counted. A GPU's HBM stacks are not counted (its spec gives the die only).

Everything at 45 nm, then multiplied by `hwsim.hw.technology.area_factor(tech_node_nm)`
(Stillmaker & Baas 2017, table nodes only).
"""
from __future__ import annotations

from hwsim.hw.technology import area_factor

# Multiplier / adder area at 45 nm in um² by operand type [Horowitz, ISSCC 2014, energy/area
# table: 8b mult 282, 32b mult 3495, 16b FP mult 1640, 32b FP mult 7700; 8b add 36, 16b add 67,
# 32b add 137, 16b FP add 1360, 32b FP add 4184 um²; seen as reproduced in Gholami et al., "A
# Survey of Quantization Methods for Efficient Neural Network Inference" (2021), Fig. 15].
# bf16 takes the fp16 figures and fp8 the int8 figures [unverified: not in the table].
MULT_AREA_UM2_45NM = {"fp32": 7700.0, "fp16": 1640.0, "bf16": 1640.0, "int8": 282.0, "fp8": 282.0}
ADD_AREA_UM2_45NM = {"fp32": 4184.0, "fp16": 1360.0, "bf16": 1360.0, "int8": 36.0, "fp8": 36.0}

# One flip-flop bit at 45 nm: 5.98 um² [Aladdin register model, as tabulated in
# Accelergy-Project/accelergy-library-plug-in library/aladdin/aladdin_register.csv (45 nm, width 1)].
REGISTER_AREA_UM2_PER_BIT_45NM = 5.98

# Registers per PE: the stationary operand, the operand passed to the neighbour and the partial
# sum passed on (weight-stationary systolic PE; TPUv1's PE as described by Jouppi et al.,
# ISCA 2017) [our modelling choice; the same count is used for OS/IS].
PE_REGISTERS = 3

# SRAM macro area at 45 nm: Intel's 45 nm 153-Mbit SRAM test chip, 0.346 um² 6T cell, 119 mm²
# die (Intel, Jan 2006, as reported by PC Pro "Intel declares itself on 45nm track"), i.e.
# 119 mm² / (153 Mibit / 8) = 6.22 mm² per MiB [computed; whole die incl. pads and test logic,
# so an upper bound for a macro; Mbit taken as 2^20 bits: unverified]. The cells alone are 47%
# of it (0.346 um² x 153 x 2^20 = 55.5 mm²).
SRAM_MM2_PER_MIB_45NM = 119.0 / (153.0 / 8.0)

# Leakage power per mm² of standard-cell logic: Aladdin's TSMC 40 nm component tables give a
# 32-bit integer multiplier 0.0779 mW in 6,350 um² (12.3 mW/mm²), a 32-bit adder 2.25e-3 mW in
# 278 um² (8.1 mW/mm²) and one register bit 7.40e-5 mW in 5.98 um² (12.4 mW/mm²) [Shao et al.,
# "Aladdin", ISCA 2014, power_func.h cmos40 tables as reproduced in ashleyswang/pm-tech-lib
# py-script/test.c]. We take the multiplier's 12.3 mW/mm² for logic and, with no stored SRAM
# leakage figure, for SRAM macros too [assumed], and hold the density fixed across nodes (the
# leakage of a block scales with its node-scaled area only) [assumed: real density rises below
# 40 nm]. Our 45 nm areas are treated as 40 nm ones (the Aladdin node) [assumed].
LEAKAGE_MW_PER_MM2 = 0.0779 / (6350e-6)


def leakage_power_w(area_mm2: float) -> float:
    """Leakage of `area_mm2` of logic or SRAM at LEAKAGE_MW_PER_MM2."""
    return area_mm2 * LEAKAGE_MW_PER_MM2 * 1e-3


_DTYPE_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "int8": 8, "fp8": 8}


def dtype_bits(dtype: str) -> int:
    if dtype not in _DTYPE_BITS:
        raise KeyError(f"no area data for dtype {dtype!r}; known: {sorted(_DTYPE_BITS)}")
    return _DTYPE_BITS[dtype]


def mac_area_um2(dtype: str, node_nm: int = 45) -> float:
    """One multiplier + one adder of `dtype` at `node_nm`."""
    dtype_bits(dtype)
    return (MULT_AREA_UM2_45NM[dtype] + ADD_AREA_UM2_45NM[dtype]) * area_factor(node_nm)


def pe_area_um2(dtype: str, node_nm: int = 45, registers: int = PE_REGISTERS) -> float:
    """One processing element: a MAC plus `registers` registers of the dtype's width."""
    regs = registers * dtype_bits(dtype) * REGISTER_AREA_UM2_PER_BIT_45NM * area_factor(node_nm)
    return mac_area_um2(dtype, node_nm) + regs


def sram_area_mm2(nbytes: float, node_nm: int = 45) -> float:
    """SRAM macro area for `nbytes` at `node_nm` (linear in capacity)."""
    return nbytes / 2**20 * SRAM_MM2_PER_MIB_45NM * area_factor(node_nm)


def npu_area_breakdown_mm2(npu, dtype: str) -> dict[str, float]:
    """PE array, vector lanes and scratchpad of an `NPUSpec`, in mm²."""
    node = npu.tech_node_nm
    pe = pe_area_um2(dtype, node) * 1e-6
    return {"npu_pe_array": npu.cores * npu.rows * npu.cols * pe,
            "npu_vector": npu.cores * npu.vector_units * npu.vector_lanes * pe,
            "npu_sram": sram_area_mm2(npu.sram_bytes, node)}


def pim_area_breakdown_mm2(pim, channels: int, dtype: str) -> dict[str, float]:
    """Logic a bank-level PIM adds to `channels` DRAM channels, in mm²."""
    node = pim.tech_node_nm
    t = pim.dram
    macs = channels * t.banks_per_channel * pim.macs_per_bank
    return {"pim_macs": macs * pe_area_um2(dtype, node, registers=1) * 1e-6,
            "pim_buffers": sram_area_mm2(channels * t.row_bytes, node)}


def gpu_area_breakdown_mm2(gpu) -> dict[str, float]:
    return {"gpu_die": float(gpu.die_area_mm2)}


def device_area_breakdown_mm2(hardware, components, dtype: str) -> dict[str, float]:
    """Area per part of one device, counting only the `components` the mapper uses (a baseline
    that ignores a PIM does not pay for it): each kind's registered area function."""
    return hardware.device(tuple(components)).area_breakdown_mm2(dtype)
