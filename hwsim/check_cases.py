"""Which kernel case `--check` runs for each op of a system: the op's task says which registered
component kind and datapath ran it (`Task.component`, `Task.datapath`); that kind's registered
`check_cases` builds the case (hw/kernels/cases.py for the built-in kinds: which kernel models
which op and how shapes are scaled down)."""
from __future__ import annotations

from hwsim.hw.kernels.cases import NOT_COMPUTED, CheckContext, KernelCase, _cap  # noqa: F401
from hwsim.hw.registry import COMPONENTS


def placements(sys_result) -> dict[str, tuple[str, str]]:
    """op name -> (component kind, datapath) of the task that ran it ("", "") if none. An op
    split over several tasks (PIM channels, sub-batches) ran where its first task did."""
    out: dict[str, tuple[str, str]] = {}
    for task in sys_result.schedule.tasks:
        if task.op and task.op not in out:
            out[task.op] = (task.component, task.datapath)
    return out


def unit_label(component: str, datapath: str) -> str:
    """How the check report names where an op ran (each kind's registered `check_unit`)."""
    entry = COMPONENTS.get(component)
    if entry is None or entry.check_unit is None:
        return component or "none"
    return entry.check_unit(datapath)


def cases_for(sys_result) -> tuple[list[tuple[KernelCase, str]], dict[str, str]]:
    """[(case, op name)] for every op of a system, and {op kind: why not computed}."""
    where = placements(sys_result)
    graph, system = sys_result.graph, sys_result.system
    device = system.hardware.device()
    ops = {op.name: op for op in graph.ops}
    attn = [op for op in graph.ops if op.attention is not None]
    context_len = int(max((op.attention.context_array.max() for op in attn), default=2048))
    out, skipped = [], {}
    for op in graph.ops:
        kind = str(op.kind.value)
        if kind in NOT_COMPUTED:
            skipped[kind] = NOT_COMPUTED[kind]
            continue
        component, datapath = where.get(op.name, ("", ""))
        score = None
        if kind == "softmax":
            score = next((ops[p] for p in graph.predecessors(op.name) if ops[p].attention is not None), None)
        ctx = CheckContext(system, context_len, score,
                           unit_label(*where.get(score.name, ("", ""))) if score is not None else "")
        entry = COMPONENTS.get(component)
        case = entry.check_cases(datapath, device, op, ctx) if entry and entry.check_cases else None
        if case is None:
            skipped[kind] = f"no functional model for {kind} on {unit_label(component, datapath)}"
        else:
            out.append((case, op.name))
    return out, skipped
