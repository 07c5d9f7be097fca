"""What a request changes: jobs, transfers, drive claims, logs read on request.
Every path checked against the host's configured dirs.

Each op is a function here declared where it stands, `@op(wire.SomeReply)`
(agent/protocol.py); every module of this package is imported by
`protocol.declared()`, so a new op needs no table anywhere else.
"""
