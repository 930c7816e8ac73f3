"""The personal data the e2e senders put into telemetry, and what must become of it.

Every secret is a unique canary string, so "it never left the proxy" is a plain
substring search over everything downstream (Jaeger, Prometheus, the collector's
input, the proxy's and the collector's logs). Each sits under a key that
policies/doctrine.yaml covers; the comment names the doctrine row. The
senders (Python and Node.js) read this table as JSON (`python -m tests.e2e.pii`),
so both SDKs send exactly the same data.
"""

from __future__ import annotations

import json

# Personal data: key -> (value sent, the parts that must never appear downstream;
# None = the whole value). Whether the doctrine deletes the key, sanitizes the value
# (URLs, SQL) or masks it, these parts must be gone: the tests check values, not the
# policy's choice of action.
PERSONAL: dict[str, tuple[str, list[str] | None]] = {
    # Message content (Principle 3)
    "message.content": ("canary message: meet me at the usual place", None),
    # User identifiers (Principle 5)
    "user.email": ("alice.e2e.canary@example.com", None),
    # IP addresses (Principle 5)
    "client.address": ("203.0.113.77", None),
    # Encryption keys and credentials (Principle 3)
    "http.request.header.authorization": ("Bearer canary-e2e-token-7f3a", None),
    "user.identity_key": ("canary-identity-key-BASE64==", None),
    # SQL query data (Principle 5): the literal, not the statement's shape
    "db.statement": ("SELECT * FROM messages WHERE author = 'canary-sql-literal-91'", ["canary-sql-literal-91"]),
    # Ids and credentials inside URLs: the path id and the query value, not the route
    "url.full": ("https://api.railgun.example/rooms/6f1c5a4e-1b7d-4c3e-9a61-0c2b9d7e4f10/messages?token=canary-url-token",
                 ["6f1c5a4e-1b7d-4c3e-9a61-0c2b9d7e4f10", "canary-url-token"]),
    # Free text quoting a user's data
    "exception.message": ("Key (email)=(canary-exception@example.com) already exists", ["canary-exception@example.com"]),
    # Relationship graphs (Principle 6)
    "recipient.user_id": ("canary-recipient-0815", None),
}

# On the resource: infrastructure addresses.
RESOURCE_PERSONAL: dict[str, tuple[str, list[str] | None]] = {"host.ip": ("198.51.100.23", None)}

# Hashed by the doctrine: key -> raw value (only its HMAC may appear downstream).
HASHED = {
    "user.id": "canary-user-4711",
    "session.id": "canary-session-abc",
    "room.id": "canary-room-42",
}

# Kept by the doctrine, used to find and check the data downstream.
ROUTE = "/rooms/:roomId/messages"
HEALTH_PATHS = ("/healthz", "/readyz")


def secrets_of(table: dict[str, tuple[str, list[str] | None]]) -> list[str]:
    return [part for value, parts in table.values() for part in (parts or [value])]


def canaries() -> list[str]:
    """Every string that must never appear downstream of the proxy."""
    return [*secrets_of(PERSONAL), *secrets_of(RESOURCE_PERSONAL), *HASHED.values()]


def leaked(value) -> list[str]:
    """The canaries contained in a value (any JSON-able structure)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return [c for c in canaries() if c in text]


def as_json() -> str:
    return json.dumps({"personal": {k: v for k, (v, _) in PERSONAL.items()},
                       "resource_personal": {k: v for k, (v, _) in RESOURCE_PERSONAL.items()},
                       "hashed": HASHED, "route": ROUTE, "health_paths": list(HEALTH_PATHS)})


if __name__ == "__main__":
    print(as_json())
