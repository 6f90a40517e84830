"""Lower a Transformer decoder (dense or MoE) to the per-device ``OpGraph`` of one pass.

One pass is a prefill of every request's prompt, or one decode step (one new token per
request), or (phase ``mixed``: one iteration of a serving run) each request computing its
``requests.new_tokens`` on top of the ``context_lens`` already in its KV cache: a prompt, a chunk
of one (chunked prefill), or one token (decode), all in one batch. Parallelism, per replica:
- ``tp`` devices shard attention, the dense FFN, the LM head and each expert (Megatron-LM style:
  column-parallel QKV/up, row-parallel out/down, one all-reduce after each; Shoeybi et al. 2019).
- ``ep`` groups of ``tp`` devices each take ``batch / ep`` requests for attention (data parallel)
  and hold ``n_experts / ep`` experts; tokens travel to their experts' group and back by all-to-all
  (GShard, Lepikhin et al. 2020). The graph describes the device whose experts receive the most
  tokens, because that straggler sets the pace of the all-to-all.
- ``pp`` pipeline stages split the layers evenly; the requests are cut into ``pp`` micro-batches
  that flow through the stages one after another, so in steady state every stage works on some
  micro-batch all the time (GPipe, Huang et al. 2019; Megatron-LM's inference pipeline,
  Narayanan et al. SC'21). The graph is the last stage — its layers plus the final norm and the
  LM head, the heaviest stage — running every micro-batch, each after receiving its activations
  from the previous stage (a p2p transfer). The micro-batches are independent of one another on
  the stage: a mapper may run them one after another or interleave them. One pass of this graph
  is one iteration of the whole pipeline: every request gains a token.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from hwsim.spec import Spec
from hwsim.workloads.models import ModelSpec
from hwsim.workloads.ops import (DTYPE_BYTES, MAX_BATCH, WEIGHT_DTYPE_BYTES, Attention, Collective, MatMul, Op,
                                 OpGraph, OpKind, WorkloadInfo)
from hwsim.workloads.requests import RequestSpec
from hwsim.workloads.routing import (EPLBSpec, ExFlowSpec, RoutingSpec, exflow_layers, expert_placement,
                                    expert_token_counts)

# FLOPs per element of the vector ops. Counted as the arithmetic a straightforward kernel does:
# LayerNorm = mean (1 add) + variance (sub, mul, add) + normalise (sub, div... folded to mul)
# ≈ 5; RMSNorm = square, add, scale ≈ 3 (+1 for the gain); softmax = max, sub, exp, add, div = 5;
# GELU (tanh form) ≈ 8; SiLU(x) * y ≈ 5; RoPE = 2 muls + 1 add per element; residual add = 1;
# ReLU = one max per element (OPT).
EXFLOW_TOKEN_ID_BYTES = 4        # a generated token's id, int32 (assumed)

VECTOR_FLOPS_PER_ELEMENT = {"layernorm": 5, "rmsnorm": 4, "softmax": 5, "gelu": 8, "swiglu": 5,
                            "rope": 3, "add": 1, "topk": 1, "relu": 1}


class MTPSpec(Spec):
    """Multi-token prediction as speculative decoding (DeepSeek-V3 Technical Report, arXiv
    2412.19437, section 5.4.3): each decode step the model verifies `draft_tokens` tokens drafted
    by its MTP module(s) together with the next token (1 + draft_tokens query tokens per
    request), and the module drafts the next ones. With every draft accepted independently with
    probability p = `acceptance_rate` and drafts after a rejection discarded, a step yields
    1 + p + ... + p^k tokens per request in expectation (Leviathan et al., ICML 2023, eq. 1); one
    draft: 1 + p. The acceptance rate is an input: a property of the model and the text."""
    draft_tokens: int = Field(default=1, ge=1, le=8)
    acceptance_rate: float = Field(ge=0, le=1)

    @property
    def tokens_per_step(self) -> float:
        return math.fsum(self.acceptance_rate ** i for i in range(self.draft_tokens + 1))


class TransformerWorkload(Spec):
    """The `workload:` section of a run config for decoder LLMs."""

    kind: Literal["transformer"] = "transformer"
    model: ModelSpec
    phase: Literal["prefill", "decode", "mixed"]
    batch: int = Field(gt=0, le=MAX_BATCH, description="requests in the pass")
    requests: RequestSpec = Field(default_factory=RequestSpec,
                                  description="context lengths of the requests")
    dtype: Literal["fp16", "bf16", "fp32", "fp8", "int8"] = "fp16"
    attention_dtype: Literal["fp16", "bf16", "fp32", "fp8", "int8"] | None = Field(
        default=None, description="the KV cache and the attention score/context ops (default: "
        "dtype); e.g. INT8 weights and GEMM activations with BF16 attention")
    weight_dtype: Literal["fp16", "bf16", "fp32", "fp8", "int8", "mxfp4"] | None = Field(
        default=None, description="storage format of the linear layers' weights (the embedding "
        "table keeps `dtype`); None: `dtype`. mxfp4: 4.25 bits per weight (OCP MX v1.0)")
    tp: int = Field(default=1, gt=0, description="tensor-parallel devices per replica")
    ep: int = Field(default=1, gt=0, description="expert-parallel groups (MoE only)")
    pp: int = Field(default=1, gt=0, description="pipeline stages per replica, each with n_layers / pp layers")
    lm_head: bool = True
    routing: RoutingSpec = Field(default_factory=RoutingSpec)
    eplb: EPLBSpec = Field(default_factory=EPLBSpec, description="redundant experts and "
                           "shared-expert groups under expert parallelism (workloads/routing.py)")
    mtp: MTPSpec | None = Field(default=None, description="decode with multi-token prediction "
                                "(the model's MTP modules draft, the step verifies)")
    exflow: ExFlowSpec | None = Field(default=None, description="ExFlow's context-coherent "
                                      "expert parallelism and affinity-aware expert placement "
                                      "(workloads/routing.py ExFlowSpec); None: the standard "
                                      "dispatch and combine, experts placed contiguously")

    @model_validator(mode="after")
    def _parallelism_fits(self):
        m = self.model
        if m.n_heads % self.tp:
            raise ValueError(f"tp={self.tp} must divide n_heads={m.n_heads}")
        if m.kv_heads % self.tp and self.tp % m.kv_heads:
            raise ValueError(f"tp={self.tp} and n_kv_heads={m.kv_heads} must divide one another")
        if self.eplb.active and m.moe is None:
            raise ValueError("eplb needs a Mixture-of-Experts model")
        if self.ep > 1 or self.eplb.active:
            if m.moe is None:
                raise ValueError("ep > 1 needs a Mixture-of-Experts model")
            routed = self.ep - self.eplb.shared_expert_groups
            if routed < 1:
                raise ValueError(f"eplb.shared_expert_groups ({self.eplb.shared_expert_groups}) "
                                 f"must leave some of the ep={self.ep} groups for routed experts")
            if self.eplb.shared_expert_groups and not m.moe.n_shared:
                raise ValueError("eplb.shared_expert_groups needs a model with shared experts")
            if (m.moe.n_experts + self.eplb.redundant_experts) % routed:
                what = ("ep" if not self.eplb.active else
                        f"ep - shared_expert_groups = {routed}")
                raise ValueError(f"{what} must divide n_experts={m.moe.n_experts}"
                                 + (f" + redundant_experts={self.eplb.redundant_experts}"
                                    if self.eplb.redundant_experts else ""))
            if self.batch % self.ep:
                raise ValueError(f"ep={self.ep} must divide batch={self.batch}")
        if self.mtp is not None:
            if self.phase != "decode":
                raise ValueError("mtp drafts tokens in decode steps: it needs phase 'decode'")
            if m.mtp_modules < 1:
                raise ValueError(f"mtp needs a model with MTP modules (model.mtp_modules), "
                                 f"{m.name} has none")
            if self.pp > 1:
                raise ValueError("mtp is modelled without pipeline parallelism (pp = 1)")
        if self.pp > 1:
            if m.n_layers % self.pp:
                raise ValueError(f"pp={self.pp} must divide n_layers={m.n_layers}")
            if self.batch % (self.pp * self.ep):
                raise ValueError(f"pp={self.pp} micro-batches (x ep={self.ep}) must divide batch={self.batch}")
        if self.exflow is not None:
            if self.ep < 2:
                raise ValueError("exflow places experts over expert-parallel groups: it needs ep > 1")
            if self.phase != "decode":
                raise ValueError("exflow is modelled in decode (phase 'decode'): its context "
                                 "coherence replicates the prompts' processing on every device")
            if self.pp > 1 or self.mtp is not None or self.eplb.active:
                raise ValueError("exflow is modelled without pipeline parallelism, mtp and eplb")
            if self.routing.distribution == "balanced":
                raise ValueError("exflow needs per-token routes: routing.distribution uniform or "
                                 "zipf (balanced routing has none)")
        if (self.phase == "mixed") != (self.requests.new_tokens is not None):
            raise ValueError("phase 'mixed' needs requests.new_tokens, and requests.new_tokens "
                             "needs phase 'mixed'")
        return self

    def context_lens(self) -> np.ndarray:
        return self.requests.context_lens(self.batch)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class DeviceCoord:
    """Which device of a replica a graph describes: its pipeline stage and its expert-parallel
    group. Tensor-parallel ranks are not a coordinate: Megatron sharding gives every rank of a
    group the same shapes, so one graph stands for all ``tp`` of them."""
    stage: int
    expert_group: int


class _Builder:
    def __init__(self, w: TransformerWorkload, device: DeviceCoord | None = None):
        """`device`: the device whose graph to build; None = the one that sets the pace in the
        single-device model (the last pipeline stage, the expert group receiving most tokens)."""
        self.w, self.m = w, w.model
        self.b = DTYPE_BYTES[w.dtype]
        self.adtype = w.attention_dtype or w.dtype      # KV cache and attention ops
        self.kb = DTYPE_BYTES[self.adtype]
        self.wb = WEIGHT_DTYPE_BYTES[w.weight_dtype or w.dtype]    # bytes per linear-layer weight
        self.heads = self.m.n_heads // w.tp
        self.kv_heads = max(1, self.m.kv_heads // w.tp)
        self.device = device
        self.stage = w.pp - 1 if device is None else device.stage
        group = 0 if device is None else device.expert_group
        if not (0 <= self.stage < w.pp and 0 <= group < w.ep):
            raise ValueError(f"no device {device} in a replica with pp={w.pp}, ep={w.ep}")
        per_group = w.batch // w.ep
        all_ctx = w.context_lens()
        ctx = all_ctx[group * per_group:(group + 1) * per_group]
        if w.phase == "decode":
            step = 1 + (w.mtp.draft_tokens if w.mtp else 0)   # the next token plus the drafts
            self.all_query = np.full_like(ctx, step)
            self.all_attend = ctx + step        # cached tokens plus the new ones
            self.replica_query = np.full_like(all_ctx, step)
        elif w.phase == "mixed":               # new tokens on top of the cached ones
            all_new = w.requests.query_lens(w.batch)
            self.all_query = all_new[group * per_group:(group + 1) * per_group]
            self.all_attend = ctx + self.all_query
            self.replica_query = all_new
        else:
            self.all_query = ctx
            self.all_attend = ctx               # the prompt attends to itself (causal, unmasked count)
            self.replica_query = all_ctx
        per_stage = self.m.n_layers // w.pp
        self.stage_layers = range(self.stage * per_stage, (self.stage + 1) * per_stage)
        self.exflow = None
        if w.exflow is not None:                 # decode, pp = 1: one token per request
            self.replica_attend = all_ctx + 1
            self.moe_layers = tuple(i for i in self.stage_layers if self.m.is_moe_layer(i))
            x, moe = w.exflow, self.m.moe
            self.exflow = exflow_layers(w.routing, w.batch, moe.n_experts, moe.top_k,
                                        self.moe_layers, w.ep, x.placement, x.profile_tokens)
        self.graph: OpGraph | None = None
        self.last: str | None = None
        self.micro_batch(0)

    def micro_batch(self, j: int):
        """Make micro-batch j (a contiguous 1/pp of this device's requests) the current one."""
        size = len(self.all_query) // self.w.pp
        self.mb, self.prefix = j, (f"M{j}." if self.w.pp > 1 else "")
        self.query = self.all_query[j * size:(j + 1) * size]
        self.attend = self.all_attend[j * size:(j + 1) * size]
        self.tokens = int(self.query.sum())      # tokens of the micro-batch on this device
        per_group = len(self.replica_query) // self.w.ep
        by_group = self.replica_query[:per_group * self.w.ep].reshape(self.w.ep, per_group)
        # the micro-batch's tokens over every expert group
        self.replica_tokens = int(by_group[:, j * size:(j + 1) * size].sum())

    # -- helpers that append an op after the previous one --
    def add(self, op: Op, after: list[str] | None = None) -> str:
        if self.prefix:
            op = replace(op, name=self.prefix + op.name, micro_batch=self.mb)
        self.graph.add(op, after if after is not None else ([self.last] if self.last else []))
        self.last = op.name
        return op.name

    def matmul(self, name, layer, m, k, n, kind=OpKind.MATMUL, bias=None, expert=None, **extra):
        b = self.b
        bias = self.m.bias if bias is None else bias
        return Op(name=name, kind=kind, layer=layer, dtype=self.w.dtype, flops=2.0 * m * n * k,
                  weight_bytes=math.ceil((k * n + (n if bias else 0)) * self.wb), act_in_bytes=m * k * b,
                  act_out_bytes=m * n * b, matmul=MatMul(m, n, k), expert=expert, **extra)

    def vector(self, name, layer, elements, what, expert=None, in_elements=None, weight_bytes=0):
        b = self.b
        return Op(name=name, kind=_VECTOR_KIND[what], layer=layer, dtype=self.w.dtype,
                  flops=float(VECTOR_FLOPS_PER_ELEMENT[what] * elements), elements=elements,
                  weight_bytes=weight_bytes, act_in_bytes=(in_elements or elements) * b,
                  act_out_bytes=elements * b, expert=expert, function=what)

    def residual(self, name, layer, elements, inputs=2):
        """The residual add of `inputs` tensors of `elements`: its sum feeds the model's next norm
        (the next layer's first, or the final norm), which a serving stack may fuse it into."""
        return replace(self.vector(name, layer, elements, "add", in_elements=inputs * elements),
                       residual_into=self.m.norm)

    def norm(self, name, layer, rows, width, count=1):
        """`count` norms over `rows` rows of `width`: each also reads its own weights once
        (`ModelSpec.norm_params`), kept at activation precision as serving stacks keep them."""
        return self.vector(name, layer, count * rows * width, self.m.norm,
                           weight_bytes=count * self.m.norm_params(width) * self.b)

    def collective(self, name, layer, kind, group, nbytes):
        return Op(name=name, kind=kind, layer=layer, dtype=self.w.dtype, flops=0.0,
                  act_in_bytes=nbytes, act_out_bytes=nbytes,
                  collective=Collective(group=group, bytes=nbytes))

    # -- the graph --
    def info(self) -> WorkloadInfo:
        w, m, b = self.w, self.m, self.b
        layers = len(self.stage_layers)
        mtp_layers = m.mtp_modules if w.mtp is not None else 0        # MTP keeps a cache too
        # ExFlow: every device holds every request's context (context coherence)
        held = self.all_attend if self.exflow is None else self.replica_attend
        kv = (sum(int(np.sum(m.attended(i, held))) for i in self.stage_layers)
              + mtp_layers * int(self.all_attend.sum())) * m.kv_cache_elements(w.tp) * self.kb
        tokens = int(self.replica_query.sum())   # new tokens of the pass, every request
        if w.mtp is not None:                    # expected accepted tokens, not those verified
            tokens = w.batch * w.mtp.tokens_per_step
        return WorkloadInfo(
            model=m.name, phase=w.phase, batch=w.batch, tokens=tokens, n_layers=layers,
            tp=w.tp, ep=w.ep, pp=w.pp,
            weight_bytes_per_device=self._weight_bytes_per_device(), kv_bytes_per_device=kv)

    def build(self) -> OpGraph:
        w = self.w
        self.graph = OpGraph(self.info())
        for j in range(w.pp):
            self.micro_batch(j)
            self._stage_pass()
        return self.graph

    def _stage_pass(self):
        """One micro-batch through this device's layers (the whole model when pp = 1)."""
        w, m, b, T = self.w, self.m, self.b, self.tokens
        d = m.d_model
        if self.stage == 0:
            self.add(Op(name="embed", kind=OpKind.EMBEDDING, layer=-1, dtype=w.dtype, flops=0.0,
                        weight_bytes=T * d * b, act_out_bytes=T * d * b, elements=T * d))
        else:
            # The previous stage sends the micro-batches in order.
            self.add(self.collective("recv", -1, OpKind.P2P, 2, T * d * b),
                     after=[f"M{self.mb - 1}.recv"] if self.mb else [])
        for layer in self.stage_layers:
            if self.exflow is not None and m.is_moe_layer(layer):   # the tokens that are here
                self._exflow_view(self.exflow[self.moe_layers.index(layer)].tokens_in_ids)
            self._attention_block(layer)
            if m.is_moe_layer(layer):
                self._moe_block(layer)
            else:
                self._dense_ffn(layer)
        if self.stage < w.pp - 1:
            return                               # the next stage receives this micro-batch
        T = self.tokens
        self.add(self.norm("final_norm", -1, T, d))
        if w.lm_head:
            # logits for each request's last token; verifying drafts needs every new token's
            rows = T if w.mtp is not None else len(self.query)
            self.add(self.matmul("lm_head", -1, rows, d, _ceil_div(m.vocab, w.tp), bias=False))
        if w.mtp is not None:
            self._mtp_drafts()
        if self.exflow is not None:
            # context coherence: the new tokens (int32 ids, assumed) to every other device
            # (ExFlow README: an Allgather at the end of each forward), as direct sends
            self.add(self.collective("allgather_tokens", -1, OpKind.ALL_TO_ALL, w.ep,
                                     self.tokens * EXFLOW_TOKEN_ID_BYTES * (w.ep - 1) // w.tp))
        if self.exflow is not None:
            self._exflow_view(None)

    def _exflow_group(self) -> int:
        return 0 if self.device is None else self.device.expert_group

    def _exflow_view(self, ids):
        """ExFlow: make the tokens `ids[group]` (replica order, one per request) the current
        ones; None: back to the group's own requests."""
        if ids is None:
            self.micro_batch(0)
            return
        mine = ids[self._exflow_group()]
        self.query = np.ones(len(mine), dtype=self.all_query.dtype)
        self.attend = self.replica_attend[mine]
        self.tokens = len(mine)

    def _mtp_drafts(self):
        """The MTP module drafting the next `draft_tokens` tokens of every request, one depth
        after the other (DeepSeek-V3, arXiv 2412.19437, section 2.2): per depth, RMSNorm of the
        hidden state and of the embedded token, the projection M (2d -> d), one decoder layer
        (MoE, as the model's last) over one token per request with its own latent cache, the
        final norm and the shared LM head. Layer ids n_layers, n_layers + 1, ... are the drafts'
        (every depth runs the one module when the model has one)."""
        w, m, b = self.w, self.m, self.b
        d, rows = m.d_model, len(self.query)
        query, attend = self.query, self.attend
        tokens, replica_tokens = self.tokens, self.replica_tokens
        self.query = np.ones_like(query)
        self.tokens, self.replica_tokens = rows, self.replica_tokens // int(query[0])
        for depth in range(w.mtp.draft_tokens):
            layer = m.n_layers + depth
            self.attend = attend - int(query[0]) + 1 + depth
            self.add(self.norm(f"mtp{depth}.norms", layer, rows, d, count=2))
            self.add(self.matmul(f"mtp{depth}.proj", layer, rows, 2 * d, d, bias=False))
            self._attention_block(layer)
            if m.is_moe_layer(m.n_layers - 1):
                self._moe_block(layer)
            else:
                self._dense_ffn(layer)
            self.add(self.norm(f"mtp{depth}.final_norm", layer, rows, d))
            if w.lm_head:
                self.add(self.matmul(f"mtp{depth}.lm_head", layer, rows, d,
                                     _ceil_div(m.vocab, w.tp), bias=False))
        self.query, self.attend = query, attend
        self.tokens, self.replica_tokens = tokens, replica_tokens

    def _attention_block(self, i: int):
        if self.m.mla is not None:
            return self._latent_attention_block(i)
        w, m, b, T = self.w, self.m, self.b, self.tokens
        d, hd, H, KV = m.d_model, m.hd, self.heads, self.kv_heads
        x_in = self.last
        normed = self.add(self.norm(f"L{i}.norm1", i, T, d))
        qkv = self.matmul(f"L{i}.qkv", i, T, d, (H + 2 * KV) * hd,
                          kv_write_bytes=T * 2 * KV * hd * self.kb)
        self.add(qkv)
        if m.positions == "rope":
            self.add(self.vector(f"L{i}.rope", i, T * (H + KV) * hd, "rope"))
        attend = m.attended(i, self.attend)                  # capped at a sliding window
        attn = Attention(query_tokens=tuple(self.query.tolist()),
                         context_lens=tuple(attend.tolist()),
                         heads=H, kv_heads=KV, head_dim=hd)
        pairs = int(np.sum(self.query * attend))            # (query token, key) pairs
        kv_read = int(attend.sum()) * KV * hd * self.kb       # one of K or V
        self.add(Op(name=f"L{i}.attn_score", kind=OpKind.ATTENTION_SCORE, layer=i, dtype=self.adtype,
                    flops=2.0 * H * hd * pairs, act_in_bytes=T * H * hd * self.kb,
                    act_out_bytes=H * pairs * self.kb, kv_read_bytes=kv_read, attention=attn))
        self.add(self.vector(f"L{i}.softmax", i, H * pairs, "softmax"))
        self.add(Op(name=f"L{i}.attn_context", kind=OpKind.ATTENTION_CONTEXT, layer=i,
                    dtype=self.adtype, flops=2.0 * H * hd * pairs, act_in_bytes=H * pairs * self.kb,
                    act_out_bytes=T * H * hd * self.kb, kv_read_bytes=kv_read, attention=attn))
        self.add(self.matmul(f"L{i}.out_proj", i, T, H * hd, d))
        if w.tp > 1:
            self.add(self.collective(f"L{i}.allreduce_attn", i, OpKind.ALL_REDUCE, w.tp, T * d * b))
        if m.parallel_block:        # the FFN branch reads the same norm; one residual after both
            self._parallel = (x_in, normed, self.last)
            return
        self.add(self.residual(f"L{i}.residual1", i, T * d),
                 after=[self.last, x_in] if x_in else [self.last])

    def _latent_attention_block(self, i: int):
        """Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434, section 2.1; ModelSpec.mla).

        Both phases: norm; queries through the low-rank W_DQ (norm) and W_UQ; the new tokens'
        latent and RoPE key by W_DKV (written to the cache, then normed); RoPE on the RoPE parts.
        Prefill expands each token's latent to per-head keys and values with W_UK, W_UV and runs
        ordinary attention (head dim qk_nope + qk_rope for scores, v for values). Decode keeps
        the cache compressed (the paper's "absorbed" form, as FlashMLA runs it; in a serving
        pass too when every request brings one token): each head's
        query is mapped into the latent space by W_UK (one batched GEMM over the heads),
        attention runs over the cached latent + RoPE key as one shared KV head
        (kv_lora + qk_rope wide; its first kv_lora elements are the values), and W_UV maps each
        head's latent output back to v. The cache is read once per token: the score op reads it,
        the context op reads nothing more."""
        w, m, b, T = self.w, self.m, self.b, self.tokens
        a, d, H = m.mla, m.d_model, self.heads
        x_in = self.last
        normed = self.add(self.norm(f"L{i}.norm1", i, T, d))
        q_in = d
        if a.q_lora_rank:
            self.add(self.matmul(f"L{i}.q_down", i, T, d, a.q_lora_rank, bias=False))
            self.add(self.norm(f"L{i}.q_norm", i, T, a.q_lora_rank))
            q_in = a.q_lora_rank
        q = self.add(self.matmul(f"L{i}.q_up", i, T, q_in, H * a.qk_head_dim, bias=False))
        self.add(self.matmul(f"L{i}.kv_down", i, T, d, a.cache_dim, bias=False,
                             kv_write_bytes=T * a.cache_dim * self.kb), after=[normed])
        self.add(self.norm(f"L{i}.kv_norm", i, T, a.kv_lora_rank))
        self.add(self.vector(f"L{i}.rope", i, T * (H + 1) * a.qk_rope_head_dim, "rope"),
                 after=[q, self.last])
        pairs = int(np.sum(self.query * self.attend))
        cached = int(self.attend.sum())            # tokens in the attended cache
        # decode steps (FlashMLA; with MTP drafts too); prompts expand
        absorbed = bool(np.all(self.query == 1)) or self.w.phase == "decode"
        if absorbed:
            self.add(self._head_gemm(f"L{i}.q_absorb", i, T, a.qk_nope_head_dim, a.kv_lora_rank, H))
            attn = Attention(tuple(self.query.tolist()), tuple(self.attend.tolist()),
                             heads=H, kv_heads=1, head_dim=a.cache_dim)
            score_dim, value_dim, kv_read = a.cache_dim, a.kv_lora_rank, (cached * a.cache_dim * self.kb, 0)
        else:
            self.add(self.matmul(f"L{i}.kv_up", i, cached, a.kv_lora_rank,
                                 H * (a.qk_nope_head_dim + a.v_head_dim), bias=False))
            attn = Attention(tuple(self.query.tolist()), tuple(self.attend.tolist()),
                             heads=H, kv_heads=H, head_dim=a.qk_head_dim)
            score_dim, value_dim = a.qk_head_dim, a.v_head_dim
            kv_read = (cached * H * a.qk_head_dim * self.kb, cached * H * a.v_head_dim * self.kb)
        self.add(Op(name=f"L{i}.attn_score", kind=OpKind.ATTENTION_SCORE, layer=i, dtype=self.adtype,
                    flops=2.0 * H * score_dim * pairs, act_in_bytes=T * H * score_dim * self.kb,
                    act_out_bytes=H * pairs * self.kb, kv_read_bytes=kv_read[0], attention=attn))
        self.add(self.vector(f"L{i}.softmax", i, H * pairs, "softmax"))
        self.add(Op(name=f"L{i}.attn_context", kind=OpKind.ATTENTION_CONTEXT, layer=i,
                    dtype=self.adtype, flops=2.0 * H * value_dim * pairs, act_in_bytes=H * pairs * self.kb,
                    act_out_bytes=T * H * value_dim * self.kb, kv_read_bytes=kv_read[1], attention=attn))
        if absorbed:
            self.add(self._head_gemm(f"L{i}.v_absorb", i, T, a.kv_lora_rank, a.v_head_dim, H))
        self.add(self.matmul(f"L{i}.out_proj", i, T, H * a.v_head_dim, d, bias=False))
        if w.tp > 1:
            self.add(self.collective(f"L{i}.allreduce_attn", i, OpKind.ALL_REDUCE, w.tp, T * d * b))
        self.add(self.residual(f"L{i}.residual1", i, T * d),
                 after=[self.last, x_in] if x_in else [self.last])

    def _head_gemm(self, name: str, layer: int, m: int, k: int, n: int, heads: int) -> Op:
        """One [m, k] x [k, n] product per head, each with its own weights (MLA's absorbed W_UK
        and W_UV)."""
        b = self.b
        return Op(name=name, kind=OpKind.MATMUL, layer=layer, dtype=self.w.dtype,
                  flops=2.0 * m * n * k * heads, weight_bytes=math.ceil(k * n * heads * self.wb),
                  act_in_bytes=m * k * heads * b, act_out_bytes=m * n * heads * b,
                  matmul=MatMul(m, n, k, heads))

    def _dense_ffn(self, i: int):
        w, m, T = self.w, self.m, self.tokens
        if m.parallel_block:
            # x + attention(norm(x)) + FFN(norm(x)) (Falcon-7B's parallel_attn; GPT-J): the FFN
            # branches off the attention block's norm, one add of three tensors closes the layer
            x_in, normed, attn_end = self._parallel
            self.last = normed
        else:
            x_in = self.last
            self.add(self.norm(f"L{i}.norm2", i, T, m.d_model))
        self._ffn(f"L{i}.ffn", i, T, _ceil_div(m.d_ff, w.tp))
        if w.tp > 1:
            self.add(self.collective(f"L{i}.allreduce_ffn", i, OpKind.ALL_REDUCE, w.tp,
                                     T * m.d_model * self.b))
        if m.parallel_block:
            add = self.residual(f"L{i}.residual", i, T * m.d_model, inputs=3)
            self.add(replace(add, flops=2.0 * T * m.d_model),
                     after=[self.last, attn_end] + ([x_in] if x_in else []))
            return
        self.add(self.residual(f"L{i}.residual2", i, T * m.d_model), after=[self.last, x_in])

    def _ffn(self, prefix: str, i: int, tokens: int, d_ff: int, expert=None):
        d = self.m.d_model
        kind = self.m.ffn if expert is None else (self.m.moe.expert_ffn or self.m.ffn)
        swiglu = kind == "swiglu"
        self.add(self.matmul(f"{prefix}.up", i, tokens, d, (2 if swiglu else 1) * d_ff, expert=expert))
        self.add(self.vector(f"{prefix}.act", i, tokens * d_ff, kind, expert=expert,
                             in_elements=(2 if swiglu else 1) * tokens * d_ff))
        return self.add(self.matmul(f"{prefix}.down", i, tokens, d_ff, d, expert=expert))

    def _moe_block(self, i: int):
        w, m, b, T = self.w, self.m, self.b, self.tokens
        moe, d = m.moe, m.d_model
        x_in = self.last
        self.add(self.norm(f"L{i}.norm2", i, T, d))
        self.add(self.matmul(f"L{i}.router", i, T, d, moe.n_experts, kind=OpKind.ROUTER, bias=False))
        counts = expert_token_counts(w.routing, self.replica_tokens, moe.n_experts, moe.top_k, i)
        if self.exflow is not None:
            return self._exflow_moe(i, counts, x_in)
        slots, shared_tokens, busiest = self._expert_slots(counts)
        group = busiest if self.device is None else self.device.expert_group
        if w.ep > 1:
            # every token to its top_k experts, and to a shared-expert group when they have one
            copies = moe.top_k + (moe.n_shared and w.eplb.shared_expert_groups and 1)
            sent = T * copies * (w.ep - 1) // w.ep * d * b // w.tp
            self.add(self.collective(f"L{i}.dispatch", i, OpKind.ALL_TO_ALL, w.ep, sent))
        fork = self.last
        ends = []
        d_ff_shard = _ceil_div(moe.d_ff_expert, w.tp)
        for s in range(moe.n_shared):
            if shared_tokens[group]:
                self.last = fork
                ends.append(self._ffn(f"L{i}.shared{s}", i, shared_tokens[group], d_ff_shard,
                                      expert=-1 - s))
        for k, (e, tokens_e) in enumerate(slots[group]):
            if tokens_e:
                self.last = fork
                name = f"L{i}.expert{e}" + (f"#{k}" if w.eplb.redundant_experts else "")
                ends.append(self._ffn(name, i, tokens_e, d_ff_shard, expert=e))
        self.last = None
        if w.ep > 1:
            self.add(self.collective(f"L{i}.combine", i, OpKind.ALL_TO_ALL, w.ep, sent),
                     after=ends or [fork])
            ends = [self.last]
        self._moe_tail(i, ends, fork, x_in)

    def _moe_tail(self, i: int, ends: list[str], fork: str, x_in: str) -> None:
        """The end of MoE layer i: the TP all-reduce of the FFN outputs, then the residual add
        on the layer's tokens (`self.tokens`)."""
        w, d, b, T = self.w, self.m.d_model, self.b, self.tokens
        if w.tp > 1:
            self.add(self.collective(f"L{i}.allreduce_ffn", i, OpKind.ALL_REDUCE, w.tp, T * d * b),
                     after=ends or [fork])
            ends = [self.last]
        self.add(self.residual(f"L{i}.residual2", i, T * d), after=(ends or [fork]) + [x_in])

    def _exflow_moe(self, i: int, counts, x_in: str):
        """The rest of MoE layer i under ExFlow (ExFlowSpec): one all-to-all from where the
        tokens are to their experts (no combine with top-1; with top_k > 1 the other experts'
        outputs go to the first expert's device), then the layer's tokens are those whose first
        expert is here. Uniform destinations over the peers are assumed in the lowering, as for
        the standard all-to-all (mappers/partition.py)."""
        w, m, b = self.w, self.m, self.b
        moe, d = m.moe, m.d_model
        lay = self.exflow[self.moe_layers.index(i)]
        group = self._exflow_group()
        self.add(self.collective(f"L{i}.dispatch", i, OpKind.ALL_TO_ALL, w.ep,
                                 lay.dispatch_copies[group] * d * b // w.tp))
        fork, ends = self.last, []
        d_ff_shard = _ceil_div(moe.d_ff_expert, w.tp)
        for s in range(moe.n_shared):            # shared experts on the tokens that are here
            self.last = fork
            ends.append(self._ffn(f"L{i}.shared{s}", i, self.tokens, d_ff_shard, expert=-1 - s))
        for e in np.flatnonzero(lay.expert_group == group):
            if counts[e]:
                self.last = fork
                ends.append(self._ffn(f"L{i}.expert{e}", i, int(counts[e]), d_ff_shard, expert=int(e)))
        self.last = None
        if moe.top_k > 1:
            self.add(self.collective(f"L{i}.combine", i, OpKind.ALL_TO_ALL, w.ep,
                                     lay.combine_copies[group] * d * b // w.tp), after=ends or [fork])
            ends = [self.last]
        self._exflow_view(lay.tokens_out_ids)
        # the residual of a token that moved travels with it (its bytes not counted: assumed
        # carried with the dispatched hidden state)
        self._moe_tail(i, ends, fork, x_in)

    def _expert_slots(self, counts):
        """(per expert group its routed (expert, tokens) slots, per group the tokens its shared
        experts run on, the group with the most expert tokens): `expert_layout`."""
        lay = self.w.eplb
        return expert_layout(counts.tobytes(), self.w.ep, lay.redundant_experts,
                             lay.shared_expert_groups, self.tokens, self.replica_tokens)

    def shape_key(self) -> tuple:
        """What this device's graph depends on besides the workload: its stage, its requests'
        query and context lengths, and per MoE layer the tokens of its expert slots and shared
        experts. Two devices with the same key build graphs of the same signature (the
        partition step builds one graph per key)."""
        w, m = self.w, self.m
        group = 0 if self.device is None else self.device.expert_group
        if self.exflow is not None:              # every group's tokens move: all distinct
            return (self.stage, group)
        key = [self.stage]
        layers = list(self.stage_layers)
        if w.mtp is not None:
            layers += [m.n_layers + k for k in range(w.mtp.draft_tokens)]
        for j in range(w.pp):
            self.micro_batch(j)
            key += [self.query.tobytes(), self.attend.tobytes()]
            for i in layers:
                if not m.is_moe_layer(min(i, m.n_layers - 1)):
                    continue
                tokens, replica = self.tokens, self.replica_tokens
                if i >= m.n_layers:                  # an MTP draft: one token per request
                    self.tokens, self.replica_tokens = len(self.query), replica // int(self.query[0])
                counts = expert_token_counts(w.routing, self.replica_tokens, m.moe.n_experts,
                                             m.moe.top_k, i)
                slots, shared, _ = self._expert_slots(counts)
                key.append((tuple(t for _, t in slots[group] if t), shared[group]))
                self.tokens, self.replica_tokens = tokens, replica
        self.micro_batch(0)
        return tuple(key)

    def _weight_bytes_per_device(self) -> int:
        """Weights resident on one device: its stage's dense parts / tp, local experts / tp,
        embeddings / tp (the LM head only, on the last of several stages)."""
        w, m = self.w, self.m
        if w.pp == 1:
            total = m.embedding_params()
        elif self.stage == w.pp - 1:             # the last stage: LM head and final norm
            total = m.vocab * m.d_model + m.norm_params()
        else:                                    # the first stage holds the token embedding
            total = (m.embedding_params() - m.norm_params()
                     - (0 if m.tied_embeddings else m.vocab * m.d_model)) if self.stage == 0 else 0
        attention = 0                            # per rank (MLA keeps its down-projections whole)
        layers = list(self.stage_layers)
        if w.mtp is not None and self.stage == w.pp - 1:     # the MTP modules: a layer each
            layers += [m.n_layers - 1] * m.mtp_modules
            total += m.mtp_modules * (2 * m.d_model * m.d_model + 3 * m.norm_params())
        for i in layers:
            attention += m.attention_params(w.tp)
            if m.is_moe_layer(i):
                moe, lay = m.moe, w.eplb
                routed = (moe.n_experts + lay.redundant_experts) // (w.ep - lay.shared_expert_groups)
                # the most any group holds: its routed slots (and the shared experts), or the
                # shared experts alone on a shared-expert group
                experts = (max(routed, moe.n_shared) if lay.shared_expert_groups
                           else routed + moe.n_shared)
                total += (2 * m.norm_params() + m.d_model * moe.n_experts
                          + experts * m.ffn_params(moe.d_ff_expert, moe.expert_ffn))
            else:
                total += m.layer_params(i) - m.attention_params()
        elements = math.ceil(total / w.tp) + attention
        if self.wb == self.b:
            return elements * self.b
        # the input embedding table (and learned positions) keep `dtype`; every other weight is
        # stored as `weight_dtype`
        table = 0
        if w.pp == 1 or self.stage == 0:
            table = math.ceil((m.vocab * m.d_model
                               + (m.max_seq_len * m.d_model if m.positions == "learned" else 0)) / w.tp)
        return math.ceil((elements - table) * self.wb) + table * self.b


@lru_cache(maxsize=4096)
def expert_layout(counts: bytes, ep: int, redundant: int, shared_groups: int, tokens: int,
                  replica_tokens: int) -> tuple[tuple, tuple[int, ...], int]:
    """Per expert group of one MoE layer its routed (expert, tokens) slots, the tokens its shared
    experts run on, and the group with the most expert tokens (the lowest on a tie). `counts`:
    the layer's tokens per routed expert (int64 bytes). Without an EPLB layout, group g holds
    experts [g n/ep, (g+1) n/ep) and runs the shared experts on its own `tokens`; with one, the
    slots of `expert_placement` and the shared experts on the last `shared_groups` groups, each
    on an even share of the replica's tokens (workloads/routing.py, EPLBSpec). Cached: every
    device of a replica asks for the same layers."""
    c = np.frombuffer(counts, dtype=np.int64)
    n = len(c)
    if not (redundant or shared_groups):
        local = n // ep
        slots = tuple(tuple((e, int(c[e])) for e in range(g * local, (g + 1) * local))
                      for g in range(ep))
        shared = (tokens,) * ep
    else:
        routed = ep - shared_groups
        slots = expert_placement(tuple(int(x) for x in c), routed, redundant)
        shared = ((tokens,) if not shared_groups else (0,)) * routed
        if shared_groups:
            share, extra = divmod(replica_tokens, shared_groups)
            slots += ((),) * shared_groups
            shared += tuple(share + (k < extra) for k in range(shared_groups))
    loads = [sum(t for _, t in s) + sh for s, sh in zip(slots, shared)]
    busiest = max(range(ep), key=lambda g: (loads[g], -g))
    return slots, shared, busiest


_VECTOR_KIND = {"layernorm": OpKind.NORM, "rmsnorm": OpKind.NORM, "softmax": OpKind.SOFTMAX,
                "gelu": OpKind.ELEMENTWISE, "swiglu": OpKind.ELEMENTWISE, "rope": OpKind.ELEMENTWISE,
                "add": OpKind.ELEMENTWISE, "topk": OpKind.ELEMENTWISE, "relu": OpKind.ELEMENTWISE}


def build_transformer(workload: TransformerWorkload, device: DeviceCoord | None = None) -> OpGraph:
    """The op graph of one prefill or decode pass on one device of a replica (`device`; None =
    the device that sets the pace: the last stage, the expert group with the most tokens)."""
    return _Builder(workload, device).build()


def transformer_info(workload: TransformerWorkload) -> WorkloadInfo:
    """What `build_transformer(workload).info` holds (bytes resident per device, tokens), without
    building the ops."""
    return _Builder(workload).info()


from hwsim.workloads.registry import WorkloadKind, register_workload  # noqa: E402

register_workload(WorkloadKind("transformer", TransformerWorkload, build_transformer, transformer_info))
