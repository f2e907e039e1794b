"""Command safety, with no I/O: parameters, rendering, interpreters and the denylist."""
