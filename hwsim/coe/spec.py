"""`scenario: {kind: coe, ...}`: Composition of Experts with model switching (hwsim.coe)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from hwsim.spec import Spec


class CoESpec(Spec):
    """A stream of requests over a Composition of Experts: every expert is the workload's model
    with its own weights (Samba-CoE: router and experts all derived from Llama2-7B, arXiv
    2405.07518 section II), all of them held in the memory level `store`, as many as fit in HBM
    resident there; a router picks one expert per request; a request whose expert is not in HBM
    first copies it in (model switching), evicting the least recently used one."""
    kind: Literal["coe"] = "coe"
    experts: int = Field(gt=0, le=100_000, description="experts of the composition (each the "
                         "workload's model)")
    store: str = Field(default="ddr", description="the memory level holding every expert (SN40L: "
                       "ddr; a GPU node: host)")
    router: bool = Field(default=True, description="a router model (the workload's model, resident "
                         "in HBM) reads each prompt before the expert runs")
    requests: int = Field(default=200, gt=0, le=100_000, description="requests in the stream, "
                          "served one after another")
    prompt_tokens: int = Field(default=128, gt=0, le=1_000_000, description="prompt of each "
                               "request (assumed)")
    output_tokens: int = Field(default=20, gt=0, le=1_000_000, description="tokens each request "
                               "generates (20: the paper's Fig. 1)")
    routing: Literal["uniform", "zipf"] = Field(default="uniform", description="how the router's "
                                                "choices spread over the experts (assumed)")
    zipf_a: float = Field(default=1.1, gt=1, le=10, description="zipf exponent when routing: zipf")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    hbm_utilization: float = Field(default=0.9, gt=0, le=1, description="share of HBM for weights "
                                   "and KV (vLLM's gpu_memory_utilization default, 0.9)")
    resident_experts: int | None = Field(default=None, gt=0, le=100_000, description="experts kept "
                                         "in HBM at once; default: as many as fit")
