"""DRACO (Jha et al., "DRACO: Co-Optimizing Hardware Utilization, and Performance of DNNs on
Systolic Accelerator", ISVLSI 2020, arXiv 2006.15103): MobileNetV1 on a 64x64 systolic array
(configs/draco-mobilenet.yaml). hwsim reproduces the problem DRACO starts from, not its remedy."""
from __future__ import annotations

import functools

from hwsim.validate import Between, Claim, Within, claim, register

SYSTEM = "DRACO"
PAPER = "DRACO (Jha et al., ISVLSI'20, arXiv 2006.15103), abstract"
CONFIG = "configs/draco-mobilenet.yaml"
REMEDY = ("DRACO's remedy is a co-designed network (depthwise layers traded for group convolutions) "
          "mapped row-stationary in nn_dataflow; hwsim models neither that network nor a "
          "row-stationary dataflow")


@functools.cache
def mobilenet_layer_costs():
    """Per-layer SCALE-Sim-style costs of MobileNetV1 on the config's array: (costs, op kinds)."""
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.hw.systolic import SystolicArray, array_layers, network_cost
    from hwsim.workloads.cnn import build_model
    npu = load_config(CONFIG_DIR / "draco-mobilenet.yaml").hardware.npu
    graph = build_model("mobilenet_v1")
    costs = network_cost(SystolicArray(npu.rows, npu.cols, npu.dataflow), array_layers(graph))
    kinds = {op.name: op.kind for op in graph.ops}
    return costs, kinds


@claim(id="draco.depthwise_underuses_the_array", system=SYSTEM,
       claim="MobileNetV1's memory-bound depthwise layers leave most of a 64x64 array idle",
       source=f"{PAPER} (the problem it attacks); direction only", config=CONFIG,
       metric="mean PE utilization of the pointwise layers / of the depthwise layers",
       published=None, unit="x",
       band=Between(1.0, None, "a direction: the depthwise layers use the array less"))
def _():
    import numpy as np

    from hwsim.workloads.ops import OpKind
    costs, kinds = mobilenet_layer_costs()
    depthwise = [c.overall_util for c in costs if kinds[c.name] == OpKind.DEPTHWISE_CONV]
    pointwise = [c.overall_util for c in costs if c.name.startswith("pw")]
    return float(np.mean(pointwise) / np.mean(depthwise))


for _id, _what, _value in [("pe_utilization_gain", "raises average PE utilization by", 41.8),
                           ("latency_reduction", "cuts inference latency by", 42.6)]:
    register(Claim(id=f"draco.{_id}", system=SYSTEM,
                   claim=f"DRACO {_what} {_value}% over row-stationary on MobileNetV1 (64x64)",
                   source=PAPER, config=CONFIG, metric=_id.replace("_", " "), published=_value,
                   unit="%", band=Within(0.20, "±20% (systolic_mcu_dse_anchors.md, target 8)"),
                   ours=None, not_reproduced=REMEDY))
