"""Ring-Attention vs TokenRing (issue 13 item 7): one causal attention layer of LLaMA-2-7B (MHA,
32 heads of 128, BF16; the TokenRing README's model configuration) over 128K tokens on H100s
in a fully connected mesh (450/7 GB/s per pair and direction: an H100's NVLink split evenly over
7 peers, assumed; 1.7 us per link, configs/presets/hgx-h100.yaml), degree 2 to 32: time of the
layer, the compute-only time and the exposed communication, per scheme; then LLaMA-3-8B (GQA,
8 KV heads) where Ring-Attention's K/V blocks are a quarter of TokenRing's Q + output bytes.
Prints figures; asserts nothing. About 20 s.

    python benchmarks/bench_seqpar.py [seq_len]
"""
import sys

import yaml
from timing import table

from hwsim.configs import MODELS_DIR, PRESETS_DIR
from hwsim.hw.gpu import GPUSpec
from hwsim.hw.interconnect import FullMeshSpec
from hwsim.mappers.seqpar import SequenceParallelSpec, run_seqpar
from hwsim.workloads.models import ModelSpec


def load(folder, name, cls):
    data = yaml.safe_load((folder / f"{name}.yaml").read_text())
    data.pop("component", None)
    return cls(**data)


def sweep(model_name, seq):
    gpu, model = load(PRESETS_DIR, "h100-sxm", GPUSpec), load(MODELS_DIR, model_name, ModelSpec)
    rows = []
    for n in (2, 4, 8, 16, 32):
        net = FullMeshSpec(kind="full_mesh", devices=n, link_bw_gbps=450 / 7,
                           link_latency_ns=1700, energy_pj_per_bit=5.0).build()
        r = {s: run_seqpar(SequenceParallelSpec(scheme=s, degree=n, seq_len=seq), model, "bf16",
                           gpu, net) for s in ("ring_attention", "tokenring")}
        ring, token = r["ring_attention"], r["tokenring"]
        rows.append([n, seq // n, f"{ring.compute_ns / 1e6:.3f}",
                     f"{ring.makespan_ns / 1e6:.3f}", f"{max(ring.exposed_ns, 0) / ring.makespan_ns:.0%}",
                     f"{token.makespan_ns / 1e6:.3f}", f"{max(token.exposed_ns, 0) / token.makespan_ns:.0%}",
                     f"{ring.makespan_ns / token.makespan_ns:.2f}x"])
    table(f"{model_name}, {seq:,} tokens, causal, H100 full mesh",
          ["degree", "block tokens", "compute ms", "ring ms", "ring exposed", "tokenring ms",
           "tokenring exposed", "ring / tokenring"], rows)


if __name__ == "__main__":
    seq = int(sys.argv[1]) if len(sys.argv) > 1 else 131072
    sweep("llama2-7b", seq)
    sweep("llama3-8b", seq)
