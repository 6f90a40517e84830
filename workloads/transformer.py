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
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from hwsim.spec import Spec
from hwsim.workloads.models import ModelSpec
from hwsim.workloads.ops import (DTYPE_BYTES, MAX_BATCH, Attention, Collective, MatMul, Op, OpGraph, OpKind,
                                 WorkloadInfo)
from hwsim.workloads.requests import RequestSpec
from hwsim.workloads.routing import RoutingSpec, expert_token_counts

# FLOPs per element of the vector ops. Counted as the arithmetic a straightforward kernel does:
# LayerNorm = mean (1 add) + variance (sub, mul, add) + normalise (sub, div... folded to mul)
# ≈ 5; RMSNorm = square, add, scale ≈ 3 (+1 for the gain); softmax = max, sub, exp, add, div = 5;
# GELU (tanh form) ≈ 8; SiLU(x) * y ≈ 5; RoPE = 2 muls + 1 add per element; residual add = 1;
# ReLU = one max per element (OPT).
VECTOR_FLOPS_PER_ELEMENT = {"layernorm": 5, "rmsnorm": 4, "softmax": 5, "gelu": 8, "swiglu": 5,
                            "rope": 3, "add": 1, "topk": 1, "relu": 1}


class TransformerWorkload(Spec):
    """The `workload:` section of a run config for decoder LLMs."""

    kind: Literal["transformer"] = "transformer"
    model: ModelSpec
    phase: Literal["prefill", "decode", "mixed"]
    batch: int = Field(gt=0, le=MAX_BATCH, description="requests in the pass")
    requests: RequestSpec = Field(default_factory=RequestSpec,
                                  description="context lengths of the requests")
    dtype: Literal["fp16", "bf16", "fp32", "fp8", "int8"] = "fp16"
    tp: int = Field(default=1, gt=0, description="tensor-parallel devices per replica")
    ep: int = Field(default=1, gt=0, description="expert-parallel groups (MoE only)")
    pp: int = Field(default=1, gt=0, description="pipeline stages per replica, each with n_layers / pp layers")
    lm_head: bool = True
    routing: RoutingSpec = Field(default_factory=RoutingSpec)

    @model_validator(mode="after")
    def _parallelism_fits(self):
        m = self.model
        if m.n_heads % self.tp:
            raise ValueError(f"tp={self.tp} must divide n_heads={m.n_heads}")
        if m.kv_heads % self.tp and self.tp % m.kv_heads:
            raise ValueError(f"tp={self.tp} and n_kv_heads={m.kv_heads} must divide one another")
        if self.ep > 1:
            if m.moe is None:
                raise ValueError("ep > 1 needs a Mixture-of-Experts model")
            if m.moe.n_experts % self.ep:
                raise ValueError(f"ep={self.ep} must divide n_experts={m.moe.n_experts}")
            if self.batch % self.ep:
                raise ValueError(f"ep={self.ep} must divide batch={self.batch}")
        if self.pp > 1:
            if m.n_layers % self.pp:
                raise ValueError(f"pp={self.pp} must divide n_layers={m.n_layers}")
            if self.batch % (self.pp * self.ep):
                raise ValueError(f"pp={self.pp} micro-batches (x ep={self.ep}) must divide batch={self.batch}")
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
            self.all_query = np.ones_like(ctx)
            self.all_attend = ctx + 1           # cached tokens plus the new one
            self.replica_query = np.ones_like(all_ctx)
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
        self.replica_tokens = sum(                # the micro-batch's tokens over every expert group
            int(self.replica_query[g * per_group + j * size:g * per_group + (j + 1) * size].sum())
            for g in range(self.w.ep))

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
                  weight_bytes=(k * n + (n if bias else 0)) * b, act_in_bytes=m * k * b,
                  act_out_bytes=m * n * b, matmul=MatMul(m, n, k), expert=expert, **extra)

    def vector(self, name, layer, elements, what, expert=None, in_elements=None):
        b = self.b
        return Op(name=name, kind=_VECTOR_KIND[what], layer=layer, dtype=self.w.dtype,
                  flops=float(VECTOR_FLOPS_PER_ELEMENT[what] * elements), elements=elements,
                  act_in_bytes=(in_elements or elements) * b, act_out_bytes=elements * b,
                  expert=expert, function=what)

    def collective(self, name, layer, kind, group, nbytes):
        return Op(name=name, kind=kind, layer=layer, dtype=self.w.dtype, flops=0.0,
                  act_in_bytes=nbytes, act_out_bytes=nbytes,
                  collective=Collective(group=group, bytes=nbytes))

    # -- the graph --
    def info(self) -> WorkloadInfo:
        w, m, b = self.w, self.m, self.b
        layers = len(self.stage_layers)
        kv = int(self.all_attend.sum()) * m.kv_cache_elements(w.tp) * b * layers
        tokens = int(self.replica_query.sum())   # new tokens of the pass, every request
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
            self._attention_block(layer)
            if m.is_moe_layer(layer):
                self._moe_block(layer)
            else:
                self._dense_ffn(layer)
        if self.stage < w.pp - 1:
            return                               # the next stage receives this micro-batch
        self.add(self.vector("final_norm", -1, T * d, m.norm))
        if w.lm_head:
            rows = len(self.query)               # logits for each request's last token
            self.add(self.matmul("lm_head", -1, rows, d, _ceil_div(m.vocab, w.tp), bias=False))

    def _attention_block(self, i: int):
        if self.m.mla is not None:
            return self._latent_attention_block(i)
        w, m, b, T = self.w, self.m, self.b, self.tokens
        d, hd, H, KV = m.d_model, m.hd, self.heads, self.kv_heads
        x_in = self.last
        self.add(self.vector(f"L{i}.norm1", i, T * d, m.norm))
        qkv = self.matmul(f"L{i}.qkv", i, T, d, (H + 2 * KV) * hd,
                          kv_write_bytes=T * 2 * KV * hd * b)
        self.add(qkv)
        if m.positions == "rope":
            self.add(self.vector(f"L{i}.rope", i, T * (H + KV) * hd, "rope"))
        attn = Attention(query_tokens=tuple(self.query.tolist()),
                         context_lens=tuple(self.attend.tolist()),
                         heads=H, kv_heads=KV, head_dim=hd)
        pairs = int(np.sum(self.query * self.attend))       # (query token, key) pairs
        kv_read = int(self.attend.sum()) * KV * hd * b         # one of K or V
        self.add(Op(name=f"L{i}.attn_score", kind=OpKind.ATTENTION_SCORE, layer=i, dtype=w.dtype,
                    flops=2.0 * H * hd * pairs, act_in_bytes=T * H * hd * b,
                    act_out_bytes=H * pairs * b, kv_read_bytes=kv_read, attention=attn))
        self.add(self.vector(f"L{i}.softmax", i, H * pairs, "softmax"))
        self.add(Op(name=f"L{i}.attn_context", kind=OpKind.ATTENTION_CONTEXT, layer=i,
                    dtype=w.dtype, flops=2.0 * H * hd * pairs, act_in_bytes=H * pairs * b,
                    act_out_bytes=T * H * hd * b, kv_read_bytes=kv_read, attention=attn))
        self.add(self.matmul(f"L{i}.out_proj", i, T, H * hd, d))
        if w.tp > 1:
            self.add(self.collective(f"L{i}.allreduce_attn", i, OpKind.ALL_REDUCE, w.tp, T * d * b))
        self.add(self.vector(f"L{i}.residual1", i, T * d, "add", in_elements=2 * T * d),
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
        normed = self.add(self.vector(f"L{i}.norm1", i, T * d, m.norm))
        q_in = d
        if a.q_lora_rank:
            self.add(self.matmul(f"L{i}.q_down", i, T, d, a.q_lora_rank, bias=False))
            self.add(self.vector(f"L{i}.q_norm", i, T * a.q_lora_rank, m.norm))
            q_in = a.q_lora_rank
        q = self.add(self.matmul(f"L{i}.q_up", i, T, q_in, H * a.qk_head_dim, bias=False))
        self.add(self.matmul(f"L{i}.kv_down", i, T, d, a.cache_dim, bias=False,
                             kv_write_bytes=T * a.cache_dim * b), after=[normed])
        self.add(self.vector(f"L{i}.kv_norm", i, T * a.kv_lora_rank, m.norm))
        self.add(self.vector(f"L{i}.rope", i, T * (H + 1) * a.qk_rope_head_dim, "rope"),
                 after=[q, self.last])
        pairs = int(np.sum(self.query * self.attend))
        cached = int(self.attend.sum())            # tokens in the attended cache
        absorbed = bool(np.all(self.query == 1))  # decode steps (FlashMLA); prompts expand
        if absorbed:
            self.add(self._head_gemm(f"L{i}.q_absorb", i, T, a.qk_nope_head_dim, a.kv_lora_rank, H))
            attn = Attention(tuple(self.query.tolist()), tuple(self.attend.tolist()),
                             heads=H, kv_heads=1, head_dim=a.cache_dim)
            score_dim, value_dim, kv_read = a.cache_dim, a.kv_lora_rank, (cached * a.cache_dim * b, 0)
        else:
            self.add(self.matmul(f"L{i}.kv_up", i, cached, a.kv_lora_rank,
                                 H * (a.qk_nope_head_dim + a.v_head_dim), bias=False))
            attn = Attention(tuple(self.query.tolist()), tuple(self.attend.tolist()),
                             heads=H, kv_heads=H, head_dim=a.qk_head_dim)
            score_dim, value_dim = a.qk_head_dim, a.v_head_dim
            kv_read = (cached * H * a.qk_head_dim * b, cached * H * a.v_head_dim * b)
        self.add(Op(name=f"L{i}.attn_score", kind=OpKind.ATTENTION_SCORE, layer=i, dtype=w.dtype,
                    flops=2.0 * H * score_dim * pairs, act_in_bytes=T * H * score_dim * b,
                    act_out_bytes=H * pairs * b, kv_read_bytes=kv_read[0], attention=attn))
        self.add(self.vector(f"L{i}.softmax", i, H * pairs, "softmax"))
        self.add(Op(name=f"L{i}.attn_context", kind=OpKind.ATTENTION_CONTEXT, layer=i,
                    dtype=w.dtype, flops=2.0 * H * value_dim * pairs, act_in_bytes=H * pairs * b,
                    act_out_bytes=T * H * value_dim * b, kv_read_bytes=kv_read[1], attention=attn))
        if absorbed:
            self.add(self._head_gemm(f"L{i}.v_absorb", i, T, a.kv_lora_rank, a.v_head_dim, H))
        self.add(self.matmul(f"L{i}.out_proj", i, T, H * a.v_head_dim, d, bias=False))
        if w.tp > 1:
            self.add(self.collective(f"L{i}.allreduce_attn", i, OpKind.ALL_REDUCE, w.tp, T * d * b))
        self.add(self.vector(f"L{i}.residual1", i, T * d, "add", in_elements=2 * T * d),
                 after=[self.last, x_in] if x_in else [self.last])

    def _head_gemm(self, name: str, layer: int, m: int, k: int, n: int, heads: int) -> Op:
        """One [m, k] x [k, n] product per head, each with its own weights (MLA's absorbed W_UK
        and W_UV)."""
        b = self.b
        return Op(name=name, kind=OpKind.MATMUL, layer=layer, dtype=self.w.dtype,
                  flops=2.0 * m * n * k * heads, weight_bytes=k * n * heads * b,
                  act_in_bytes=m * k * heads * b, act_out_bytes=m * n * heads * b,
                  matmul=MatMul(m, n, k, heads))

    def _dense_ffn(self, i: int):
        w, m, T = self.w, self.m, self.tokens
        x_in = self.last
        self.add(self.vector(f"L{i}.norm2", i, T * m.d_model, m.norm))
        self._ffn(f"L{i}.ffn", i, T, _ceil_div(m.d_ff, w.tp))
        if w.tp > 1:
            self.add(self.collective(f"L{i}.allreduce_ffn", i, OpKind.ALL_REDUCE, w.tp,
                                     T * m.d_model * self.b))
        self.add(self.vector(f"L{i}.residual2", i, T * m.d_model, "add", in_elements=2 * T * m.d_model),
                 after=[self.last, x_in])

    def _ffn(self, prefix: str, i: int, tokens: int, d_ff: int, expert=None):
        d = self.m.d_model
        swiglu = self.m.ffn == "swiglu"
        self.add(self.matmul(f"{prefix}.up", i, tokens, d, (2 if swiglu else 1) * d_ff, expert=expert))
        self.add(self.vector(f"{prefix}.act", i, tokens * d_ff, self.m.ffn, expert=expert,
                             in_elements=(2 if swiglu else 1) * tokens * d_ff))
        return self.add(self.matmul(f"{prefix}.down", i, tokens, d_ff, d, expert=expert))

    def _moe_block(self, i: int):
        w, m, b, T = self.w, self.m, self.b, self.tokens
        moe, d = m.moe, m.d_model
        x_in = self.last
        self.add(self.vector(f"L{i}.norm2", i, T * d, m.norm))
        self.add(self.matmul(f"L{i}.router", i, T, d, moe.n_experts, kind=OpKind.ROUTER, bias=False))
        counts = expert_token_counts(w.routing, self.replica_tokens, moe.n_experts, moe.top_k, i)
        local = moe.n_experts // w.ep
        group = (int(np.argmax(counts.reshape(w.ep, local).sum(axis=1))) if self.device is None
                 else self.device.expert_group)
        if w.ep > 1:
            sent = T * moe.top_k * (w.ep - 1) // w.ep * d * b // w.tp
            self.add(self.collective(f"L{i}.dispatch", i, OpKind.ALL_TO_ALL, w.ep, sent))
        fork = self.last
        ends = []
        d_ff_shard = _ceil_div(moe.d_ff_expert, w.tp)
        for s in range(moe.n_shared):
            self.last = fork
            ends.append(self._ffn(f"L{i}.shared{s}", i, T, d_ff_shard, expert=-1 - s))
        for e in range(group * local, (group + 1) * local):
            tokens_e = int(counts[e])
            if tokens_e:
                self.last = fork
                ends.append(self._ffn(f"L{i}.expert{e}", i, tokens_e, d_ff_shard, expert=e))
        self.last = None
        if w.ep > 1:
            self.add(self.collective(f"L{i}.combine", i, OpKind.ALL_TO_ALL, w.ep, sent),
                     after=ends or [fork])
            ends = [self.last]
        if w.tp > 1:
            self.add(self.collective(f"L{i}.allreduce_ffn", i, OpKind.ALL_REDUCE, w.tp, T * d * b),
                     after=ends or [fork])
            ends = [self.last]
        self.add(self.vector(f"L{i}.residual2", i, T * d, "add", in_elements=2 * T * d),
                 after=(ends or [fork]) + [x_in])

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
        for i in self.stage_layers:
            attention += m.attention_params(w.tp)
            if m.is_moe_layer(i):
                moe = m.moe
                experts = moe.n_experts // w.ep + moe.n_shared
                total += (2 * m.norm_params() + m.d_model * moe.n_experts
                          + experts * m.ffn_params(moe.d_ff_expert))
            else:
                total += m.layer_params(i) - m.attention_params()
        return (math.ceil(total / w.tp) + attention) * self.b


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
