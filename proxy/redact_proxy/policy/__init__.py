"""The redaction policy: YAML file -> checked model (schema) -> CompiledPolicy (compile)."""

from redact_proxy.errors import PolicyError
from redact_proxy.policy.compile import KEEP, CompiledPolicy, Decider, Decision, load
from redact_proxy.policy.schema import Action, Level

__all__ = ["KEEP", "Action", "CompiledPolicy", "Decider", "Decision", "Level", "PolicyError", "load"]
