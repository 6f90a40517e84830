"""Device-to-device links and the collectives that run on them.

Ring all-reduce of a B-byte buffer over p devices sends 2(p-1)/p * B per device in 2(p-1) steps
(Patarasuk & Yuan, "Bandwidth optimal all-reduce algorithms for clusters of workstations",
JPDC 2009); an all-to-all in which a device sends S bytes to the others takes (p-1) steps
(pairwise exchange; Thakur, Rabenseifner & Gropp, IJHPCA 2005). A point-to-point transfer
between pipeline stages sends its buffer once, in one step.
"""
from __future__ import annotations

from pydantic import Field

from hwsim.spec import Spec
from hwsim.workloads.ops import OpKind


class LinkSpec(Spec):
    bw_gbps: float = Field(gt=0, description="per device, per direction")
    latency_us: float = Field(default=0.0, ge=0, description="per step")
    energy_pj_per_bit: float = Field(default=0.0, ge=0)


def collective_bytes_sent(kind: OpKind, group: int, nbytes: float) -> float:
    """Bytes one device puts on its link for the collective."""
    if group <= 1:
        return 0.0
    if kind == OpKind.ALL_REDUCE:
        return 2.0 * (group - 1) / group * nbytes
    return float(nbytes)  # all-to-all and p2p: the op records what this device sends


def collective_steps(kind: OpKind, group: int) -> int:
    if group <= 1:
        return 0
    if kind == OpKind.P2P:
        return 1
    return 2 * (group - 1) if kind == OpKind.ALL_REDUCE else group - 1
