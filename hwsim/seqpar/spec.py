"""`scenario: {kind: sequence_parallel, ...}`: one attention layer under sequence parallelism,
Ring-Attention or TokenRing (hwsim.seqpar, mappers/seqpar.py)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from hwsim.spec import Spec


class SequenceParallelSpec(Spec):
    """One attention layer's prefill of a `seq_len`-token sequence cut over `degree` devices of
    `hardware.topology` (the workload gives the model's heads, head dim and dtype; its batch and
    requests are not used)."""
    kind: Literal["sequence_parallel"] = "sequence_parallel"
    scheme: Literal["ring_attention", "tokenring"] = Field(description="ring_attention: K/V "
                                                           "blocks round a ring; tokenring: Q round "
                                                           "the ring, block outputs back to their "
                                                           "owners (hw/interconnect/seqpar.py)")
    degree: int = Field(ge=2, le=256, description="devices the sequence is cut over")
    seq_len: int = Field(gt=0, le=100_000_000, description="tokens of the sequence")
    causal: bool = Field(default=True, description="causal attention on a balanced (zigzag) "
                         "layout: every step computes half a full block")
