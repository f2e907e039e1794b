"""Shared plumbing for the platform's services (settings, database, messaging, auth, telemetry)."""
