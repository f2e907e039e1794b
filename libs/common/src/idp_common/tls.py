"""The TLS context of this process's HTTP clients, made once.

Making one reads and parses the whole CA bundle: 0.8 MB resident and 41 ms of CPU each on
the benchmark's machine. Every client made its own, and a guarded client (one per data
source fetch, per HTTP template run) made two, its transport's and its pool's."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_tls() -> ssl.SSLContext:
    """Verifying, with the CA bundle httpx would pick (``SSL_CERT_FILE`` or certifi's)."""
    return httpx.create_ssl_context()
