"""Physics that must hold for every shipped config, main system and every baseline."""
import numpy as np
import pytest

from hwsim.hw.link import collective_bytes_sent
from conftest import systems

@pytest.fixture
def result(shipped_result):
    return shipped_result


def test_no_task_beats_its_roofline(result):
    for name, r in systems(result):
        durations = r.trace.end_ns - r.trace.start_ns
        for task in r.schedule.tasks:     # a few ulps of the end time: nanosecond tasks late in long runs
            slack = 4 * np.spacing(r.trace.end_ns[task.id])
            assert durations[task.id] >= task.roofline_ns * (1 - 1e-9) - slack, (name, task.name)
        assert r.metrics.iteration_latency_s >= r.metrics.roofline_bound_s * (1 - 1e-9)


def test_utilization_within_unit_interval(result):
    for name, r in systems(result):
        for res, u in {**r.metrics.utilization, **r.metrics.busy}.items():
            assert 0.0 <= u <= 1.0 + 1e-9, (name, res, u)


def test_bytes_conserved(result):
    """Every weight and KV byte is moved at least once (off-chip, or inside PIM banks); what the
    banks read equals the weights and KV of the ops the PIM ran, exactly; a one-pass mapper moves no more than the
    ops touch; link bytes are exactly what the collectives must send. A replica on a topology:
    the same over its distinct devices, each counted as often as it occurs (task copies)."""
    for name, r in systems(result):
        if r.replica is None:
            graphs, tasks, copies = [(r.graph, 1)], r.schedule.tasks, [1.0] * len(r.schedule.tasks)
        else:
            part, replica = r.replica
            graphs = [(d.graph, d.count) for d in part.devices]
            tasks, copies = replica.schedule.tasks, replica.copies
        ops = [(op, n) for g, n in graphs for op in g.ops]
        off_chip = [*r.metrics.memory_levels, "pim_internal"]
        moved = sum(t.bytes_by_level.get(lv, 0.0) * c for t, c in zip(tasks, copies) for lv in off_chip)
        # weights hardwired in metal (hwsim.hw.hnlpu) are never moved: only the KV bytes are
        from hwsim.hw.registry import component
        in_metal = any(component(k).weights_in_metal for k in r.system.hardware.present())
        floor = sum(((0 if in_metal else op.weight_bytes) + op.kv_read_bytes + op.kv_write_bytes) * n
                    for op, n in ops if not op.kind.is_collective)
        # activation sparsity (mappers/flash.py): FFN neurons outside the window are never read
        floor -= getattr(r.schedule, "skipped_weight_bytes", 0.0)
        assert moved >= floor * (1 - 1e-9), name
        in_banks = sum(t.bytes_by_level.get("pim_internal", 0.0) for t in tasks)
        if in_banks:       # PIM reads its ops' weights and KV inside the banks, each byte once
            on_pim = {t.op for t in tasks if "pim_internal" in t.bytes_by_level}
            expected = sum(op.weight_bytes + op.kv_read_bytes for op, _ in ops if op.name in on_pim)
            assert in_banks == pytest.approx(expected, rel=1e-6), name
        # one task per op; a PIM's input vectors are copied to every channel that uses them
        # (GWRITE broadcast), so PIM systems are bounded by their own closed form instead
        # (tests/test_pim_gpt.py); unfused eager GPU kernels pass each norm/activation tensor
        # through memory once per kernel on purpose (hwsim.hw.gpu.UNFUSED_KERNELS)
        fused = getattr(r.system.mapper.options, "fused_elementwise", True)
        if r.replica is None and len(tasks) == len(ops) and not in_banks and fused:
            ceiling = sum(op.memory_bytes for op, _ in ops if not op.kind.is_collective)
            assert moved <= ceiling, name
        link = sum(t.bytes_by_level.get("link", 0.0) * c for t, c in zip(tasks, copies))
        expected = sum(collective_bytes_sent(op.kind, op.collective.group, op.collective.bytes) * n
                       for op, n in ops if op.kind.is_collective)
        assert link == pytest.approx(expected, rel=1e-6), name


def test_energy_positive_and_throughput_consistent(result):
    for name, r in systems(result):
        m = r.metrics
        assert m.energy_j > 0 and m.energy_per_work_unit_j > 0, name
        assert m.throughput_per_s == pytest.approx(m.work_per_iteration / m.iteration_latency_s)
