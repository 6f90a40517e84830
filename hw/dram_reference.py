"""Command-level reference for one HBM/DRAM channel, in numba: open-page policy, FR-FCFS
scheduling over a window of requests, tRRD/tFAW per rank, read/write turnaround and refresh —
the slow model that `hwsim.hw.dram.stream_cost`'s closed form is checked against.

Address mapping of ``simulate_stream`` (most to least significant bits of the burst index):
``row | rank | bank | column | bankgroup | pseudo-channel`` by default ("bank group interleaved",
so a sequential stream alternates bank groups at tCCD_S), or the DRAMsim3-style
``row | rank | bank | bankgroup | column | pseudo-channel`` (a row's bursts stay in one bank group).
"""
from __future__ import annotations

import numba
import numpy as np

from hwsim.hw.dram import MAPPINGS, SCHEDULER_WINDOW, DramTiming, write_drain_watermarks

_BC, _CL, _CWL, _RCD, _RP, _RAS, _CCDS, _CCDL, _RRDS, _RRDL, _FAW, _WTRS, _WTRL, _WRREC, _RTP, \
    _REFI, _RFC, _RTRS = range(18)
# state columns: bank (open row, ACT, RD, WR, ready-for-ACT); group (-, ACT, RD, WR);
# rank (-, ACT, RD, WR, FAW ring position, last four ACTs)
_ROW, _ACT, _RD, _WR, _READY, _FAWI, _FAW0 = 0, 1, 2, 3, 4, 4, 5


def _timing_cycles(t: DramTiming) -> np.ndarray:
    ns = (t.cl_ns, t.cwl_ns, t.trcd_ns, t.trp_ns, t.tras_ns, t.tccd_s_ns, t.tccd_l_ns, t.trrd_s_ns,
          t.trrd_l_ns, t.tfaw_ns, t.twtr_s_ns, t.twtr_l_ns, t.twr_ns, t.trtp_ns, t.trefi_ns, t.trfc_ns,
          t.trtrs_ns)
    return np.array([t.burst_cycles] + [t.cycles(x) for x in ns], dtype=np.int64)


def decode_addresses(t: DramTiming, addresses: np.ndarray, mapping: str = MAPPINGS[0]):
    """Channel-local byte addresses -> (pseudo-channel, rank, bank group, bank, row) per mapping."""
    blk = np.asarray(addresses, dtype=np.int64) // t.burst_bytes
    pc, blk = blk % t.pseudo_channels_per_channel, blk // t.pseudo_channels_per_channel
    cols = t.row_bytes // t.burst_bytes
    if mapping == MAPPINGS[0]:
        bg, blk = blk % t.bank_groups, blk // t.bank_groups // cols
    elif mapping == MAPPINGS[1]:
        blk = blk // cols
        bg, blk = blk % t.bank_groups, blk // t.bank_groups
    else:
        raise ValueError(f"mapping must be one of {MAPPINGS}")
    bank, blk = blk % t.banks_per_group, blk // t.banks_per_group
    rank, blk = blk % t.ranks, blk // t.ranks
    return pc, rank, bg, bank, blk % t.rows


@numba.njit(cache=True)
def _precharge_ready(p, bk, b):
    """Earliest PRE of bank b: tRAS after ACT, tRTP after RD, CWL + BL/2 + tWR after WR."""
    return max(bk[b, _ACT] + p[_RAS], bk[b, _RD] + p[_RTP], bk[b, _WR] + p[_CWL] + p[_BC] + p[_WRREC])


@numba.njit(cache=True)
def _issue_times(p, bk, grp, rk, b, g, r, ranks_of_pc, row, write, enq):
    """(row hit, ACT cycle or -1, column command cycle) of one request in the current state."""
    bc, cl, cwl, rtrs = p[_BC], p[_CL], p[_CWL], p[_RTRS]
    hit = bk[b, _ROW] == row
    ta = -1
    if hit:
        t = bk[b, _ACT] + p[_RCD]
    else:
        ta = max(enq, _precharge_ready(p, bk, b)) + p[_RP] if bk[b, _ROW] >= 0 else max(enq, bk[b, _READY])
        ta = max(ta, rk[r, _ACT] + p[_RRDS], grp[g, _ACT] + p[_RRDL], rk[r, _FAW0 + rk[r, _FAWI]] + p[_FAW])
        t = ta + p[_RCD]
    t = max(t, enq)
    if write:
        t = max(t, grp[g, _WR] + max(bc, p[_CCDL]), rk[r, _WR] + max(bc, p[_CCDS]))
    else:
        t = max(t, grp[g, _RD] + max(bc, p[_CCDL]), rk[r, _RD] + max(bc, p[_CCDS]),
                grp[g, _WR] + cwl + bc + p[_WTRL], rk[r, _WR] + cwl + bc + p[_WTRS])
    for r2 in ranks_of_pc:
        if write:
            t = max(t, rk[r2, _WR] + bc, rk[r2, _RD] + cl + bc - cwl + rtrs)
        elif r2 != r:
            t = max(t, rk[r2, _RD] + bc + rtrs, rk[r2, _WR] + cwl + bc + rtrs - cl)
    return hit, ta, t


@numba.njit(cache=True)
def _simulate(p, n_pc, ranks_per_pc, groups_per_pc, banks_per_pc, pc, rank_id, group_id, bank_id, row,
              is_write, window, write_high, write_low):
    never = -(1 << 40)
    n = row.shape[0]
    bk = np.full((n_pc * banks_per_pc, 5), never)
    bk[:, _ROW], bk[:, _READY] = -1, 0
    grp, rk = np.full((n_pc * groups_per_pc, 4), never), np.full((n_pc * ranks_per_pc, 9), never)
    rk[:, _FAWI] = 0
    next_ref = np.full(n_pc, p[_REFI], np.int64)
    enq, hits_on_bank = np.zeros(n, np.int64), np.zeros(bk.shape[0], np.int64)
    slot = np.full(window, -1, np.int64)
    writes = 0
    for s in range(min(window, n)):
        slot[s] = s
        writes += is_write[s]
    nxt, done, draining, bypass, oldest_seen = min(window, n), 0, False, 0, -1
    end, activates, row_hits = 0, 0, 0
    while done < n:
        if draining and writes <= write_low and writes < n - done:
            draining = False
        elif not draining and (writes >= write_high or writes == min(window, n - done)):
            draining = True
        for s in range(window):
            q = slot[s]
            if q >= 0 and is_write[q] == draining:
                hits_on_bank[bank_id[q]] += bk[bank_id[q], _ROW] == row[q]
        oldest, best, best_t, best_hit = -1, -1, 0, False
        for s in range(window):
            q = slot[s]
            if q < 0 or is_write[q] != draining:
                continue
            if oldest < 0 or q < slot[oldest]:
                oldest = s
            b = bank_id[q]
            if bk[b, _ROW] != row[q] and hits_on_bank[b] > 0:
                continue  # a miss may not close a row the window still hits
            hit, ta, t = _issue_times(p, bk, grp, rk, b, group_id[q], rank_id[q],
                                      range(pc[q] * ranks_per_pc, (pc[q] + 1) * ranks_per_pc), row[q], is_write[q], enq[q])
            if best < 0 or t < best_t or (t == best_t and (hit > best_hit or (hit == best_hit and q < slot[best]))):
                best, best_t, best_hit = s, t, hit
        hits_on_bank[:] = 0
        if slot[oldest] != oldest_seen:
            oldest_seen, bypass = slot[oldest], 0
        elif best != oldest:
            bypass += 1
        if bypass > 4 * window:
            best = oldest  # age cap: the oldest request of this direction cannot starve
        q = slot[best]
        u, r, g, b = pc[q], rank_id[q], group_id[q], bank_id[q]
        hit, ta, t = _issue_times(p, bk, grp, rk, b, g, r, range(u * ranks_per_pc, (u + 1) * ranks_per_pc),
                                  row[q], is_write[q], enq[q])
        if t >= next_ref[u]:
            ref, banks = next_ref[u], range(u * banks_per_pc, (u + 1) * banks_per_pc)
            for b2 in banks:  # all-bank refresh: precharge what is open, then tRFC
                if bk[b2, _ROW] >= 0:
                    ref = max(ref, _precharge_ready(p, bk, b2) + p[_RP])
            for b2 in banks:
                bk[b2, _ROW], bk[b2, _READY] = -1, ref + p[_RFC]
            next_ref[u] += p[_REFI]
            continue
        if hit:
            row_hits += 1
        else:
            activates += 1
            bk[b, _ROW], bk[b, _ACT], rk[r, _ACT], grp[g, _ACT] = row[q], ta, ta, ta
            rk[r, _FAW0 + rk[r, _FAWI]] = ta
            rk[r, _FAWI] = (rk[r, _FAWI] + 1) % 4
        col = _WR if is_write[q] else _RD
        bk[b, col], grp[g, col], rk[r, col] = t, t, t
        end = max(end, t + (p[_CWL] if is_write[q] else p[_CL]) + p[_BC])
        done += 1
        writes -= is_write[q]
        slot[best] = -1
        if nxt < n:
            slot[best], enq[nxt] = nxt, t
            writes += is_write[nxt]
            nxt += 1
    return end, activates, row_hits


def simulate_stream(timing: DramTiming, addresses: np.ndarray, is_write: np.ndarray,
                    mapping: str = MAPPINGS[0], window: int = SCHEDULER_WINDOW) -> tuple[float, int, int]:
    """Command-level timing of burst-sized requests on ONE channel (addresses are channel-local).

    Open page. One ``window``-request queue for the channel; reads are served until the queue holds
    the high watermark of writes, then writes drain down to the low one (``write_drain_watermarks``).
    FR-FCFS-lite within the served direction: the request whose column command can issue first
    wins, row hits on ties, then the oldest; a miss never closes a row the queue still hits; the
    oldest is forced after 4 x window bypasses. PRE/ACT never precede a request's arrival in the
    queue. Per bank: open row, last ACT/RD/WR; tRRD_S/L and tFAW per rank; tCCD_S/L per bank
    group; rank switches BL/2 + tRTRS; tWTR/tRTP/tWR turnarounds; all-bank refresh per
    pseudo-channel every tREFI for tRP + tRFC.
    Returns (time of the last data beat in ns, activates, row hits).
    """
    pc, rank, bg, bank, row = decode_addresses(timing, addresses, mapping)
    rank_id = pc * timing.ranks + rank
    group_id = rank_id * timing.bank_groups + bg
    bank_id = group_id * timing.banks_per_group + bank
    t = timing
    end, activates, row_hits = _simulate(
        _timing_cycles(t), t.pseudo_channels_per_channel, t.ranks, t.ranks * t.bank_groups,
        t.banks_per_channel // t.pseudo_channels_per_channel, pc, rank_id, group_id, bank_id, row,
        np.asarray(is_write, dtype=np.bool_), window, *write_drain_watermarks(window))
    return end * timing.tck_ns, int(activates), int(row_hits)
