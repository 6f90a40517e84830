"""Cost per token of a serving system, and the published (or reported) prices of the systems that
issue 15 compares (notebooks/wafer_hardwired_threetier.ipynb). The HNLPU's own cost model (masks,
dies, yield, NRE; [HN] Appendix B) is `hwsim.hw.hnlpu.economics`; this module is the part every
system shares.

Cost per token (the total-cost-of-ownership form of Liu et al., "Hardwired-Neurons Language
Processing Units as General-Purpose Cognitive Substrates", arXiv 2508.16151 v2, Appendix B, which
`hwsim.hw.hnlpu.economics` implements for the HNLPU; here for any system):

    hours          = lifetime_years x 365 x 24
    energy_usd     = power_w x pue / 1000 x hours x usd_per_kwh
    tokens         = tokens_per_s x hours x 3600
    usd_per_token  = (capex_usd + energy_usd) / tokens

capex_usd is spent once and amortized over the lifetime, with no discounting, no operations staff
and no resale; the system serves at `tokens_per_s` drawing `power_w` for the whole lifetime (a duty
factor of 1: what the simulator measures is a steady decode iteration). `pue` multiplies the IT
power by the facility's overhead (cooling, power delivery).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

HOURS_PER_YEAR = 365 * 24          # as [HN] Appendix B (no leap days)


@dataclass(frozen=True)
class TokenCost:
    """What `token_cost` returns: the pieces of the formula (module docstring), all in USD."""
    capex_usd: float
    energy_usd: float
    energy_kwh: float
    tokens: float

    @property
    def usd_per_token(self) -> float:
        return (self.capex_usd + self.energy_usd) / self.tokens

    @property
    def usd_per_mtoken(self) -> float:
        return self.usd_per_token * 1e6

    @property
    def capex_share(self) -> float:
        """The share of the cost that is capex (the rest is electricity)."""
        return self.capex_usd / (self.capex_usd + self.energy_usd)


def token_cost(capex_usd: float, power_w: float, tokens_per_s: float, *, lifetime_years: float,
               usd_per_kwh: float, pue: float = 1.0) -> TokenCost:
    """Cost per token of a system bought for `capex_usd`, drawing `power_w` (IT power) while it
    serves `tokens_per_s`, over `lifetime_years`, electricity at `usd_per_kwh` and a facility PUE:
    the closed form of the module docstring ([HN] Appendix B's, generalized)."""
    for name, v, positive in (("capex_usd", capex_usd, False), ("power_w", power_w, False),
                              ("tokens_per_s", tokens_per_s, True), ("lifetime_years", lifetime_years, True),
                              ("usd_per_kwh", usd_per_kwh, False)):
        if not math.isfinite(v) or v < 0 or (positive and v == 0):
            raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'} and finite, got {v}")
    if not math.isfinite(pue) or pue < 1:
        raise ValueError(f"pue must be >= 1, got {pue}")
    hours = lifetime_years * HOURS_PER_YEAR
    kwh = power_w * pue / 1e3 * hours
    return TokenCost(capex_usd=capex_usd, energy_usd=kwh * usd_per_kwh, energy_kwh=kwh,
                     tokens=tokens_per_s * hours * 3600)


def facility_usd(power_w: float, usd_per_mw: float, pue: float = 1.0) -> float:
    """Data-centre build-out for a system's power: `usd_per_mw` per MW of facility load (IT power x
    PUE), as [HN] Appendix B note 4 charges the HNLPU ($12M per MW of critical IT load)."""
    return usd_per_mw * power_w * pue / 1e6


@dataclass(frozen=True)
class Price:
    """A purchase price: `usd` for one `unit`; `low`-`high` the spread of the figures found;
    `source` where it comes from; `assumed` when no published or reported figure was found."""
    usd: float
    unit: str
    low: float
    high: float
    source: str
    assumed: bool = False


PRICES: dict[str, Price] = {
    # One 8-GPU H100 server (the DGX/HGX H100 board with its hosts' CPUs, memory and NICs).
    "h100-8gpu-server": Price(
        usd=270_000.0, unit="8-GPU H100 server", low=199_000.0, high=317_000.0,
        source="SemiAnalysis' estimate of the DGX H100 sale price (~$270,000, 'AI Server Cost Analysis', "
               "May 2023) as used by Epoch AI, github.com/epoch-research/training-cost-trends; low: "
               "DGX H100 base list price $199,000 (supercluster.blog, 'AI Supercluster: NVIDIA DGX "
               "Platform', secondary); high: a Thinkmate HGX H100 quotation of $317k with InfiniBand "
               "(Aug 2024, via substack.tech-talk-cto.com 'H100 Freakonomics', secondary)"),
    # One Cerebras CS-3 (one WSE-3 wafer and its system: power, cooling, I/O).
    "cs-3": Price(
        usd=2.5e6, unit="CS-3 system (one WSE-3)", low=1.36e6, high=3.0e6,
        source="reported, secondary: '\"retail\" pricing of $2.5M per system' and ~$1.36M average per "
               "system to its largest customer from Cerebras' S-1 (Hacker News thread 42180050, Nov "
               "2024); CS-2: '$2 million+' (AnandTech, WSE-2 launch, Apr 2021), 'risen from ~$2-3 "
               "million to several million' (nextbigfuture.com, Apr 2021). Cerebras publishes no price"),
    # One SambaNova SN40L node of 8 sockets.
    "sn40l-8-socket-node": Price(
        usd=270_000.0, unit="SN40L node (8 sockets)", low=199_000.0, high=317_000.0,
        source="ASSUMED: no published or reported price was found; taken equal to the 8-GPU H100 "
               "server above (8 accelerators with HBM in one node)", assumed=True),
}
