"""The shared vocabulary: what a plot name, a plot format, a plotter and the
agent's wire mean, in one place, for the agent and the controller alike.

A leaf: standard library only, importing nothing else of the agent or of the
orchestrator (tests/test_layout.py holds it).  `orchestrator/core/` and
`orchestrator/config/` may import this package and nothing else of `agent/`.
"""
