"""HBM/DRAM timing: a validated device spec, shipped presets and a closed-form stream cost.
The command-level numba reference that checks the closed form is `hwsim.hw.dram_reference`.

Timing rules follow JEDEC as DRAMsim3 implements them (``umd-memsys/DRAMsim3:src/timing.cc``):
RD->RD max(BL/2, tCCD_L) in a bank group, max(BL/2, tCCD_S) across groups, BL/2 + tRTRS across
ranks; RD->WR CL + BL/2 - CWL + tRTRS; WR->RD CWL + BL/2 + tWTR_L/S; RD->PRE tRTP;
WR->PRE CWL + BL/2 + tWR; ACT->ACT tRC per bank, tRRD_L/S per group/rank, four per tFAW per rank.
Nanoseconds become cycles with ceil, never round (CMU-SAFARI/ramulator2#231).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import Field, model_validator

from hwsim.spec import Spec

MAPPINGS = ("row:bank:column:bankgroup", "row:bank:bankgroup:column")
SCHEDULER_WINDOW = 32
PATTERNS = ("sequential", "strided", "random")


class DramTiming(Spec):
    """Organisation, timing (ns) and energy of one HBM/DRAM device (a stack of channels).

    ``bus_width_bits`` is the width of one pseudo-channel (the whole channel when
    ``pseudo_channels_per_channel`` is 1): each pseudo-channel has its own data bus, banks, tRRD
    and tFAW. ``ranks`` are rank/SID groups sharing a (pseudo-)channel bus, each with its own tFAW.
    """

    name: str = ""
    channels: int = Field(gt=0)
    pseudo_channels_per_channel: int = Field(default=1, gt=0)
    ranks: int = Field(gt=0)
    bank_groups: int = Field(gt=0)
    banks_per_group: int = Field(gt=0)
    rows: int = Field(gt=0)
    row_bytes: int = Field(gt=0, description="page size of one bank")
    bus_width_bits: int = Field(gt=0)
    burst_length: int = Field(gt=0)
    transfers_per_clock: int = Field(default=2, gt=0, description="2 for DDR; 4 for HBM3 (4 UI/tCK)")
    tck_ns: float = Field(gt=0)
    cl_ns: float = Field(gt=0)
    cwl_ns: float = Field(gt=0)
    trcd_ns: float = Field(gt=0)
    trp_ns: float = Field(gt=0)
    tras_ns: float = Field(gt=0)
    tccd_s_ns: float = Field(gt=0)
    tccd_l_ns: float = Field(gt=0)
    trrd_s_ns: float = Field(gt=0)
    trrd_l_ns: float = Field(gt=0)
    tfaw_ns: float = Field(gt=0)
    twtr_s_ns: float = Field(gt=0)
    twtr_l_ns: float = Field(gt=0)
    twr_ns: float = Field(gt=0)
    trtp_ns: float = Field(gt=0)
    trefi_ns: float = Field(gt=0)
    trfc_ns: float = Field(gt=0)
    trtrs_ns: float = Field(default=0.0, ge=0, description="bus turnaround: rank switch, RD->WR")
    read_pj_per_bit: float = Field(gt=0)
    write_pj_per_bit: float = Field(gt=0)
    act_pj: float = Field(gt=0, description="energy of one ACT+PRE pair")
    source: str = ""
    # Background power (DRAMsim3's model, configuration.cc / channel_state.cc): a rank draws
    # VDD x IDD2N while precharged and idle, and each all-bank refresh adds VDD x (IDD5AB - IDD3N)
    # for tRFC. None where the source gives no IDDs: the level's static power is then not derived.
    vdd_v: float | None = Field(default=None, gt=0)
    idd2n_ma: float | None = Field(default=None, gt=0, description="precharge standby current per rank")
    idd3n_ma: float | None = Field(default=None, gt=0, description="active standby current per rank")
    idd5ab_ma: float | None = Field(default=None, gt=0, description="all-bank refresh current per rank")
    channels_per_stack: int | None = Field(default=None, gt=0, description="channels of one HBM stack")
    stack_footprint_mm2: float | None = Field(default=None, gt=0, description="package footprint of one stack")

    def background_power_w_per_channel(self) -> float | None:
        """Precharge standby plus refresh of one channel's ranks, in W (None without IDDs).
        The active-standby increment while rows are open (IDD3N - IDD2N) is not counted."""
        if None in (self.vdd_v, self.idd2n_ma, self.idd3n_ma, self.idd5ab_ma):
            return None
        refresh_share = self.cycles(self.trfc_ns) / self.cycles(self.trefi_ns)
        per_rank_ma = self.idd2n_ma + (self.idd5ab_ma - self.idd3n_ma) * refresh_share
        return self.ranks * self.vdd_v * per_rank_ma * 1e-3

    @model_validator(mode="after")
    def _whole_bursts(self) -> "DramTiming":
        if self.burst_length % self.transfers_per_clock:
            raise ValueError("burst_length must be a multiple of transfers_per_clock")
        if self.row_bytes % self.burst_bytes:
            raise ValueError("row_bytes must be a multiple of burst_bytes")
        return self

    def cycles(self, ns: float) -> int:
        """Clock cycles covering ``ns``: ceil, never round (ramulator2#231); 1e-9 absorbs float noise."""
        return math.ceil(ns / self.tck_ns - 1e-9)

    @property
    def banks_per_channel(self) -> int:
        return self.pseudo_channels_per_channel * self.ranks * self.bank_groups * self.banks_per_group

    @property
    def data_rate_gbps_per_pin(self) -> float:
        return self.transfers_per_clock / self.tck_ns

    @property
    def burst_bytes(self) -> int:
        return self.bus_width_bits // 8 * self.burst_length

    @property
    def burst_cycles(self) -> int:
        return self.burst_length // self.transfers_per_clock

    @property
    def peak_bw_gbps_per_channel(self) -> float:
        return self.pseudo_channels_per_channel * self.bus_width_bits * self.data_rate_gbps_per_pin / 8

    @property
    def peak_bw_gbps(self) -> float:
        return self.channels * self.peak_bw_gbps_per_channel

    @property
    def capacity_bytes(self) -> int:
        return self.channels * self.banks_per_channel * self.rows * self.row_bytes

    @property
    def trc_ns(self) -> float:
        return self.tras_ns + self.trp_ns


def _from_cycles(tck_ns: float, **cycles: float) -> dict:
    """Source tables give cycles; store ns = cycles * tCK so that ``cycles()`` returns them exactly."""
    return {f"{k}_ns": v * tck_ns for k, v in cycles.items()}


# FGDRAM (O'Connor et al., MICRO'17) per-bit energies as tabulated in
# scale-snu/attacc_simulator:src/config.py: cell RD/WR 0.44, column decoder->BG mux 1.01,
# BG mux->GIO 1.23, TSV 0.5, interposer IO 0.3 pJ/b; ACT/PRE 0.11 pJ per bit of row.
_FGDRAM_RDWR_PJ_PER_BIT = 0.44 + 1.01 + 1.23 + 0.5 + 0.3
_FGDRAM_ACT_PJ_PER_ROW_BIT = 0.11

PRESETS: dict[str, DramTiming] = {
    # DRAMsim3 configs/HBM2_8Gb_x128.ini as NeuPIMs uses it (extern/NewtonSim/configs/
    # HBM2_8Gb_x128_dualpim.ini, configs/memory_configs/neupims.json).
    "hbm2": DramTiming(
        name="hbm2", source="DRAMsim3 HBM2_8Gb_x128 (NeuPIMs/NewtonSim)",
        channels=32,                        # neupims.json dram_channels (DRAMsim3 stock: 8)
        ranks=2,                            # NewtonSim CalculateSize: 1024 MB channel / 512 MB rank
        bank_groups=4, banks_per_group=4,   # ini bankgroups, banks_per_group
        rows=32768, row_bytes=1024,         # ini rows; columns 64 x device_width 128 b / 8
        bus_width_bits=128, burst_length=4,  # ini bus_width, BL; burst_cycle = BL/2
        tck_ns=1.0,
        **_from_cycles(1.0, cl=14, cwl=4, trcd=14, trp=14, tras=34, tccd_s=1, tccd_l=2,
                       trrd_s=4, trrd_l=6, tfaw=30, twtr_s=6, twtr_l=8, twr=16,
                       trtp=6,               # tRTP_L (upstream DRAMsim3 reads "tRTP", default 5)
                       trefi=3900, trfc=260,
                       trtrs=2),             # not in the ini: DRAMsim3 configuration.cc default
        # DRAMsim3 configuration.cc energy formulas with the ini IDDs (VDD 1.2 V, 1 device/rank):
        # RD = VDD*(IDD4R-IDD3N)*burst_cycle per 64 B burst; ACT = VDD*(IDD0*tRC-(IDD3N*tRAS+IDD2N*tRP))
        read_pj_per_bit=1.2 * (390 - 55) * 2 / 512,
        write_pj_per_bit=1.2 * (500 - 55) * 2 / 512,
        act_pj=1.2 * (65 * 48 - (55 * 34 + 40 * 14)),
        vdd_v=1.2, idd2n_ma=40, idd3n_ma=55, idd5ab_ma=250,   # the ini's [power] section
        # JESD235 HBM: 8 channels of 128 bits per stack (the stock ini: channels = 8).
        channels_per_stack=8,
        # One HBM2 KGSD package, 7.75 x 11.87 mm [recalled JEDEC outline; unverified here].
        stack_footprint_mm2=7.75 * 11.87,
    ),
    # HBM2 at 2.4 Gb/s: Ramulator 2.1 python/ramulator/dram/hbm2.py, timing HBM2_2400Mbps, org
    # HBM2_8Gb. NOT a JEDEC HBM2E bin (3.2-3.6 Gb/s); the closest stored set with complete timing.
    "hbm2e": DramTiming(
        name="hbm2e", source="Ramulator 2.1 HBM2_2400Mbps + HBM2_8Gb (2.4 Gb/s, labelled hbm2e)",
        channels=8,                          # JEDEC 1024-bit stack / 128-bit channel: not in Ramulator
        pseudo_channels_per_channel=2, ranks=1, bank_groups=4, banks_per_group=4,
        rows=65536, row_bytes=1024,          # row 1<<16; column 128 x dq 64 b / 8
        bus_width_bits=64, burst_length=4,   # dq 64 per pseudo-channel; nBL 2 = BL4 DDR
        tck_ns=0.833,
        **_from_cycles(0.833, cl=17, cwl=6, trcd=17,  # nRCDRD (nRCDWR 14 not modelled)
                       trp=17, tras=40, tccd_s=2, tccd_l=4, twtr_s=8, twtr_l=10, twr=19,
                       trtp=6,               # nRTPL
                       trrd_s=5, trrd_l=5,   # resolve_secondary: max(4, ceil(4 ns / tCK))
                       tfaw=19,              # max(8, ceil(15 ns / tCK)) = ceil(18.007)
                       trtrs=2),             # Ramulator RD->WR = nCL + nBL + 2 - nCWL
        trefi_ns=3900.0, trfc_ns=350.0,      # tREFI 3.9 us; tRFC 350 ns for <= 8 Gb/pseudo-channel
        read_pj_per_bit=_FGDRAM_RDWR_PJ_PER_BIT, write_pj_per_bit=_FGDRAM_RDWR_PJ_PER_BIT,
        act_pj=_FGDRAM_ACT_PJ_PER_ROW_BIT * 1024 * 8,
    ),
    # Ramulator 2.1 python/ramulator/dram/hbm3.py, timing HBM3_6400Mbps, org HBM3_16Gb_8hi.
    "hbm3": DramTiming(
        name="hbm3", source="Ramulator 2.1 HBM3_6400Mbps + HBM3_16Gb_8hi",
        channels=16,                         # JEDEC 1024-bit stack / 64-bit channel: not in Ramulator
        pseudo_channels_per_channel=2,
        ranks=1,                             # Ramulator applies tRRD_S/tFAW per pseudo-channel,
        bank_groups=8,                       # so the 2 SIDs x 4 BG fold into 8 groups (tCCD_R 3
        banks_per_group=4,                   # across SIDs is modelled as tCCD_S 2)
        rows=16384, row_bytes=1024,          # row 1<<14; column 256 x dq 32 b / 8
        bus_width_bits=32, burst_length=8, transfers_per_clock=4,  # BL8, nBL 2 at 4 UI per tCK
        tck_ns=0.625,
        **_from_cycles(0.625, cl=20, cwl=10, trcd=31,  # nRCDRD (nRCDWR 15 not modelled)
                       trp=26, tras=45, tccd_s=2, tccd_l=4, trrd_s=4, trrd_l=5, tfaw=24,
                       twtr_s=7, twtr_l=10, twr=33, trtp=9, trefi=6240,
                       trfc=560,             # 350 ns for an 8 Gb channel (JESD238 table 84)
                       trtrs=8),             # so that CL + BL/2 - CWL + tRTRS = nRTW = 20
        read_pj_per_bit=_FGDRAM_RDWR_PJ_PER_BIT, write_pj_per_bit=_FGDRAM_RDWR_PJ_PER_BIT,
        act_pj=_FGDRAM_ACT_PJ_PER_ROW_BIT * 1024 * 8,
    ),
    # AttAcc fork: scale-snu/attacc_simulator pim_ramulator_src/HBM3-PIM.cpp HBM3_5.2Gbps,
    # org HBM3_8Gb_2R with 16 channels (HBM3_base.yaml); tCK_ps = 1e6 / (5200 / 4) = 769.
    "hbm3_attacc": DramTiming(
        name="hbm3_attacc", source="AttAcc HBM3_5.2Gbps + HBM3_8Gb_2R",
        channels=16, pseudo_channels_per_channel=2,
        ranks=2,                             # SIDs; AttAcc applies tRRD_S and tFAW per rank
        bank_groups=4, banks_per_group=4, rows=16384,
        row_bytes=1024,                      # Co 1<<5 x prefetch 8 x DQ 32 b / 8
        bus_width_bits=32, burst_length=8, transfers_per_clock=4,
        tck_ns=0.769,
        **_from_cycles(0.769, cl=19, cwl=6, trcd=19, trp=19, tras=45, tccd_s=2, tccd_l=4,
                       trrd_s=2, trrd_l=4, tfaw=39, twtr_s=8, twtr_l=11, twr=21,
                       trtp=8,               # nRTPL
                       trefi=5070,
                       trfc=456,             # tRFC_TABLE 350 ns for 8 Gb, JEDEC_rounding
                       trtrs=2),             # RD->WR = nCL + nBL + 2 - nCWL
        read_pj_per_bit=_FGDRAM_RDWR_PJ_PER_BIT, write_pj_per_bit=_FGDRAM_RDWR_PJ_PER_BIT,
        act_pj=_FGDRAM_ACT_PJ_PER_ROW_BIT * 1024 * 8,
    ),
    # GDDR6 as SK hynix's GDDR6-AiM uses it (the PIM-GPT lineage: DRAM-PIM with all-bank MACs).
    # One channel = one 16-bit (x16) GDDR6 channel; an 8 Gb x16 die has 2 channels of 4 bank
    # groups x 4 banks, 16K rows of 2 KB (Ramulator 2 src/dram/impl/GDDR6.cpp org preset
    # GDDR6_8Gb_x16: Ch 2, Bg 4, Ba 4, Ro 1<<14, Co 1<<10 x DQ 16 b).
    # Data rate 16 Gb/s per pin (Kwon et al., "A 1ynm 1.25V 8Gb 16Gb/s/Pin GDDR6-Based
    # Accelerator-in-Memory Supporting 1TFLOPS MAC Operation ...", JSSC 2023 / ISSCC'22): with
    # tCK = 1 ns (the 1 GHz command clock Ramulator's GDDR6 preset computes: tCK_ps = 1e6 / (2000/2))
    # that is 16 transfers per tCK, so a BL16 burst of 32 B takes one cycle: 32 GB/s per channel.
    # Core timings: Ramulator 2 timing preset GDDR6_2000_1350mV_double in cycles of that 1 ns clock
    # (nCL 24, nRCDRD 26, nRP 26, nRAS 53, nWR 26, nRTP 4, nCWL 6, nWTRS 9, nWTRL 11; x16 table
    # nRRDS 5, nRRDL 6, nFAW 28; tRFC 360 ns for 8 Gb and tREFI 7,800 ns from its JEDEC tables).
    # tCCD_S 1 / tCCD_L 2 cycles: assumed, rate-matched to AiM's 1 TFLOPS (32 banks x 16 BF16 MACs
    # x 2 x 1 GHz: one 32 B column per bank per ns) — Ramulator's nCCDS 4 / nCCDL 6 belong to its
    # 2 Gb/s-per-pin reading of the same clock and would cap AiM at a quarter of its rated FLOPS.
    "gddr6_aim": DramTiming(
        name="gddr6_aim", source="GDDR6-AiM (JSSC'23) rate + Ramulator 2 GDDR6_8Gb_x16 / GDDR6_2000_1350mV",
        channels=2, ranks=1, bank_groups=4, banks_per_group=4,
        rows=16384, row_bytes=2048,
        bus_width_bits=16, burst_length=16, transfers_per_clock=16,
        tck_ns=1.0,
        **_from_cycles(1.0, cl=24, cwl=6, trcd=26, trp=26, tras=53, tccd_s=1, tccd_l=2,
                       trrd_s=5, trrd_l=6, tfaw=28, twtr_s=9, twtr_l=11, twr=26, trtp=4,
                       trefi=7800, trfc=360,
                       trtrs=4),             # Ramulator RD->WR = nCL + nBL + 3 - nCWL + 1: the "+3+1"
        # GDDR6 I/O energy: ~7.5 pJ/bit [assumed: commonly quoted GDDR6 figure, no stored source];
        # ACT/PRE 0.11 pJ per bit of a 2 KB row (FGDRAM, as for the HBM presets).
        read_pj_per_bit=7.5, write_pj_per_bit=7.5,
        act_pj=_FGDRAM_ACT_PJ_PER_ROW_BIT * 2048 * 8,
    ),
}


@dataclass(frozen=True)
class StreamCost:
    time_ns: float
    achieved_bw_gbps: float
    energy_j: float
    row_buffer_hit_rate: float
    activates: float


def row_miss_read_latency_ns(t: DramTiming) -> float:
    """Row conflict: PRE, ACT, RD, data = tRP + tRCD + CL + BL/2 (bank idle past tRAS/tRTP)."""
    return (t.cycles(t.trp_ns) + t.cycles(t.trcd_ns) + t.cycles(t.cl_ns) + t.burst_cycles) * t.tck_ns


def refresh_fraction(t: DramTiming) -> float:
    """Share of time a unit is blocked by all-bank refresh: (tRP + tRFC) every tREFI."""
    return (t.cycles(t.trp_ns) + t.cycles(t.trfc_ns)) / t.cycles(t.trefi_ns)


def default_row_hit_rate(t: DramTiming, pattern: str) -> float:
    """Sequential touches every burst of a row once: 1 - burst/row. Strided and random: no reuse."""
    return 1.0 - t.burst_bytes / t.row_bytes if pattern == "sequential" else 0.0


def column_gap_ns(t: DramTiming, pattern: str) -> float:
    """Mean data-bus slot per burst on one (pseudo-)channel (DRAMsim3 read_to_read_{s,l,o}).

    Sequential/strided walk bank groups in order (default mapping): max(BL/2, tCCD_S). Random: the
    next burst is in another rank with p = 1 - 1/ranks (BL/2 + tRTRS), else in the same group with
    p = 1/groups (max(BL/2, tCCD_L)) or not (max(BL/2, tCCD_S)).
    """
    bc, s, l = t.burst_cycles, max(t.burst_cycles, t.cycles(t.tccd_s_ns)), max(t.burst_cycles, t.cycles(t.tccd_l_ns))
    if t.bank_groups == 1:
        s = l
    if pattern != "random":
        return s * t.tck_ns
    same_rank = (l + (t.bank_groups - 1) * s) / t.bank_groups
    other_rank = bc + t.cycles(t.trtrs_ns)
    return ((same_rank + (t.ranks - 1) * other_rank) / t.ranks) * t.tck_ns


def write_drain_watermarks(window: int = SCHEDULER_WINDOW) -> tuple[int, int]:
    """Writes in the queue that start (high) and stop (low) a write drain."""
    return max(1, 3 * window // 4), window // 4


def turnaround_ns_per_request(t: DramTiming, read_fraction: float, window: int = SCHEDULER_WINDOW) -> float:
    """Read/write bus turnaround per request on one (pseudo-)channel.

    Write drain with watermarks H > L: a read phase lets writes pile up from L to H, i.e.
    (H-L)/(1-f) requests; a drain serves (H-L)/f. That is 2 f (1-f) / (H-L) direction switches per
    request, and all pseudo-channels of the queue switch together. A RD->WR switch costs
    CL + BL/2 - CWL + tRTRS, a WR->RD one CWL + BL/2 + tWTR_S, each minus the burst slot.
    """
    f = read_fraction
    if f <= 0.0 or f >= 1.0:
        return 0.0
    bc, cl, cwl = t.burst_cycles, t.cycles(t.cl_ns), t.cycles(t.cwl_ns)
    rd_to_wr = cl + bc - cwl + t.cycles(t.trtrs_ns)
    wr_to_rd = cwl + bc + t.cycles(t.twtr_s_ns)
    high, low = write_drain_watermarks(window)
    pair_switches = f * (1 - f) / (high - low) * t.pseudo_channels_per_channel
    return pair_switches * (rd_to_wr + wr_to_rd - 2 * bc) * t.tck_ns


def activate_interval_ns(t: DramTiming) -> float:
    """Minimum mean time between ACTs on one (pseudo-)channel: each rank allows one per
    max(tRRD_S, tFAW/4) (four per tFAW window); ranks activate in parallel."""
    return max(t.cycles(t.trrd_s_ns), t.cycles(t.tfaw_ns) / 4) * t.tck_ns / t.ranks


def queue_concurrency(t: DramTiming, read_fraction: float, window: int = SCHEDULER_WINDOW) -> float:
    """Requests one (pseudo-)channel can overlap: its share of the queue, or for a mixed stream
    the served direction's share when a phase starts (high watermark = window - low)."""
    mixed = 0.0 < read_fraction < 1.0
    return (write_drain_watermarks(window)[0] if mixed else window) / t.pseudo_channels_per_channel


def miss_latency_bound_ns(t: DramTiming, concurrency: float) -> float:
    """Little's law: a row miss holds its queue slot for tRP + tRCD (PRE, ACT, then the column
    command), so C overlapped misses (bank-level parallelism) finish at most one per (tRP + tRCD)/C."""
    return (t.cycles(t.trp_ns) + t.cycles(t.trcd_ns)) * t.tck_ns / concurrency


def stream_cost(timing: DramTiming, bytes: float, pattern: str, read_fraction: float = 1.0,
                row_hit_rate: float | None = None, channels: int | None = None,
                window: int = SCHEDULER_WINDOW) -> StreamCost:
    """Closed-form time and energy of a stream of burst-sized accesses spread evenly over
    ``channels`` (default: all) x pseudo-channels.

    Per request and (pseudo-)channel: the throughput bound max(column gap, misses x ACT interval)
    and the Little's-law bound of overlapped misses combine as a root-sum-square (a smooth max:
    both bind near the knee), plus read/write turnaround, which idles the bus. Add the first
    access's tRCD + CL + BL/2, then stretch by 1 / (1 - refresh_fraction).
    Patterns: sequential (each row read out, hit rate 1 - burst/row), strided (stride >= a row:
    every access a miss, banks walked in order) and random (uniform burst-sized accesses).
    Assumes the default bank-group-interleaved mapping and a ``window``-request queue per channel.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}")
    t = timing
    units = (channels or t.channels) * t.pseudo_channels_per_channel
    hit = default_row_hit_rate(t, pattern) if row_hit_rate is None else row_hit_rate
    miss = 1.0 - hit
    requests = math.ceil(bytes / t.burst_bytes)
    throughput = max(column_gap_ns(t, pattern), miss * activate_interval_ns(t))
    latency = miss * miss_latency_bound_ns(t, queue_concurrency(t, read_fraction, window))
    per_request = math.hypot(throughput, latency) + turnaround_ns_per_request(t, read_fraction, window)
    first = (t.cycles(t.trcd_ns) + t.cycles(t.cl_ns) + t.burst_cycles) * t.tck_ns if requests else 0.0
    time_ns = (requests / units * per_request + first) / (1.0 - refresh_fraction(t))
    activates = requests * miss
    energy_pj = requests * t.burst_bytes * 8 * (
        read_fraction * t.read_pj_per_bit + (1 - read_fraction) * t.write_pj_per_bit) + activates * t.act_pj
    return StreamCost(time_ns=time_ns, achieved_bw_gbps=bytes / time_ns if time_ns else 0.0,
                      energy_j=energy_pj * 1e-12, row_buffer_hit_rate=hit, activates=activates)


# ---- command-level reference for one channel -------------------------------------------------

# cycle parameters of the kernel, in this order
