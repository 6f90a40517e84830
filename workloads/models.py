"""Model descriptions (the `model:` key of a workload) and their closed-form sizes.

A ``ModelSpec`` covers GPT-3 style decoders (MHA, LayerNorm, GELU FFN, learned positions),
LLaMA style ones (GQA, RMSNorm, SwiGLU, RoPE) and DeepSeek-V2/V3 style ones (multi-head latent
attention), dense or Mixture-of-Experts. Zoo entries live in
``configs/models/*.yaml`` with their sources.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from hwsim.spec import Spec


class MoESpec(Spec):
    """Mixture-of-Experts FFN: `n_experts` routed experts (top-`top_k` per token) plus
    `n_shared` always-on experts (DeepSeek-MoE), replacing the dense FFN from layer
    `first_moe_layer` on, in every `every`-th layer (GLaM: every other layer, the others dense)."""

    n_experts: int = Field(gt=0)
    top_k: int = Field(gt=0)
    d_ff_expert: int = Field(gt=0)
    n_shared: int = Field(default=0, ge=0)
    first_moe_layer: int = Field(default=0, ge=0)
    every: int = Field(default=1, gt=0, description="MoE in layers first_moe_layer, + every, "
                       "+ 2 every, ...; the others keep the dense FFN (GLaM: 2)")
    expert_ffn: Literal["gelu", "swiglu", "relu"] | None = Field(
        default=None, description="the experts' FFN shape when it differs from the model's `ffn` "
        "(GLaM: gated dense FFNs, plain GELU experts)")

    @model_validator(mode="after")
    def _top_k_fits(self):
        if self.top_k > self.n_experts:
            raise ValueError(f"top_k ({self.top_k}) cannot exceed n_experts ({self.n_experts})")
        return self


class MLASpec(Spec):
    """Multi-head latent attention (DeepSeek-V2, Liu et al. 2024, arXiv 2405.04434, section
    2.1). Keys and values of all heads are rebuilt from one compressed latent of `kv_lora_rank`
    per token (W_DKV: d -> kv_lora_rank, then W_UK, W_UV: kv_lora_rank -> heads x head dims); a
    decoupled RoPE key of `qk_rope_head_dim` is shared by all heads. The KV cache holds only the
    latent and the RoPE key: kv_lora_rank + qk_rope_head_dim elements per token and layer.
    Queries go through a low-rank `q_lora_rank` bottleneck (0: a plain d -> heads projection).
    Each head's query/key is qk_nope_head_dim + qk_rope_head_dim wide, its value v_head_dim."""

    q_lora_rank: int = Field(ge=0)
    kv_lora_rank: int = Field(gt=0)
    qk_nope_head_dim: int = Field(gt=0)
    qk_rope_head_dim: int = Field(gt=0)
    v_head_dim: int = Field(gt=0)

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def cache_dim(self) -> int:
        """KV-cache elements per token and layer: the latent plus the shared RoPE key."""
        return self.kv_lora_rank + self.qk_rope_head_dim


class ModelSpec(Spec):
    name: str
    source: str = Field(description="where the architecture numbers come from")
    n_layers: int = Field(gt=0)
    d_model: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    n_kv_heads: int | None = Field(default=None, gt=0, description="GQA; defaults to n_heads (MHA)")
    head_dim: int | None = Field(default=None, gt=0, description="defaults to d_model / n_heads")
    d_ff: int = Field(gt=0)
    vocab: int = Field(gt=0)
    max_seq_len: int = Field(gt=0)
    norm: Literal["layernorm", "rmsnorm"]
    ffn: Literal["gelu", "swiglu", "relu"]  # relu: OPT (same shapes as gelu)
    positions: Literal["learned", "rope"]
    bias: bool = Field(description="linear layers carry biases (GPT-3) or not (LLaMA)")
    tied_embeddings: bool = False
    moe: MoESpec | None = None
    mla: MLASpec | None = Field(default=None, description="multi-head latent attention "
                                "(DeepSeek-V2/V3) instead of MHA/GQA")
    mtp_modules: int = Field(default=0, ge=0, description="multi-token-prediction modules "
                             "(DeepSeek-V3: num_nextn_predict_layers = 1); each is one more decoder "
                             "layer plus a 2d -> d projection and two norms, sharing the embedding "
                             "and the LM head (DeepSeek-V3 Technical Report, arXiv 2412.19437, "
                             "section 2.2). Not in param_count (671B excludes them)")
    sliding_window: int | None = Field(default=None, gt=0, description="sliding-window attention: "
                                       "a token attends to at most this many tokens (itself and "
                                       "the ones before it); None: full attention everywhere")
    parallel_block: bool = Field(default=False, description="attention and FFN both read one "
                                 "LayerNorm of the layer's input and their outputs are added to it in one "
                                 "residual (GPT-J / Falcon-7B: parallel_attn; one norm per layer), "
                                 "instead of norm -> attention -> add -> norm -> FFN -> add")
    sliding_window_layers: Literal["all", "even"] = Field(
        default="all", description="which layers use the window: all, or layers 0, 2, 4, ... "
        "(gpt-oss: layer_types alternate sliding_attention, full_attention, starting sliding)")

    @model_validator(mode="after")
    def _window_needs_mha(self):
        if self.sliding_window is not None and self.mla is not None:
            raise ValueError("sliding_window is modelled for MHA/GQA attention, not with mla")
        return self

    @model_validator(mode="after")
    def _parallel_block_dense(self):
        if self.parallel_block and (self.moe is not None or self.mla is not None):
            raise ValueError("parallel_block is modelled for dense MHA/GQA layers (no moe, no mla)")
        return self

    @model_validator(mode="after")
    def _mla_has_no_kv_heads(self):
        if self.mla is not None and (self.n_kv_heads is not None or self.head_dim is not None
                                     or self.bias):
            raise ValueError("a model with mla sets its head sizes there: no n_kv_heads, "
                             "head_dim or bias")
        return self

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.kv_heads and self.n_heads % self.kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.kv_heads})")
        if self.head_dim is None and self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) is not a multiple of n_heads ({self.n_heads}); set head_dim")
        return self

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def hd(self) -> int:
        return self.head_dim or self.d_model // self.n_heads

    def window(self, layer: int) -> int | None:
        """The attention window of `layer` (None: full attention)."""
        if self.sliding_window is None or (self.sliding_window_layers == "even" and layer % 2):
            return None
        return self.sliding_window

    def attended(self, layer: int, context_len):
        """Tokens a query at position `context_len - 1` attends to in `layer`: the context, capped
        at the layer's window (works on ints and numpy arrays)."""
        w = self.window(layer)
        if w is None:
            return context_len
        return np.minimum(context_len, w) if isinstance(context_len, np.ndarray) else min(context_len, w)

    def is_moe_layer(self, layer: int) -> bool:
        m = self.moe
        return m is not None and layer >= m.first_moe_layer and (layer - m.first_moe_layer) % m.every == 0

    def kv_cache_elements(self, tp: int = 1) -> int:
        """KV-cache elements per token and layer on one of `tp` tensor-parallel ranks: K and V
        of its KV heads; with MLA the latent and RoPE key, which every rank keeps whole."""
        if self.mla is not None:
            return self.mla.cache_dim
        return 2 * max(1, self.kv_heads // tp) * self.hd

    # ---- closed-form sizes (used by the builder's tests as the reference) ----
    def attention_params(self, tp: int = 1) -> int:
        """Attention weights on one of `tp` ranks (Megatron: heads are sharded; MLA's
        down-projections W_DQ, W_DKV and their norms are replicated on every rank)."""
        if self.mla is not None:
            a, d, h = self.mla, self.d_model, self.n_heads
            q_in = a.q_lora_rank or d
            down = (d * a.q_lora_rank + a.q_lora_rank if a.q_lora_rank else 0) \
                + d * a.cache_dim + a.kv_lora_rank
            per_head = q_in * a.qk_head_dim + a.kv_lora_rank * (a.qk_nope_head_dim + a.v_head_dim) \
                + a.v_head_dim * d
            return down + h * per_head // tp
        d, q, kv = self.d_model, self.n_heads * self.hd, self.kv_heads * self.hd
        weights = d * q + 2 * d * kv + q * d
        return -(-(weights + ((q + 2 * kv + d) if self.bias else 0)) // tp)

    def ffn_params(self, d_ff: int, kind: str | None = None) -> int:
        """One FFN of width `d_ff` of shape `kind` (default: the model's `ffn`)."""
        d = self.d_model
        if (kind or self.ffn) == "swiglu":
            return 3 * d * d_ff + ((2 * d_ff + d) if self.bias else 0)
        return 2 * d * d_ff + ((d_ff + d) if self.bias else 0)

    def norm_params(self, width: int | None = None) -> int:
        """Parameters of one norm over `width` elements (default d_model): the scale, and
        LayerNorm's bias."""
        width = self.d_model if width is None else width
        return 2 * width if self.norm == "layernorm" else width

    def layer_params(self, layer: int, active: bool = False) -> int:
        """Parameters of one decoder layer; `active` counts only the experts a token uses."""
        p = self.attention_params() + (1 if self.parallel_block else 2) * self.norm_params()
        if not self.is_moe_layer(layer):
            return p + self.ffn_params(self.d_ff)
        m = self.moe
        experts = (m.top_k if active else m.n_experts) + m.n_shared
        return p + experts * self.ffn_params(m.d_ff_expert, m.expert_ffn) + self.d_model * m.n_experts

    def embedding_params(self) -> int:
        pos = self.max_seq_len * self.d_model if self.positions == "learned" else 0
        head = 0 if self.tied_embeddings else self.vocab * self.d_model
        return self.vocab * self.d_model + pos + head + self.norm_params()

    def mtp_params(self) -> int:
        """Weights of the MTP modules: each a decoder layer like the last one (MoE in
        DeepSeek-V3), the projection M (2d -> d) and the norms of the hidden state and of the
        embedding (arXiv 2412.19437, section 2.2, eq. 21); embedding and head are shared."""
        d = self.d_model
        return self.mtp_modules * (self.layer_params(self.n_layers - 1) + 2 * d * d
                                   + 3 * self.norm_params())

    def param_count(self, active: bool = False) -> int:
        return self.embedding_params() + sum(self.layer_params(i, active) for i in range(self.n_layers))

    def flops_per_token(self, context_len: int) -> float:
        """Forward FLOPs for one token attending over `context_len` tokens: 2 per active weight
        (LM head included, embeddings excluded) plus 4 * heads * head_dim * L for QK^T and PV
        (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", Table 1), L capped at a
        sliding-window layer's window."""
        non_embedding = sum(self.layer_params(i, active=True) for i in range(self.n_layers))
        qk_v = (self.mla.qk_head_dim + self.mla.v_head_dim) if self.mla else 2 * self.hd
        attended = sum(self.attended(i, context_len) for i in range(self.n_layers))
        return 2.0 * (non_embedding + self.vocab * self.d_model) + \
            2.0 * self.n_heads * qk_v * attended
