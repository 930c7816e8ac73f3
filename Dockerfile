# redact-proxy container image.
#
#   docker build -t redact-proxy .
#   docker run --read-only -e REDACT_PROXY_HASH_KEY=... -p 4317:4317 -p 4318:4318 -p 8890:8890 \
#     redact-proxy serve --policy /etc/redact-proxy/policies/doctrine.yaml --upstream grpc://collector:4317
#
# Small (python slim, dependencies in a venv built in a separate stage, no build
# tools or pip cache in the final image), pinned base, runs as an unprivileged
# user, writes nothing at run time (read-only root filesystem works; bytecode is
# compiled at build time), HEALTHCHECK on the admin port's /healthz.
# The native triage module (native/, Rust) is built in the build stage with the
# toolchain of the pinned Rust image and a C linker; only its .so reaches the image.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
FROM ${RUST_IMAGE} AS rust

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH
# The linker rustc calls; versions follow Debian's security updates, so not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
WORKDIR /src
RUN python -m venv /opt/redact-proxy
COPY pyproject.toml README.md ./
COPY proxy/ proxy/
COPY native/Cargo.toml native/Cargo.lock native/
COPY native/core/ native/core/
COPY native/python/ native/python/
RUN /opt/redact-proxy/bin/pip install --no-cache-dir . \
 && /opt/redact-proxy/bin/python -m compileall -q /opt/redact-proxy/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="redact-proxy" \
      org.opencontainers.image.description="Scrubs personal data out of OTLP traffic before it reaches the OpenTelemetry Collector" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/redact-proxy/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 redact \
 && useradd --system --uid 10001 --gid redact --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin redact
COPY --from=build /opt/redact-proxy /opt/redact-proxy
COPY policies/ /etc/redact-proxy/policies/
USER 10001:10001
EXPOSE 4317 4318 8890
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8890/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["redact-proxy"]
CMD ["serve", "--policy", "/etc/redact-proxy/policies/doctrine.yaml"]
