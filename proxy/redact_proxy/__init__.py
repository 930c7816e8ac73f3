"""redact-proxy: scrubs personal data out of OTLP traffic before it reaches the collector."""

__version__ = "0.1.0"
