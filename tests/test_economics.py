"""Cost per token (hwsim.hw.economics): the closed form, its monotonicity, agreement with the
HNLPU's own cost model ([HN] Appendix B) on the same inputs, and the price table's bookkeeping."""
from __future__ import annotations

import math

import pytest

from hwsim.hw.economics import PRICES, facility_usd, token_cost


def test_closed_form_by_hand():
    # $1M, 1 kW at PUE 1.5, 1,000 tok/s, 2 years, $0.10/kWh:
    # hours = 17,520; energy = 1 x 1.5 x 17,520 kWh = 26,280 kWh -> $2,628;
    # tokens = 1,000 x 17,520 x 3,600 = 6.3072e10; cost = 1,002,628 / 6.3072e10 $/token
    c = token_cost(1e6, 1000.0, 1000.0, lifetime_years=2, usd_per_kwh=0.10, pue=1.5)
    assert c.energy_kwh == pytest.approx(26_280.0)
    assert c.energy_usd == pytest.approx(2_628.0)
    assert c.tokens == pytest.approx(6.3072e10)
    assert c.usd_per_token == pytest.approx(1_002_628.0 / 6.3072e10)
    assert c.usd_per_mtoken == pytest.approx(1_002_628.0 / 6.3072e4)
    assert c.capex_share == pytest.approx(1e6 / 1_002_628.0)


def test_cost_falls_when_throughput_rises_at_fixed_capex_and_power():
    costs = [token_cost(2.5e6, 23_000.0, t, lifetime_years=3, usd_per_kwh=0.095, pue=1.4).usd_per_token
             for t in (100.0, 1_000.0, 10_000.0, 100_000.0)]
    assert all(a > b for a, b in zip(costs, costs[1:]))
    # at fixed capex and power the cost is inversely proportional to throughput
    assert costs[0] / costs[1] == pytest.approx(10.0)


def test_energy_only_and_capex_only_limits():
    # no capex: cost per token = J/token x PUE / 3.6e6 J/kWh x $/kWh
    j_per_token = 50.0 / 1000.0                     # 50 W at 1,000 tok/s
    c = token_cost(0.0, 50.0, 1000.0, lifetime_years=1, usd_per_kwh=0.2, pue=1.2)
    assert c.usd_per_token == pytest.approx(j_per_token * 1.2 / 3.6e6 * 0.2)
    # no power: capex over the tokens of the lifetime
    c = token_cost(3.0e6, 0.0, 1000.0, lifetime_years=3, usd_per_kwh=0.2)
    assert c.usd_per_token == pytest.approx(3.0e6 / (1000.0 * 3 * 8760 * 3600))


def test_agrees_with_the_hnlpu_cost_model():
    """hnlpu.economics' cost per Mtoken is the same closed form on its own capex (which includes
    the facility) and the same lifetime, PUE and electricity price."""
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.hw.hnlpu import chip_area_mm2, economics
    from hwsim.pipeline import evaluate
    r = evaluate(load_config(CONFIG_DIR / "hnlpu-gpt-oss-120b.yaml", ["workload.batch=16", "mapper.groups=2"]))
    spec = r.main.system.hardware.specs("hnlpu")[0]
    e = spec.economics
    power_w, tok_s = 6_900.0, 249_960.0
    ours = economics(spec, e, sum(chip_area_mm2(spec).values()), power_w, tok_s)
    for capex, per_mtoken in zip(ours.initial_capex_usd, ours.cost_per_mtoken_usd):
        c = token_cost(capex, power_w, tok_s, lifetime_years=e.lifetime_years,
                       usd_per_kwh=e.electricity_usd_per_kwh, pue=e.pue)
        assert c.usd_per_mtoken == pytest.approx(per_mtoken, rel=1e-12)
    assert ours.facility_usd == pytest.approx(facility_usd(power_w, e.facility_usd_per_mw, e.pue))


@pytest.mark.parametrize("kwargs", [dict(tokens_per_s=0.0), dict(tokens_per_s=-1.0), dict(capex_usd=-1.0),
                                    dict(power_w=math.nan), dict(lifetime_years=0.0), dict(pue=0.9)])
def test_bad_inputs_are_refused(kwargs):
    args = dict(capex_usd=1e6, power_w=1e3, tokens_per_s=1e3, lifetime_years=3.0, usd_per_kwh=0.1, pue=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError):
        token_cost(args.pop("capex_usd"), args.pop("power_w"), args.pop("tokens_per_s"), **args)


def test_prices_are_ordered_and_sourced():
    for name, p in PRICES.items():
        assert 0 < p.low <= p.usd <= p.high, name
        assert p.source, name
        # an assumed price says so in its source text, a sourced one does not
        assert p.assumed == p.source.startswith("ASSUMED"), name
