"""What a request changes: jobs, transfers, drive claims, logs read on request.  Every path checked against the host's configured dirs."""
