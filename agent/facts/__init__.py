"""What a snapshot reads: processes, logs, dirs, plots, transfers in flight.  Reads only."""
