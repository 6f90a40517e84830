"""Batching policies of the serving scenario (issue 12): each iteration, which requests compute
how many tokens. One module per policy, each registering itself in POLICIES (registry.py)."""
from hwsim.mappers.batching.registry import POLICIES, BatchingPolicy, load_policies, register_policy

__all__ = ["POLICIES", "BatchingPolicy", "load_policies", "register_policy"]
