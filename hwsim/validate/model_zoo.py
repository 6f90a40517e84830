"""The model zoo against the sizes its papers publish: parameters of every shipped LLM
(configs/models/) and MACs and parameters of every built-in CNN (hwsim.workloads.cnn)."""
from __future__ import annotations

from hwsim.validate import Within, claim

GPT3 = "GPT-3 (Brown et al., NeurIPS'20), Table 2.1"
LLAMA2 = "Llama 2 (Touvron et al., 2023), Table 1 and HF model card"
LLAMA3 = "Llama 3 model cards (Meta, 2024)"
# GPT-2: the released checkpoints' names in openai/gpt-2 (download_model.py: 124M, 355M, 774M,
# 1558M); the paper's Table 2 (117M/345M/762M/1542M) miscounted, as OpenAI's repository notes.
GPT2 = "openai/gpt-2 released model sizes (124M, 355M, 774M, 1558M)"
# model: (published total parameters in billions, active ones for MoE, source)
LLM_PARAMS_B = {
    "gpt2-small": (0.124, None, GPT2),
    "gpt2-medium": (0.355, None, GPT2),
    "gpt2-large": (0.774, None, GPT2),
    "gpt2-xl": (1.558, None, GPT2),
    "gpt3-125m": (0.125, None, GPT3),
    "gpt3-350m": (0.350, None, GPT3),
    "gpt3-760m": (0.760, None, GPT3),
    "gpt3-1.3b": (1.3, None, GPT3),
    "gpt3-7b": (6.7, None, GPT3),
    "gpt3-13b": (13.0, None, GPT3),
    "gpt3-30b": (30.0, None, "NeuPIMs (ASPLOS'24) model table (GPT3-30B)"),
    "gpt3-175b": (175.0, None, GPT3),
    "llama2-7b": (6.74, None, LLAMA2),
    "llama2-13b": (13.0, None, LLAMA2),
    "llama2-70b": (69.0, None, LLAMA2),
    "llama3-8b": (8.03, None, LLAMA3),
    "llama3-70b": (70.6, None, LLAMA3),
    "llama3.1-405b": (405.0, None, "Llama 3.1 model card (Meta, 2024): 405B"),
    "mixtral-8x7b": (46.7, 12.9, "Mixtral of Experts (Jiang et al., 2024), section 2"),
    "deepseek-moe-16b": (16.4, 2.8, "DeepSeekMoE (Dai et al., 2024)"),
    "deepseek-v3": (671.0, 37.0, "DeepSeek-V3 Technical Report (arXiv 2412.19437), abstract"),
    "qwen3-30b-a3b": (30.5, 3.3, "Qwen3 Technical Report (Yang et al. 2025), Table 2; Qwen3-30B-A3B model card"),
    "deepseek-r1": (671.0, 37.0, "deepseek-ai/DeepSeek-R1 model card (Total Params 671B, Activated "
                    "Params 37B; the MTP module's weights not counted)"),
    "opt-66b": (66.0, None, "OPT (Zhang et al., 2022), Table 1: OPT-66B"),
    "grok-1": (314.0, None, "xai-org/grok-1 README: 314B parameters, mixture of 8 experts"),
    "gpt-oss-120b": (116.8, None, "OpenAI gpt-oss model card (Aug 2025): 116.8B total"),
    "opt-6.7b": (6.7, None, "OPT (Zhang et al., arXiv 2205.01068), Table 1: 6.7B"),
    "glam-64b-64e": (1200.0, 96.6, "GLaM (Du et al., ICML 2022), Table 4: 64B/64E, 1.2T parameters, "
                     "96.6B activated"),
    # the model card's "7B parameters"; ours 6.92 B with the LM head tied (configs/models/falcon-7b.yaml)
    "falcon-7b": (7.0, None, "tiiuae/falcon-7b model card: 'a 7B parameters causal decoder-only model'"),
}
LLM_BAND = Within(0.02, "published totals are rounded to 2-3 significant digits: ±2%")
# Totals published with fewer digits: the band is the rounding's half-width.
LLM_BANDS = {("glam-64b-64e", False): Within(0.042, "1.2T is two significant digits: 1.15-1.25T, "
                                              "±4.2%")}


def llm_param_count_b(name: str, active: bool = False) -> float:
    import yaml

    from hwsim.configs import MODELS_DIR
    from hwsim.workloads.models import ModelSpec
    spec = ModelSpec(**yaml.safe_load((MODELS_DIR / f"{name}.yaml").read_text()))
    return spec.param_count(active=active) / 1e9


for _name, (_total, _active, _source) in LLM_PARAMS_B.items():
    claim(id=f"llmzoo.{_name}.params", system="LLM zoo",
          claim=f"{_name} has {_total:g}B parameters", source=_source,
          config=f"configs/models/{_name}.yaml", metric="parameters (all experts)",
          published=_total, unit="B", band=LLM_BANDS.get((_name, False), LLM_BAND))(
              lambda n=_name: llm_param_count_b(n))
    if _active is not None:
        claim(id=f"llmzoo.{_name}.active_params", system="LLM zoo",
              claim=f"{_name} activates {_active:g}B parameters per token", source=_source,
              config=f"configs/models/{_name}.yaml", metric="active parameters per token",
              published=_active, unit="B", band=LLM_BAND)(lambda n=_name: llm_param_count_b(n, True))


# model: (published GMACs, M parameters, source), at the paper's input size
MCUNET_ZOO = "mit-han-lab/mcunet README.md, ImageNet model list"
HE = "He et al. (CVPR'16) and the torchvision model card"
CNN_SIZES = {
    "alexnet": (0.72, 61.0, "Krizhevsky et al. (NeurIPS'12): '60 million parameters'"),
    "vgg16": (15.5, 138.0, "Simonyan & Zisserman (ICLR'15)"),
    "resnet18": (1.8, 11.7, HE),
    "resnet50": (4.1, 25.6, HE),
    "mobilenet_v1": (0.569, 4.2, "Howard et al. (2017), Table 1"),
    "mobilenet_v2": (0.300, 3.4, "Sandler et al. (CVPR'18), Table 2"),
    "mbv2-w0.35": (0.0235, 0.75, f"{MCUNET_ZOO} (mbv2-320kB: 23.5M MACs, 0.75M params)"),
    "mcunet-in0": (0.0064, 0.75, f"{MCUNET_ZOO} (mcunet-10fps: 6.4M MACs, 0.75M params)"),
    # MLPerf Tiny's reference models (mlcommons/tiny). Secondary sources only (the MLPerf Tiny
    # paper's table was not read): a count of the released pretrainedResnet.h5 (16/32/64 filters),
    # 78,186 trainable parameters of which 480 are BatchNorm's gamma and beta (7 BN layers over 240
    # channels), which hwsim folds, so 77,706 conv/FC weights and biases; 12.5 M MACs for its 9
    # convs as a TFLite profile reports them; DS-CNN 2.66 M MACs as a KWS front-end study counts it.
    "resnet8": (0.0125, 0.078186, "mlcommons/tiny pretrainedResnet.h5 as counted in a third-party "
                "acquisition record (78,186 trainable params); 12.5 M MACs from TFLite profiles"),
    "ds-cnn": (0.00266, None, "mlcommons/tiny keyword-spotting DS-CNN, 2.66 M MACs as a third-party "
               "KWS study counts it; no published parameter count was read"),
}
CNN_BAND = Within(0.03, "BatchNorm is folded into one bias per channel and published sizes are "
                  "rounded: ±3%")


def graph_macs(graph) -> float:
    """Multiply-accumulates of a CNN graph's conv and FC layers (pooling, activations excluded)."""
    return sum(op.flops / 2 for op in graph.ops if op.conv is not None or op.matmul is not None)


def cnn_gmacs(name: str) -> float:
    from hwsim.workloads.cnn import build_model
    return graph_macs(build_model(name)) / 1e9


def cnn_mparams(name: str) -> float:
    from hwsim.workloads.cnn import build_model, param_count
    return param_count(build_model(name)) / 1e6


for _name, (_gmacs, _mparams, _source) in CNN_SIZES.items():
    _config = f"workload: {{kind: cnn, model: {_name}}}"
    claim(id=f"cnnzoo.{_name}.macs", system="CNN zoo",
          claim=f"{_name} takes {_gmacs:g} GMACs per image", source=_source, config=_config,
          metric="multiply-accumulates per image (conv + FC)", published=_gmacs, unit="GMAC",
          band=CNN_BAND)(lambda n=_name: cnn_gmacs(n))
    if _mparams is None:        # no published count read: no claim (CNN_SIZES says so)
        continue
    claim(id=f"cnnzoo.{_name}.params", system="CNN zoo",
          claim=f"{_name} has {_mparams:g}M parameters", source=_source, config=_config,
          metric="parameters", published=_mparams, unit="M",
          band=CNN_BAND)(lambda n=_name: cnn_mparams(n))


@claim(id="llmzoo.gpt-oss-120b.active_params", system="LLM zoo",
       claim="gpt-oss-120b activates 5.1B parameters per token",
       source="OpenAI gpt-oss model card (Aug 2025): 5.1B active, the input embedding table not counted",
       config="configs/models/gpt-oss-120b.yaml",
       metric="active parameters per token less the input embedding table (a lookup, as OpenAI counts)",
       published=5.1, unit="B", band=LLM_BAND)
def _():
    import yaml

    from hwsim.configs import MODELS_DIR
    from hwsim.workloads.models import ModelSpec
    spec = ModelSpec(**yaml.safe_load((MODELS_DIR / "gpt-oss-120b.yaml").read_text()))
    return (spec.param_count(active=True) - spec.vocab * spec.d_model) / 1e9
