"""Energy per operation and per byte moved, from cited tables.

45 nm figures: M. Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014, as tabulated by Pedram et al. and reproduced in many surveys:
fp16 add 0.4 pJ, fp16 mult 1.1 pJ; fp32 add 0.9 pJ, mult 3.7 pJ; int8 add 0.03 pJ, mult 0.2 pJ;
int32 add 0.1 pJ, mult 3.1 pJ; SRAM 64-bit access: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ.
DRAM: HBM2 3.9 pJ/bit (O'Connor et al., "Fine-Grained DRAM", MICRO 2017; the same figure is in
Accelergy's hwcomponents-cacti DRAM table).

The tables are at 45 nm; `mac_pj`, `add_pj` and `sram_pj_per_byte` take a technology node and
scale by Stillmaker & Baas (``hwsim.hw.technology``; 45 nm returns Horowitz's numbers unchanged).
DRAM energy per bit is not scaled with the logic node: it is set by the DRAM process and the I/O
path, and each memory spec states its own.

Energy is reported per component (hwsim.hw.registry.ENERGY_BUCKETS, the buckets kinds may
charge): `compute` (MACs and vector ops; on a GPU all dynamic core energy), `sram` (on-chip
scratchpad), `dram` (off-chip DRAM/HBM traffic over the channel bus), `flash` (reads from a
flash memory level), `ram` and `disk` (an edge device's main memory and storage), `pim` (work
inside a PIM device: bank row reads, activates and PIM MACs), `link` (device-to-device) and
`static` (idle/leakage power over the makespan).
"""
from __future__ import annotations

from hwsim.hw.technology import energy_factor

# pJ per multiply-accumulate (one mult + one add) at 45 nm, by operand type [Horowitz 2014].
MAC_PJ_45NM = {"fp32": 3.7 + 0.9, "fp16": 1.1 + 0.4, "bf16": 1.1 + 0.4, "int8": 0.2 + 0.03,
               "fp8": 0.2 + 0.03}

# pJ per add (the energy we charge one vector-unit operation: norms, softmax, activations) at
# 45 nm [Horowitz 2014].
ADD_PJ_45NM = {"fp32": 0.9, "fp16": 0.4, "bf16": 0.4, "int8": 0.03, "fp8": 0.03}

# pJ per byte read from an SRAM of the given size (64-bit access / 8 bytes) [Horowitz 2014].
SRAM_PJ_PER_BYTE_45NM = {8 * 1024: 10 / 8, 32 * 1024: 20 / 8, 1024 * 1024: 100 / 8}

HBM2_PJ_PER_BIT = 3.9      # [O'Connor et al. MICRO 2017]

# Eyeriss energy per 16-bit access relative to one 16-bit MAC: MAC 1, register file 1, array
# hop (inter-PE) 2, global buffer 6, DRAM 200 [Chen, Emer & Sze, "Eyeriss: A Spatial Architecture
# for Energy-Efficient Dataflow for CNNs", ISCA 2016, normalized-cost figure (figure number
# unverified), 65 nm; seen as the relative `mem_hier` cost tuple in shreyas1998/nn_dataflow
# test_draco.py and in Accelergy-Project/timeloop pat-public/src/pat/pat.cpp (DRAM 200/16 bits)]
EYERISS_RELATIVE_COST = {"mac": 1.0, "rf": 1.0, "array": 2.0, "glb": 6.0, "dram": 200.0}

def eyeriss_relative_energy(accesses: dict[str, float]) -> float:
    """Energy in units of one 16-bit MAC: sum over levels of 16-bit accesses x relative cost."""
    unknown = set(accesses) - set(EYERISS_RELATIVE_COST)
    if unknown:
        raise KeyError(f"no Eyeriss cost for {sorted(unknown)}; levels: {list(EYERISS_RELATIVE_COST)}")
    return sum(n * EYERISS_RELATIVE_COST[level] for level, n in accesses.items())


def mac_pj(dtype: str, node_nm: int = 45) -> float:
    """pJ per MAC of `dtype` at `node_nm` (Horowitz 45 nm x Stillmaker & Baas energy factor)."""
    return MAC_PJ_45NM[dtype] * energy_factor(node_nm)


def add_pj(dtype: str, node_nm: int = 45) -> float:
    """pJ per add (one vector-unit op) of `dtype` at `node_nm`."""
    return ADD_PJ_45NM[dtype] * energy_factor(node_nm)


def energy_components_j(**pj: float) -> dict[str, float]:
    """Per-component energies given in pJ, as joules (zero components dropped)."""
    return {k: float(v) * 1e-12 for k, v in pj.items() if v}


def sram_pj_per_byte(sram_bytes: float, node_nm: int = 45) -> float:
    """Energy per byte of the smallest tabulated SRAM at least as large as `sram_bytes`
    (the 1 MB entry for anything larger: a banked large SRAM reads one bank at a time),
    scaled from 45 nm to `node_nm`."""
    for size in sorted(SRAM_PJ_PER_BYTE_45NM):
        if sram_bytes <= size:
            return SRAM_PJ_PER_BYTE_45NM[size] * energy_factor(node_nm)
    return SRAM_PJ_PER_BYTE_45NM[max(SRAM_PJ_PER_BYTE_45NM)] * energy_factor(node_nm)
