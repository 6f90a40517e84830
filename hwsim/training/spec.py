"""`scenario: {kind: training, ...}`: one training step of the workload (hwsim.training)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hwsim.spec import Spec


class NMSpec(Spec):
    """N:M structured sparsity of the weights (N kept in every M along the reduction)."""
    n: int = Field(gt=0, le=64)
    m: int = Field(gt=0, le=64)

    @model_validator(mode="after")
    def _n_le_m(self):
        if self.n > self.m:
            raise ValueError(f"N:M needs N <= M, got {self.n}:{self.m}")
        return self


class TrainingSpec(Spec):
    """One training step (forward, backward, update) of the workload's batch
    (hwsim.workloads.training states the graph and its closed forms)."""
    kind: Literal["training"] = "training"
    optimizer: Literal["sgd", "momentum", "adam"] = Field(default="sgd", description="the update: "
                                                         "plain SGD, SGD with momentum, or Adam")
    norms: Literal["batchnorm", "none"] = Field(default="batchnorm", description="CNNs: a BatchNorm "
                                                "(+ ReLU) after every conv, forward and backward (folded "
                                                "in inference graphs), or none. Transformers train the "
                                                "model's own norms")
    first_layer_input_grad: bool = Field(default=False, description="also compute the gradient "
                                         "w.r.t. the network's input (not needed to train)")
    nm_sparsity: NMSpec | None = Field(default=None, description="weights pruned N:M in the forward "
                                       "and backward passes (SAT's BDWP); none: dense training")
