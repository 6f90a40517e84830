"""The time and energy of one serving iteration, from the pass machinery, through a cache.

An iteration is one pass of a `mixed` Transformer workload (hwsim.workloads.transformer): each
request in the batch computes its new tokens (a prompt, a chunk of one, or one decode token) on
top of the tokens already in its KV cache. Its cost is what the pass scenario gives for that
workload: op graph -> the system's mapper -> schedule -> engine (``PassScenario.schedule`` and
``hwsim.sim.engine.simulate``), never a formula of this module.

These shortcuts make thousands of iterations affordable, all checked against a full pass
simulation of the exact iteration (tests/test_serving.py: within 1% on sampled iterations):

1. *One decoder layer, extended.* A dense decoder's layers are identical, so the graph is built
   with one layer and the pass time is ``makespan + (L - 1) x layer span`` (the span from the
   first start to the last end of the layer's tasks: hwsim.metrics.layer_span_ns); energy is the
   layer's tasks' energy times L plus the rest, plus static power over the time. Exact when the
   layers run one after another (a GPU stream, an NPU running the ops in order). Every run
   checks it: the first iteration with prompt tokens and the first without are also simulated
   with every layer, and if the two differ by more than 0.2% (a mapper that overlaps
   consecutive layers) the run simulates every layer from then on. MoE models (routing
   differs per layer) are simulated with every layer.
2. *A cache keyed by the iteration's shape, bucketed* (``shape_key``):
   - decoding requests: their count D exactly; the keys K they attend (each request's cached
     tokens and its new one, rounded up to whole tiles of the mapper's decode attention kernel,
     item 4; S + D where it has none) rounded to a multiple of 2^(bits(K) - 8) (a relative step
     of 1/128 to 1/256, so K moves by <= 0.4%); the longest cached, M, rounded up to a multiple
     of 2^(bits(M) - 6) (<= 3%); the tile;
   - prompt chunks: their new tokens exactly (with D, the tokens of every linear op, whose GEMM
     tiling steps at tile multiples; and each chunk's query blocks in FlashAttention step at
     128 rows); their cached prefixes rounded to the nearest multiple of 2^(bits(c) - 4)
     (exact below 16, then a relative step of 1/8 to 1/16).
   The iteration simulated for a key is its representative (``representative``): the chunks
   with their rounded prefixes, one decoding request holding M tokens and the other D - 1
   sharing the rest of K evenly in whole tiles. Decode attention cost grows with the tokens read (S) and, for kernels
   whose rate depends on sequence length, with the longest context (M); the representative
   keeps both. (Rounding a chunk's new tokens, tried first, was off by 1.85% on a sampled
   chunked-prefill iteration: a 129-token chunk became 128, one FlashAttention block fewer.)
3. *A single prompt* (a prefill-only iteration of one request, the commonest prefill) is
   interpolated linearly in its tokens P between the multiples of 16 around it when the times at
   both ends differ by at most 1%, so the interpolated time cannot be off by more; a larger
   difference means a step inside the interval (GEMM tiles, attention blocks), and the exact P
   is simulated. Energy is interpolated alike: its dynamic part grows with the FLOPs and bytes,
   in proportion to P inside such an interval, and its static part with the time.
4. *Decode-only iterations* (most of a run) are interpolated instead, so that the cache fills
   once per batch size D rather than once per step. At fixed D and longest context M every
   linear op depends on D alone, and attention reads the S cached tokens and (on a GPU)
   computes over the keys K: each request's cached tokens and its new one, rounded up to whole
   tiles of the mapper's decode attention kernel (MapperEntry.decode_key_tile: FlashAttention-2
   computes whole tiles of 64 or 128 keys and masks the tail, hwsim.hw.gpu.decode_keys; a tile
   of 1 for every other mapper, where K = S + D).
   - Tile of 1: the iteration is interpolated linearly in K between two representatives (the
     other requests at M/4, and all at M).
   - Tiles: piecewise linearly in K along three representatives whose other requests' keys
     fill whole tiles (at about M/4, M/2 and M), then linearly in S at that K, with the slope
     of a fourth representative (the M/2 one with each other request one key into its last
     tile). A line in S alone through representatives whose tails happen to differ was off by
     3.8% on a sampled static-batching iteration, a plane in S and K through the M/4 points by
     up to 1.4%, this by at most 0.83% on the sampled iterations (tests/test_serving.py); on
     synthetic batches lying on the attention kernel's compute/memory ridge (an A100 at D = 100,
     M = 1024, where the plane's points are memory-bound and the batch is compute-bound) it is
     off by up to 1.8%.
   In M (which sets only the rate of sequence-length-dependent kernels) the lines are
   interpolated linearly in log2 M between half-octave grid points (M = 2^(k/2)); with octaves
   the sampled iterations were off by up to 1.4% (a kernel switching between compute- and
   memory-bound inside the interval), with half-octaves by at most 0.7%. D stays exact: GEMM
   tiles and attention waves step with it, up and down (interpolating D between multiples of 4
   whose times agreed within 0.5% was still off by 3.9% at D = 17: the wave fill in between
   was not monotonic).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.mappers import MAPPERS
from hwsim.sim.engine import simulate
from hwsim.workloads.ops import Attention
from hwsim.workloads.registry import load_workloads

CHUNK_REL_BITS = 4           # cached prefixes of prompt chunks rounded to 2^(bits(x) - 4)
S_REL_BITS = 8               # decode KV tokens S rounded to a multiple of 2^(bits(S) - 8)
M_REL_BITS = 6               # longest decode context rounded up to a multiple of 2^(bits(M) - 6)
M_PER_OCTAVE = 2             # decode-only: grid points of the longest context per octave
PAD_LEVELS = 8               # decoding requests' unused keys in their last tile, in eighths
P_STEP = 16                  # prompt tokens P interpolated between multiples of 16 ...
P_SMOOTH = 0.01              # ... when the costs at both ends differ by at most 1%
EXTENSION_TOLERANCE = 0.002  # the one-layer extension checked against every layer (item 1)


def _round_up(x: int, step: int) -> int:
    return -(-x // step) * step


def _rel_step(x: int, bits: int) -> int:
    return 1 << max(int(x).bit_length() - bits, 0)


def _round_rel(x: int, bits: int) -> int:
    step = _rel_step(x, bits)
    return max(int(round(x / step)) * step, 1 if x else 0)


def keys_attended(dec_ctx: np.ndarray, tile: int = 1) -> int:
    """K: each decoding request's cached tokens and its new one, rounded up to whole `tile`s."""
    return int(np.sum(-(-(np.asarray(dec_ctx, dtype=np.int64) + 1) // tile))) * tile


def shape_key(chunks: list[tuple[int, int]], dec_ctx: np.ndarray, tile: int = 1) -> tuple:
    """The cache key of an iteration: prompt chunks [(new tokens, cached tokens)] and the cached
    tokens of each decoding request, whose keys the decode attention computes in whole `tile`s
    (module docstring, item 2): ((P, cached tokens of the largest chunk, the other chunks), D,
    K, M, tile, the others' unused keys in their last tile in eighths of a tile)."""
    pre: tuple = (0, 0, ())
    if chunks:
        big = max(range(len(chunks)), key=lambda i: chunks[i][0])
        rest = tuple(sorted((q, _round_rel(c, CHUNK_REL_BITS)) for i, (q, c) in enumerate(chunks) if i != big))
        pre = (sum(q for q, _ in chunks), _round_rel(chunks[big][1], CHUNK_REL_BITS), rest)
    d = len(dec_ctx)
    if d == 0:
        return pre, 0, 0, 0, 1, 0
    m = int(dec_ctx.max())
    ms = _rel_step(m, M_REL_BITS)
    m_b = _round_up(m, ms)
    if d == 1:
        return pre, 1, keys_attended([m_b], tile), m_b, tile, 0
    k = keys_attended(dec_ctx, tile)
    x = k - d                                   # S, the cached tokens, when the tile is 1
    step = max(_rel_step(x, S_REL_BITS), tile)
    x_b = max(int(round(x / step)) * step, keys_attended([m_b], tile) + (d - 1) * tile - d)
    # the others' keys past their cached tokens and new one, in eighths of a tile each
    spare = k - int(dec_ctx.sum()) - d - (keys_attended([m], tile) - m - 1)
    level = min(PAD_LEVELS - 1, round(spare / (d - 1) / tile * PAD_LEVELS))
    return pre, d, x_b + d, m_b, tile, level


def representative(key: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(new tokens, cached tokens) per request of the iteration a key stands for: the chunks
    with their rounded prefixes, the largest taking the rest of the P new tokens; one decoding
    request holding M tokens and the others sharing the rest of the K keys in whole tiles
    (each between one tile and the longest's)."""
    (total, big_c, rest), d, k, m, tile, level = key
    q = [c[0] for c in rest]
    cached = [c[1] for c in rest]
    if total:
        q.append(max(1, total - sum(q)))
        cached.append(big_c)
    q += [1] * d
    if d:
        longest = keys_attended([m], tile) // tile           # tiles of the longest request
        units = min(max((k // tile) - longest, d - 1), (d - 1) * longest)
        share = [units // (d - 1) + (1 if i < units % (d - 1) else 0) for i in range(d - 1)] if d > 1 else []
        spare = min(tile - 1, round(level * tile / PAD_LEVELS))
        cached += [m] + [max(0, min(n * tile - 1 - spare, m)) for n in share]
    return np.asarray(q, dtype=np.int64), np.asarray(cached, dtype=np.int64)


@dataclass
class IterationCost:
    time_s: float
    energy_j: float           # whole replica, dynamic + static over time_s
    expert_bytes: float = 0.0  # routed-expert weight bytes read, every memory level, whole replica


@dataclass
class LayerProfile:
    """One simulated iteration split by layer (item 5 of the module docstring): the time and
    energy outside the decoder layers, and per simulated layer its span, energy and routed-expert
    weight bytes (the tasks' bytes per memory level, i.e. the memory model's count). With the
    one-layer extension one layer stands for all of them."""
    base_ns: float            # makespan minus the layers' spans (embedding, final norm, LM head)
    other_j: float            # energy of the tasks outside layers (one device)
    span_ns: np.ndarray       # per simulated layer
    layer_j: np.ndarray
    expert_bytes: np.ndarray  # per simulated layer (one device)
    static_w: float           # one device

    def per_layer(self, values: np.ndarray, layers: int) -> np.ndarray:
        return np.full(layers, values[0]) if len(values) == 1 else values


def _values(cost: IterationCost) -> np.ndarray:
    return np.array([cost.time_s, cost.energy_j, cost.expert_bytes])


@dataclass(frozen=True)
class _DecodeLine:
    """The representatives of one (D, M grid point) (IterationCoster._decode_points) as arrays,
    at one key tile: their keys attended K, cached tokens S and (time, energy, expert bytes),
    and the change of those per cached token at fixed K (zero without a pair)."""
    ks: np.ndarray
    ss: np.ndarray
    vals: np.ndarray
    slope_s: np.ndarray

    @classmethod
    def of(cls, points: tuple, tile: int) -> "_DecodeLine":
        family, pair = points
        slope = np.zeros(3)
        if pair is not None:
            (ca, pa), (cb, pb) = pair
            slope = (_values(pa) - _values(pb)) / float(ca.sum() - cb.sum())
        return cls(np.array([float(keys_attended(c, tile)) for c, _ in family]),
                   np.array([float(c.sum()) for c, _ in family]),
                   np.array([_values(p) for _, p in family]), slope)

    def at(self, s: float, k: float) -> np.ndarray:
        """(time, energy, expert bytes) at S cached tokens and K keys attended: piecewise linear
        in K along the representatives whose keys fill whole tiles, then linear in S at that K."""
        ks, ss, vals = self.ks, self.ss, self.vals
        if len(ks) == 1 or ks[-1] == ks[0]:
            at, s_at = vals[0], ss[0]
        else:
            j = int(np.clip(np.searchsorted(ks, k) - 1, 0, len(ks) - 2))   # segment (ends extend)
            f = (k - ks[j]) / (ks[j + 1] - ks[j])
            at = vals[j] + f * (vals[j + 1] - vals[j])
            s_at = ss[j] + f * (ss[j + 1] - ss[j])
        return at + (s - s_at) * self.slope_s


class IterationCoster:
    """Costs iterations of one system (a SystemUnderTest) through the pass machinery, cached."""

    def __init__(self, system, key_prefix: str = ""):
        from hwsim.scenarios import PassScenario
        self.system, self.key_prefix = system, key_prefix
        self.passes = PassScenario()
        w = system.workload
        self.layers = w.model.n_layers
        moe = w.model.moe
        # identical layers: dense, or MoE with balanced routing (the same expert loads in every
        # layer, hwsim.workloads.routing) and no dense layers among them
        self.extend = self.layers > 1 and (moe is None or (
            w.routing.distribution == "balanced" and moe.first_moe_layer == 0 and moe.every == 1))
        model = w.model.model_copy(update={"n_layers": 1}) if self.extend else w.model
        self._w = w.model_copy(update={"model": model, "phase": "mixed"})
        self._sys = system.model_copy(update={"workload": self._w})
        self._build = load_workloads()[w.kind].build
        self.devices = w.tp * w.ep * w.pp
        self.cache: dict[tuple, IterationCost] = {}
        self.profiles: dict[tuple, LayerProfile] = {}      # layered iterations' parts
        self.extension_error: dict[bool, float] = {}   # has prompt tokens -> |one layer / every layer - 1|
        self._lines: dict[tuple[int, int], tuple] = {}     # (D, log2 M grid) -> _decode_points
        self._line_arrays: dict[tuple[int, int, int], _DecodeLine] = {}   # ... and the tile
        self._key_tile_fn = MAPPERS[system.mapper.name].decode_key_tile
        self._key_tiles: dict[tuple[int, int], int] = {}   # (D, M) -> keys per tile
        self._heads: tuple[int, int, int] | None = None    # (heads, KV heads, head dim) per device
        self.simulations = 0
        self.last_schedule = None

    def workload(self, query: np.ndarray, cached: np.ndarray, full: bool = False):
        """The `mixed` workload of one iteration (`full`: with every layer)."""
        base = self.system.workload.model_copy(update={"phase": "mixed"}) if full else self._w
        requests = base.requests.model_copy(update={
            "distribution": "list", "lens": tuple(int(c) for c in cached),
            "new_tokens": tuple(int(x) for x in query)})
        return base.model_copy(update={"batch": len(query), "requests": requests})

    def simulate_shape(self, query: np.ndarray, cached: np.ndarray) -> IterationCost:
        """One iteration of exactly this shape: the one-layer graph, extended (module docstring).
        The first shape with prompt tokens and the first without are also simulated with every
        layer; if the extension is off by more than EXTENSION_TOLERANCE on either (a mapper
        that overlaps layers), every later iteration is simulated with every layer."""
        return self.compose(self.profile(query, cached))

    def profile(self, query: np.ndarray, cached: np.ndarray) -> LayerProfile:
        """The iteration simulated and split by layer (LayerProfile), with the extension check
        of ``simulate_shape``."""
        if self.extend:
            kind = bool(np.any(query > 1))
            if kind not in self.extension_error:
                prof = self._profile(query, cached)
                one = self.compose(prof)
                full = self.full_pass(query, cached)
                err = max(abs(one.time_s / full.time_s - 1), abs(one.energy_j / full.energy_j - 1))
                self.extension_error[kind] = err
                if err > EXTENSION_TOLERANCE:
                    self._whole_model()
                    self.cache.clear()
                    self.profiles.clear()
                    self._lines.clear()
                    self._line_arrays.clear()
                    return self._profile(query, cached)
                return prof
        return self._profile(query, cached)

    def _whole_model(self) -> None:
        self.extend = False
        self._w = self.system.workload.model_copy(update={"phase": "mixed"})
        self._sys = self.system.model_copy(update={"workload": self._w})

    def _profile(self, query: np.ndarray, cached: np.ndarray) -> LayerProfile:
        self.simulations += 1
        w = self.workload(query, cached)
        system = self._sys.model_copy(update={"workload": w})
        graph = self._build(w)
        schedule = self.passes.schedule(system, graph, self.key_prefix)
        trace = simulate(schedule)
        self.last_schedule = schedule
        expert_ops = {op.name for op in graph.ops if op.expert is not None and op.expert >= 0}
        layers = sorted({t.layer for t in schedule.tasks if t.layer >= 0})
        index = {layer: i for i, layer in enumerate(layers)}
        n = len(layers)
        first, last = np.full(n, math.inf), np.full(n, -math.inf)
        layer_j, expert_b = np.zeros(n), np.zeros(n)
        other_j = 0.0
        for k, t in enumerate(schedule.tasks):
            if t.layer < 0:
                other_j += t.energy_j
                continue
            i = index[t.layer]
            first[i] = min(first[i], trace.start_ns[k])
            last[i] = max(last[i], trace.end_ns[k])
            layer_j[i] += t.energy_j
            if t.op in expert_ops:
                expert_b[i] += sum(t.bytes_by_level.values())
        span = np.maximum(last - first, 0.0) if n else np.zeros(0)
        return LayerProfile(trace.makespan_ns - float(span.sum()), other_j, span, layer_j, expert_b,
                            sum(schedule.static_power_w.values()))

    def compose(self, prof: LayerProfile, other: LayerProfile | None = None,
                group: tuple[int, int] | None = None) -> IterationCost:
        """The iteration's cost from its profile: every layer of `prof` (the extension repeats
        one layer L times). Layered prefill: the layers of `group` = (first, stop) from `prof`
        (prefill chunks and decodes) and the others from `other` (the decodes alone; None: no
        request decodes, those layers do nothing); what lies outside layers from `prof`."""
        L = self.layers
        inside = np.zeros(L, dtype=bool)
        inside[slice(*group) if group else slice(None)] = True
        parts = [(prof, inside)] + ([(other, ~inside)] if other is not None else [])
        time_ns, energy, expert = prof.base_ns, prof.other_j, 0.0
        for p, mask in parts:
            time_ns += float(p.per_layer(p.span_ns, L)[mask].sum())
            energy += float(p.per_layer(p.layer_j, L)[mask].sum())
            expert += float(p.per_layer(p.expert_bytes, L)[mask].sum())
        energy += prof.static_w * time_ns * 1e-9
        return IterationCost(time_ns * 1e-9, energy * self.devices, expert * self.devices)

    def layered_cost(self, chunks: list[tuple[int, int]], dec_ctx: np.ndarray,
                     group: tuple[int, int]) -> IterationCost:
        """A layered-prefill iteration (hwsim.mappers.batching.layered): the prompt chunks run
        through the layers of `group` = (first, stop) together with the decodes, which run
        alone through every other layer. Composed from two simulated iterations split by layer,
        the mixed one and the decode-only one (both cached by shape key): exact when the layers
        run one after another, as on a GPU stream (module docstring, item 1)."""
        if not chunks:
            return self.cost(chunks, dec_ctx)
        key = self._shape_key(chunks, dec_ctx)
        prof = self._profile_at(key)
        other = self._profile_at(self._shape_key([], dec_ctx)) if len(dec_ctx) else None
        return self.compose(prof, other, group)

    def _profile_at(self, key: tuple) -> LayerProfile:
        hit = self.profiles.get(key)
        if hit is None:
            hit = self.profiles[key] = self.profile(*representative(key))
        return hit

    def full_pass(self, query: np.ndarray, cached: np.ndarray) -> IterationCost:
        """The exact iteration through the whole pass scenario (every layer): the reference the
        cached fast path is tested against."""
        w = self.workload(query, cached, full=True)
        result = self.passes.run(self.system.model_copy(update={"workload": w}), self.key_prefix)
        return IterationCost(result.metrics.iteration_latency_s, result.metrics.energy_j)

    def cost(self, chunks: list[tuple[int, int]], dec_ctx: np.ndarray) -> IterationCost:
        """The cached fast path: prompt chunks [(new tokens, cached tokens)] and the cached tokens
        of each decoding request."""
        if not chunks and len(dec_ctx) > 1:
            return self._decode_cost(np.asarray(dec_ctx, dtype=np.int64))
        key = self._shape_key(chunks, dec_ctx)
        (total, big_c, rest), d, k, m, tile, level = key
        lo = total - total % P_STEP
        if total == lo or lo == 0 or rest or d:       # single-prompt prefills only (module docstring)
            return self._at(key)
        c_lo = self._at(((lo, big_c, rest), d, k, m, tile, level))
        c_hi = self._at(((lo + P_STEP, big_c, rest), d, k, m, tile, level))
        if abs(c_hi.time_s - c_lo.time_s) > P_SMOOTH * c_lo.time_s:
            return self._at(key)          # a step inside the interval (a GEMM tile): exact
        f = (total - lo) / P_STEP
        return IterationCost(c_lo.time_s + f * (c_hi.time_s - c_lo.time_s),
                             c_lo.energy_j + f * (c_hi.energy_j - c_lo.energy_j),
                             c_lo.expert_bytes + f * (c_hi.expert_bytes - c_lo.expert_bytes))

    def decode_cost(self, dec_ctx: np.ndarray) -> IterationCost:
        """A decode-only iteration of requests holding `dec_ctx` cached tokens each."""
        dec_ctx = np.asarray(dec_ctx, dtype=np.int64)
        if len(dec_ctx) > 1:
            return self._decode_cost(dec_ctx)
        return self._at(self._shape_key([], dec_ctx))

    def _at(self, key: tuple) -> IterationCost:
        return self._cached(key, *representative(key))

    def _cached(self, key: tuple, query: np.ndarray, cached: np.ndarray) -> IterationCost:
        """The iteration (query, cached) simulated once per cache `key`."""
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = self.simulate_shape(query, cached)
        return hit

    def key_tile(self, d: int, m: int, chunks: tuple = ()) -> int:
        """Keys per tile of the attention kernel the mapper runs for `d` decoding requests whose
        longest holds `m` cached tokens, beside prompt `chunks` [(new tokens, cached tokens)]
        (MapperEntry.decode_key_tile; 1 without one, or without decoding requests)."""
        if self._key_tile_fn is None or d == 0:
            return 1
        k = (d, m, chunks)
        tile = self._key_tiles.get(k)
        if tile is None:
            if self._heads is None:
                graph = self._build(self.workload(np.ones(1, dtype=np.int64), np.ones(1, dtype=np.int64)))
                a = next(op.attention for op in graph.ops if op.attention is not None)
                self._heads = (a.heads, a.kv_heads, a.head_dim)
            heads, kv_heads, head_dim = self._heads
            attn = Attention(query_tokens=(1,) * d + tuple(q for q, _ in chunks),
                             context_lens=(m + 1,) * d + tuple(q + c for q, c in chunks),
                             heads=heads, kv_heads=kv_heads, head_dim=head_dim)
            tile = self._key_tiles[k] = int(self._key_tile_fn(
                self.system.hardware, self.system.mapper.options, attn))
        return tile

    def _shape_key(self, chunks: list[tuple[int, int]], dec_ctx: np.ndarray) -> tuple:
        dec_ctx = np.asarray(dec_ctx, dtype=np.int64)
        m = int(dec_ctx.max()) if len(dec_ctx) else 0
        return shape_key(chunks, dec_ctx, self.key_tile(len(dec_ctx), m, tuple(chunks)))

    def _decode_cost(self, dec_ctx: np.ndarray) -> IterationCost:
        """Decode-only iterations (module docstring, item 4): interpolated in log2 of the longest
        context M between half-octave grid points, and at each through the representatives of
        ``_decode_points``."""
        d, m = len(dec_ctx), int(dec_ctx.max())
        tile = self.key_tile(d, m)
        s, k = float(dec_ctx.sum()), float(keys_attended(dec_ctx, tile))
        x = math.log2(max(m, 1)) * M_PER_OCTAVE
        g = math.floor(x)
        w = x - g
        out = np.zeros(3)
        for grid, weight in ((g, 1.0 - w), (g + 1, w)):
            if weight == 0.0:
                continue
            line = self._line_arrays.get((d, grid, tile))
            if line is None:
                points = self._lines.get((d, grid))
                if points is None:
                    points = self._lines[(d, grid)] = self._decode_points(d, max(1, round(2.0 ** (grid / M_PER_OCTAVE))))
                line = self._line_arrays[(d, grid, tile)] = _DecodeLine.of(points, tile)
            out += weight * line.at(s, k)
        return IterationCost(*(float(v) for v in out))

    def _decode_points(self, d: int, mg: int) -> tuple:
        """Representatives of D decoding requests whose longest holds `mg` cached tokens:
        (family, pair), each point (cached tokens, cost).

        With a key tile of 1 (K = S + D) the family is the others at mg / 4 and all at mg, and
        there is no pair. With tiles, attention computes the rounded keys K but reads the S
        cached ones, so the two vary apart: the family holds the others' keys in whole tiles
        (at about mg / 4, mg / 2 and mg), and the pair is the mg / 2 point next to the same with
        each other request one key into its last tile (same K, S less by tile - 1 each)."""
        tile = self.key_tile(d, mg)
        if tile == 1:
            k1 = mg + 1 + (d - 1) * (max(1, -(-mg // 4)) + 1)
            key1, key2 = ((0, 0, ()), d, k1, mg, 1, 0), ((0, 0, ()), d, d * (mg + 1), mg, 1, 0)
            family = [(representative(key1)[1], self._at(key1))]
            if key2 != key1:
                family.append((representative(key2)[1], self._at(key2)))
            return family, None

        def point(other: int) -> tuple[np.ndarray, IterationCost]:
            cached = np.array([mg] + [other] * (d - 1), dtype=np.int64)
            return cached, self._cached((("decode representative",), d, mg, other),
                                        np.ones(d, dtype=np.int64), cached)

        tiles = sorted({max(1, min(round((mg / f + 1) / tile), (mg + 1) // tile or 1)) for f in (4, 2, 1)})
        family = [point(n * tile - 1) for n in tiles]
        if d == 1:
            return family, None
        half = tiles[len(tiles) // 2]
        return family, (family[len(tiles) // 2], point(half * tile - tile))

    def peak_flops_per_s(self) -> float:
        """Dense peak FLOP/s of one device: its compute resources in a simulated schedule."""
        if self.last_schedule is None:
            self.simulate_shape(np.array([1]), np.array([1]))
        return sum(r.peak_flops_per_ns for r in self.last_schedule.resources.values()
                   if r.kind == "compute") * 1e9

    def peak_memory_bw(self) -> float:
        """Peak bytes/s of one device's memory resources."""
        if self.last_schedule is None:
            self.simulate_shape(np.array([1]), np.array([1]))
        return sum(r.peak_per_ns for r in self.last_schedule.resources.values()
                   if r.kind == "memory") * 1e9

    @property
    def mapper_needs(self):
        return MAPPERS[self.system.mapper.name].needs
