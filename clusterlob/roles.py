"""Roles of clusters: which mechanism a cluster of trades stands for.

Role codes used throughout the package (labels per trade are int8 arrays of these):
``DIRECTIONAL`` (the log's phi_1, "toxic"), ``OPPORTUNISTIC`` (phi_2), ``PASSIVE`` (phi_3), and
``UNASSIGNED`` (-1) for a trade whose cluster has no role, or a trade with no label.
"""

__all__ = ["DIRECTIONAL", "OPPORTUNISTIC", "PASSIVE", "UNASSIGNED", "ROLE_NAMES"]

UNASSIGNED = -1
DIRECTIONAL = 0
OPPORTUNISTIC = 1
PASSIVE = 2
ROLE_NAMES = ("directional", "opportunistic", "passive")
