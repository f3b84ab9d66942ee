"""Training runs: start a retrain on a registered dataset snapshot (by id, never a path) and follow it."""
