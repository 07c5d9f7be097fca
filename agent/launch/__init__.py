"""Detached programs the agent starts: the chiapos plotter and the transfer runner (rsync)."""
