"""Technology-node scaling of energy per operation and of area, relative to 45 nm.

Our per-operation energies (Horowitz, ISSCC 2014) and cell areas are measured at 45 nm; a design
at another node multiplies them by the factors below, from

    A. Stillmaker and B. Baas, "Scaling equations for the accurate prediction of CMOS device
    performance from 180 nm to 7 nm", Integration, the VLSI Journal 58 (2017) 74-81,
    doi:10.1016/j.vlsi.2017.02.002 (errata: vcl.ece.ucdavis.edu/pubs/2017.02.VLSIintegration.TechScale).

The paper fits HSpice results (PTM and ITRS device models) per node: energy per operation as a
quadratic in the supply voltage, E(V) = a V^2 + b V + c, and gives an area-scaling table between
nodes. Its nodes are 180, 130, 90, 65, 45, 32, 20, 16, 14, 10 and 7 nm; 45 nm and below come in a
high-performance (HP) and a low-power (LP) flavour. We use HP (an accelerator datapath).

Factors exist **only at those nodes**. A node outside the table (22 nm, 28 nm, 5 nm, ...) is a
`ConfigError` naming the key and listing the supported nodes; we never interpolate. (Accelergy's
`accelergy-library-plug-in/scaling.py` interpolates between table nodes, and its
`get_technology_node_index` does so in the wrong direction, so 28 nm comes out larger than 32 nm
and 22 nm larger than 32 nm (non-monotonic); it also mixes the LP rows at 45/32 nm with the HP
rows at 20-7 nm.)

Where the coefficients come from (the paper PDF itself was not readable here):
- energy coefficients and area table: transcription of the paper's tables in
  wromaszkan/nodeScale (UCLA NanoCAD, nodeScale.py), every node and flavour; the rows for
  130/90/65 nm, LP45/LP32 and HP20-HP7 match the independent transcription in
  Accelergy-Project/accelergy-library-plug-in scaling.py digit for digit, and the HP32 row
  (0.8367, -0.4341, 0.1701) and the 65 nm row (3.755, -4.398, 1.975) are quoted in the authors'
  erratum (example of section 4.2.1). The 180 nm energy row and the HP45 row are seen in the
  nodeScale transcription only [single secondary source].
- supply voltage per node: nominal PTM voltages [unverified: recalled, not found in a stored
  source], except 45 nm, where we use 0.9 V, the operating point of Horowitz's table (so 45 nm
  reproduces Horowitz exactly, by construction).
"""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from hwsim.input_error import ConfigError

REFERENCE_NODE_NM = 45   # node of the Horowitz energy table and of our 45 nm area data

# Energy per operation E(V) = a V^2 + b V + c (arbitrary units; only ratios are used), by node.
# [Stillmaker & Baas 2017, energy-fit tables; transcribed in wromaszkan/nodeScale nodeScale.py,
# columns 4-6 of depCoeffDict; see the module docstring for cross-checks]
_ENERGY_POLY = {
    180: (0.0, 24.64, -17.98),        # single secondary source (nodeScale only)
    130: (7.171, -6.709, 2.904),      # = Accelergy scaling.py row 130
    90: (4.762, -4.781, 2.092),       # = Accelergy row 90
    65: (3.755, -4.398, 1.975),       # = Accelergy row 65; = authors' erratum
    45: (1.018, -0.3107, 0.1539),     # HP45; nodeScale only (Accelergy uses LP45 1.103, -0.362, 0.2767)
    32: (0.8367, -0.4341, 0.1701),    # HP32; = authors' erratum (Accelergy uses LP32)
    20: (0.373, -0.1582, 0.04104),    # HP20 = Accelergy row 20
    16: (0.2958, -0.1241, 0.03024),   # HP16 = Accelergy row 16
    14: (0.2363, -0.09675, 0.02239),  # HP14 = Accelergy row 14
    10: (0.2068, -0.09311, 0.02375),  # HP10 = Accelergy row 10
    7: (0.1776, -0.09097, 0.02447),   # HP7 = Accelergy row 7
}

# Supply voltage at which each node's energy is evaluated.
# [unverified: nominal PTM supply voltages as recalled (bulk 180-32 nm, PTM-MG 20-7 nm); 45 nm is
# set to 0.9 V, the operating point of Horowitz's ISSCC 2014 table ("45 nm, 0.9 V"), see
# systolic_mcu_dse_anchors.md section 4.4]
NOMINAL_VDD_V = {180: 1.8, 130: 1.3, 90: 1.2, 65: 1.1, 45: 0.9, 32: 0.9,
                 20: 0.9, 16: 0.85, 14: 0.8, 10: 0.75, 7: 0.7}

# Area of a design at node X relative to the same design at 45 nm.
# [Stillmaker & Baas 2017, area-scaling table, 45 nm row; = nodeScale areaDict['45'] and
# Accelergy scaling.py AREA_SCALING[3] (which lacks 180 nm)]
AREA_FACTOR_VS_45NM = {180: 19.0, 130: 6.4, 90: 2.8, 65: 1.5, 45: 1.0, 32: 0.46,
                       20: 0.21, 16: 0.19, 14: 0.17, 10: 0.1, 7: 0.059}

SUPPORTED_NODES_NM = tuple(sorted(_ENERGY_POLY, reverse=True))


def _energy_poly_value(node_nm: int) -> float:
    a, b, c = _ENERGY_POLY[node_nm]
    v = NOMINAL_VDD_V[node_nm]
    return a * v * v + b * v + c


# Energy of an operation at node X relative to the same operation at 45 nm (0.9 V) [computed].
ENERGY_FACTOR_VS_45NM = {n: _energy_poly_value(n) / _energy_poly_value(REFERENCE_NODE_NM)
                         for n in SUPPORTED_NODES_NM}


def node_error(node_nm, key: str = "tech_node_nm") -> str | None:
    """The message for an unsupported node, or None if `node_nm` is a table node."""
    if isinstance(node_nm, bool) or not isinstance(node_nm, (int, float)) or node_nm not in _ENERGY_POLY:
        return (f"technology node {node_nm!r} nm is not in the Stillmaker & Baas (2017) scaling "
                f"table; supported nodes: {', '.join(str(n) for n in SUPPORTED_NODES_NM)} nm "
                f"(no interpolation between nodes)")
    return None


def check_node(node_nm, key: str = "tech_node_nm") -> int:
    """`node_nm` as an int if it is a table node, else a ConfigError naming `key`."""
    msg = node_error(node_nm, key)
    if msg:
        raise ConfigError(msg, key=key)
    return int(node_nm)


def energy_factor(node_nm, key: str = "tech_node_nm") -> float:
    """Multiply a 45 nm (0.9 V) energy per operation by this to get it at `node_nm`."""
    return ENERGY_FACTOR_VS_45NM[check_node(node_nm, key)]


def area_factor(node_nm, key: str = "tech_node_nm") -> float:
    """Multiply a 45 nm area by this to get it at `node_nm`."""
    return AREA_FACTOR_VS_45NM[check_node(node_nm, key)]


def _table_node(node_nm: int) -> int:
    msg = node_error(node_nm)
    if msg:
        raise ValueError(msg)
    return node_nm


# A spec field holding a process node: an int that must be a node of the scaling table.
TechNodeNm = Annotated[int, AfterValidator(_table_node)]
