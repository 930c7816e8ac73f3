"""End-to-end tests and the developer stack: redact-proxy in front of the real
collector, Jaeger v2, Prometheus and Alertmanager, run as local processes with the
configs from deploy/ (`python -m tests.e2e.stack up`)."""
