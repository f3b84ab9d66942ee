"""Registered dataset snapshots the system built or imported: the only things training may be pointed at."""
