"""Device-to-device links and the collectives that run on them.

Ring all-reduce of a B-byte buffer over p devices sends 2(p-1)/p * B per device in 2(p-1) steps
(Patarasuk & Yuan, "Bandwidth optimal all-reduce algorithms for clusters of workstations",
JPDC 2009); an all-to-all in which a device sends S bytes to the others takes (p-1) steps
(pairwise exchange; Thakur, Rabenseifner & Gropp, IJHPCA 2005). A point-to-point transfer
between pipeline stages sends its buffer once, in one step.
"""
from __future__ import annotations

from pydantic import Field

from hwsim.spec import Spec
from hwsim.workloads.ops import OpKind


class LinkSpec(Spec):
    bw_gbps: float = Field(gt=0, description="per device, per direction")
    latency_us: float = Field(default=0.0, ge=0, description="per step")
    energy_pj_per_bit: float = Field(default=0.0, ge=0)


def collective_bytes_sent(kind: OpKind, group: int, nbytes: float) -> float:
    """Bytes one device puts on its link for the collective."""
    if group <= 1:
        return 0.0
    if kind == OpKind.ALL_REDUCE:
        return 2.0 * (group - 1) / group * nbytes
    return float(nbytes)  # all-to-all and p2p: the op records what this device sends


def collective_buffer_bytes(kind: OpKind, group: int, sent: float) -> float:
    """The buffer of one device whose collective puts `sent` bytes on its link (the inverse of
    `collective_bytes_sent`)."""
    if kind == OpKind.ALL_REDUCE and group > 1:
        return sent * group / (2.0 * (group - 1))
    return float(sent)


def collective_steps(kind: OpKind, group: int) -> int:
    if group <= 1:
        return 0
    if kind == OpKind.P2P:
        return 1
    return 2 * (group - 1) if kind == OpKind.ALL_REDUCE else group - 1


def collective_cost(op, link: LinkSpec | None):
    """Time, bytes and energy of a collective op on the device's link: the bytes one device
    sends (collective_bytes_sent), one latency per step, energy per bit sent."""
    from hwsim.hw.cost import OpCost
    from hwsim.hw.energy import energy_components_j
    if link is None:
        raise ValueError(f"op {op.name} is a collective but the hardware has no `link`")
    sent = collective_bytes_sent(op.kind, op.collective.group, op.collective.bytes)
    latency = collective_steps(op.kind, op.collective.group) * link.latency_us * 1e3
    parts = energy_components_j(link=sent * 8 * link.energy_pj_per_bit)
    return OpCost(compute_ns=0.0, bytes_by_level={"link": sent}, energy_j=sum(parts.values()),
                  roofline_ns=sent / link.bw_gbps + latency, latency_ns=latency, engine="link",
                  energy_by_component_j=parts)


def _link_check_case(datapath: str, device, op, ctx):
    from hwsim.hw.kernels.cases import op_case
    return op_case(_link_check_unit(datapath), device.hardware, op, ctx)


def _link_check_unit(datapath: str) -> str:
    return "link"


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

register_component(ComponentKind(
    name="link", spec=LinkSpec, role="link",
    summary="device-to-device link: bandwidth per direction, latency per step, energy per bit",
    op_costs={k.value: lambda device, op, where: collective_cost(op, device.hardware.link)
              for k in OpKind if k.is_collective},
    static_power_w=None, energy_buckets=("link",), check_cases=_link_check_case,
    check_unit=_link_check_unit))
