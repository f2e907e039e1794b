"""Shared plumbing for the platform's services (settings, database, messaging, auth, telemetry)."""

import sys

# `import httpx` imports its command-line client, and with it click, rich and pygments
# (5.7 MB of each service's memory, measured), whenever those are installed, as they are
# beside idp-cli. No service runs it; marked missing, httpx defines a stub in its place.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
