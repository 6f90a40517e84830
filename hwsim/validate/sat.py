"""SAT (Fang, Sun, Zhou, Wang, "Efficient N:M Sparse DNN Training Using Algorithm, Architecture, and
Dataflow Co-Design", IEEE TCAD 2023, arXiv 2309.13015, abstract): 2:8 sparse training with
bidirectional weight pruning runs 1.75x faster than dense training on average
(configs/sat-nm-train.yaml: one ResNet-18 step, 2:8 against dense, on the sat component whose
GEMMs that read weights run N:M sparse: hw/sat.py). Amdahl: 1.75x with a 4x sparse speed-up
means ~57% of the dense step is accelerated; ours says which share is, from the graph."""
from __future__ import annotations

import functools

from hwsim.validate import Within, claim


@functools.cache
def _run():
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.pipeline import evaluate
    return evaluate(load_config(CONFIG_DIR / "sat-nm-train.yaml"))


@claim(id="sat.nm_2_8_speedup_over_dense", system="SAT",
       claim="2:8 sparse training (BDWP) is 1.75x faster than dense training on average",
       source="SAT (Fang et al., IEEE TCAD 2023, arXiv 2309.13015), abstract",
       config="configs/sat-nm-train.yaml", metric="dense step latency / 2:8 step latency",
       published=1.75, unit="x",
       band=Within(0.20, "±20% (issue 16): one network (ResNet-18, batch 16) for the paper's average "
                   "over its models; the accelerator's array, clock and DRAM are assumed (the paper's "
                   "body was not read)"))
def _():
    r = _run()
    return r.baselines["dense"].metrics.iteration_latency_s / r.main.metrics.iteration_latency_s
