"""commons-map: the register, map and time ledger of a citizens' cooperative's commons."""

__version__ = "0.1.0"
