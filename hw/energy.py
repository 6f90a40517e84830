"""Energy per operation and per byte moved, from cited tables.

45 nm figures: M. Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014, as tabulated by Pedram et al. and reproduced in many surveys:
fp16 add 0.4 pJ, fp16 mult 1.1 pJ; fp32 add 0.9 pJ, mult 3.7 pJ; int8 add 0.03 pJ, mult 0.2 pJ;
int32 add 0.1 pJ, mult 3.1 pJ; SRAM 64-bit access: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ.
DRAM: HBM2 3.9 pJ/bit (O'Connor et al., "Fine-Grained DRAM", MICRO 2017; the same figure is in
Accelergy's hwcomponents-cacti DRAM table).
"""
from __future__ import annotations

# pJ per multiply-accumulate (one mult + one add) at 45 nm, by operand type [Horowitz 2014].
MAC_PJ_45NM = {"fp32": 3.7 + 0.9, "fp16": 1.1 + 0.4, "bf16": 1.1 + 0.4, "int8": 0.2 + 0.03,
               "fp8": 0.2 + 0.03}

# pJ per add (the energy we charge one vector-unit operation: norms, softmax, activations) at
# 45 nm [Horowitz 2014].
ADD_PJ_45NM = {"fp32": 0.9, "fp16": 0.4, "bf16": 0.4, "int8": 0.03, "fp8": 0.03}

# pJ per byte read from an SRAM of the given size (64-bit access / 8 bytes) [Horowitz 2014].
SRAM_PJ_PER_BYTE_45NM = {8 * 1024: 10 / 8, 32 * 1024: 20 / 8, 1024 * 1024: 100 / 8}

HBM2_PJ_PER_BIT = 3.9      # [O'Connor et al. MICRO 2017]


def sram_pj_per_byte(sram_bytes: float) -> float:
    """Energy per byte of the smallest tabulated SRAM at least as large as `sram_bytes`
    (the 1 MB entry for anything larger: a banked large SRAM reads one bank at a time)."""
    for size in sorted(SRAM_PJ_PER_BYTE_45NM):
        if sram_bytes <= size:
            return SRAM_PJ_PER_BYTE_45NM[size]
    return SRAM_PJ_PER_BYTE_45NM[max(SRAM_PJ_PER_BYTE_45NM)]
