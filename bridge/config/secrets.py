"""Secrets in the config file: see `bridge.secrets` (shared with adapters, which may not import bridge.config)."""

from bridge.secrets import Secret

__all__ = ["Secret"]
