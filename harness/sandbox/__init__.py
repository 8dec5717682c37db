"""The embedded sandbox platform: a real HTTP server on 127.0.0.1 with censorship rules.

Used by ``harness demo``, ``harness sandbox serve`` and the tests, so that the whole
harness can be exercised over real sockets without touching a real platform.
"""

from .server import DEFAULT_RULES_PATH, Sandbox, SandboxRules, load_rules

__all__ = ["DEFAULT_RULES_PATH", "Sandbox", "SandboxRules", "load_rules"]
