"""The pure core: fleet state, decisions, scheduling, archiving, plot commands.  Imports nothing from remote/, ui/, fabric, paramiko, invoke or rich."""
