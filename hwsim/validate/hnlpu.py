"""HNLPU (Liu et al., "Hardwired-Neurons Language Processing Units as General-Purpose Cognitive
Substrates", arXiv 2508.16151 v2, Jan 2026): gpt-oss-120b hardwired in 16 chips at 5 nm.

Ours: configs/hnlpu-gpt-oss-120b.yaml (hwsim/hw/hnlpu.py, hwsim/mappers/hnlpu.py): 216 sequences
in flight at a 2K context, each matmul on its own hardwired block, attention on the VEX, the
dataflow's collectives on the row/column CXL ports; the baseline H100 is
configs/gpt-oss-120b-h100.yaml (batch 1, MXFP4 weights), the WSE-3 configs/wse3-gpt-oss-120b.yaml.
The paper's system figures are in its
abstract and Table 2, its costs in Table 3 and Appendix B.
"""
from __future__ import annotations

import functools

from hwsim.validate import Between, Within, claim

SYSTEM = "HNLPU"
PAPER = ("Liu et al., \"Hardwired-Neurons Language Processing Units as General-Purpose Cognitive "
         "Substrates\", arXiv 2508.16151 v2 (13 Jan 2026)")
CONFIG = "hnlpu-gpt-oss-120b.yaml"


@functools.cache
def run(config: str = CONFIG, *overrides: str):
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.pipeline import evaluate
    return evaluate(load_config(CONFIG_DIR / config, list(overrides))).main


def spec():
    return run().system.hardware.specs("hnlpu")[0]


def tok_s() -> float:
    return run().metrics.throughput_tokens_per_s


def system_power_w() -> float:
    m = run().metrics
    return m.energy_per_token_j * m.throughput_tokens_per_s


@functools.cache
def costs():
    from hwsim.hw.hnlpu import chip_area_mm2, economics
    s = spec()
    return economics(s, s.economics, sum(chip_area_mm2(s).values()), system_power_w(), tok_s())


@claim(id="hnlpu.gpt-oss-120b.throughput_tok_s", system=SYSTEM,
       claim="HNLPU serves gpt-oss-120b at 249,960 tokens/s", source=f"{PAPER}, abstract and Table 2",
       config=f"configs/{CONFIG}", metric="decode tokens/s, 216 sequences in flight, context 2,048",
       published=249960.0, unit="tok/s",
       band=Within(0.20, "±20% (issue 15): a post-layout simulation against an op-level model of "
                   "the dataflow"))
def _():
    return tok_s()


@claim(id="hnlpu.gpt-oss-120b.tokens_per_joule", system=SYSTEM,
       claim="HNLPU reaches 36 tokens/J on gpt-oss-120b", source=f"{PAPER}, abstract; Table 2: 36,226 tokens/kJ",
       config=f"configs/{CONFIG}", metric="tokens per joule of the 16 chips (Table 1 power) and HBM traffic",
       published=36.226, unit="tok/J", band=Within(0.25, "±25% (issue 15)"))
def _():
    return 1.0 / run().metrics.energy_per_token_j


@claim(id="hnlpu.gpt-oss-120b.total_die_area_mm2", system=SYSTEM,
       claim="HNLPU's 16 chips take 13,232 mm2 of silicon", source=f"{PAPER}, abstract; Table 1: 827.08 mm2 per chip",
       config=f"configs/{CONFIG}",
       metric="16 x (hardwired weights / 16 x CMAC area / 15 + Table 1's other blocks)",
       published=13232.0, unit="mm2", band=Within(0.20, "±20% (issue 15)"))
def _():
    return run().metrics.area_mm2


@claim(id="hnlpu.gpt-oss-120b.hn_array_mm2_per_chip", system=SYSTEM,
       claim="The HN array of one chip takes 573.16 mm2", source=f"{PAPER}, Table 1",
       config=f"configs/{CONFIG}",
       metric="hardwired weights per chip x 200 transistors / 138 MTr/mm2 / 15 (metal-embedding gain)",
       published=573.16, unit="mm2",
       band=Within(0.25, "±25%: the density closed form of [HN] 2.2-3.1 against the post-layout array"))
def _():
    from hwsim.hw.hnlpu import chip_area_mm2
    return chip_area_mm2(spec())["hn_array"]


for _end, _published, _i in (("optimistic", 59.46e6, 0), ("pessimistic", 123.5e6, 1)):
    claim(id=f"hnlpu.gpt-oss-120b.initial_capex_{_end}_usd", system=SYSTEM,
          claim=f"HNLPU's estimated NRE at 5 nm (initial CapEx of one system, {_end}) is "
                f"${_published / 1e6:.2f}M",
          source=f"{PAPER}, abstract ($59.46M-123.5M); Table 3 (low volume, total initial CapEx), Table 5",
          config=f"configs/{CONFIG}",
          metric="masks (60 of 70 layers shared, 10 per chip) + design + 16 x (die via dies per wafer "
                 "and Murphy yield at our die area, packaging, HBM, integration) + facility at our power",
          published=_published, unit="USD",
          band=Within(0.10, "±10%: the paper's cost constants, our die area (yield) and power (facility)"))(
        lambda i=_i: costs().initial_capex_usd[i])


for _end, _published, _i in (("optimistic", 18.53e6, 0), ("pessimistic", 37.06e6, 1)):
    claim(id=f"hnlpu.gpt-oss-120b.respin_{_end}_usd", system=SYSTEM,
          claim=f"A parameter-only re-spin of HNLPU costs ${_published / 1e6:.2f}M ({_end})",
          source=f"{PAPER}, 1 and Table 5 (re-spin: metal-embedding masks + recurring, 1 system)",
          config=f"configs/{CONFIG}",
          metric="10 metal-embedding DUV mask layers x 16 chips + 16 x the recurring cost per chip",
          published=_published, unit="USD",
          band=Within(0.10, "±10%: the paper's cost constants and our die area (yield)"))(
        lambda i=_i: costs().respin_usd[i])


@claim(id="hnlpu.gpt-oss-120b.carbon_tco2e", system=SYSTEM,
       claim="One HNLPU system emits 102.0 tCO2e over three years (no re-spin)",
       source=f"{PAPER}, Table 3 (low volume, static) and Appendix B note 8",
       config=f"configs/{CONFIG}",
       metric="16 modules x 124.9 kgCO2e + our power x PUE 1.4 x 3 years x 0.38 kgCO2e/kWh",
       published=102.0, unit="tCO2e", band=Within(0.25, "±25%, as the energy row"))
def _():
    return costs().carbon_tco2e


H100_CONFIG = "gpt-oss-120b-h100.yaml"


@claim(id="hnlpu.gpt-oss-120b.throughput_over_h100", system=SYSTEM,
       claim="HNLPU's throughput is 5,555x an H100's on gpt-oss-120b", source=f"{PAPER}, abstract; Table 2 "
       "(H100: 45 tok/s measured with TensorRT-LLM)",
       config=f"configs/{CONFIG} over configs/{H100_CONFIG}",
       metric="our HNLPU tokens/s over our H100's (batch 1, MXFP4 weights, context 2,048)",
       published=5555.0, unit="x", band=Within(0.25, "±25%, as the throughput and energy rows"))
def _():
    return tok_s() / run(H100_CONFIG).metrics.throughput_tokens_per_s


WSE_CONFIG = "wse3-gpt-oss-120b.yaml"


@claim(id="hnlpu.gpt-oss-120b.throughput_over_wse3", system=SYSTEM,
       claim="HNLPU's throughput is 85x a Cerebras WSE-3's on gpt-oss-120b",
       source=f"{PAPER}, abstract; Table 2 (WSE-3: 2,940 tok/s on Cerebras' cloud)",
       config=f"configs/{CONFIG} over configs/{WSE_CONFIG}",
       metric="our HNLPU tokens/s over our WSE-3 wafer pipeline's (2 wafers, batch 1, MXFP4, context 2,048)",
       published=85.0, unit="x", band=Within(0.25, "±25%, as the throughput and energy rows"))
def _():
    return tok_s() / run(WSE_CONFIG).metrics.throughput_tokens_per_s


@claim(id="hnlpu.gpt-oss-120b.cxl_binds", system=SYSTEM,
       claim="At short context the inter-chip CXL communication dominates HNLPU's time",
       source=f"{PAPER}, 7.4 and Fig. 14 (82.9% of the time at 2K)", config=f"configs/{CONFIG}",
       metric="work of the busiest CXL port group / the largest other resource's work "
              "(VEX, HN block, Attention Buffer, HBM)",
       published=None, unit="x",
       band=Between(1.0, None, "above 1: the fabric, not compute or memory, bounds the pass"))
def _():
    from hwsim.mappers.hnlpu import busy_by_bound
    b = busy_by_bound(run().schedule)
    cxl = max(b["cxl_row"], b["cxl_col"])
    return cxl / max(v for k, v in b.items() if not k.startswith("cxl"))
