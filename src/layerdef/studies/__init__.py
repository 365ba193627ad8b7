"""Questions over many solves: budget frontiers and sweeps."""
