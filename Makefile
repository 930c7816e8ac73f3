# Set-up and entry points. `make run` and `make test` each install what they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check --retries 10 --timeout 60

.PHONY: install run lint test test-fast test-wheel test-unit bench fuzz fuzz-engine check-policies clean

# native/ is the Rust engine (core: plain Rust; python: the PyO3 shell), built by maturin into
# the package by pip; needs cargo.
$(VENV)/.installed: pyproject.toml native/Cargo.toml native/Cargo.lock $(wildcard native/*/Cargo.toml native/*/src/*.rs native/*/src/*/*.rs)
	@command -v cargo >/dev/null || { echo "make: cargo not found; the native module needs Rust (https://rustup.rs)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The main job: the proxy with the doctrine policy. With no upstream configured it prints
# redacted OTLP-JSON on stdout. A throw-away hash key is made when none is set (hashes
# then differ from run to run; set REDACT_PROXY_HASH_KEY to keep them stable).
run: install
	@if [ -z "$$REDACT_PROXY_HASH_KEY" ]; then echo "make run: REDACT_PROXY_HASH_KEY not set, using a random key for this run" >&2; fi
	REDACT_PROXY_HASH_KEY="$${REDACT_PROXY_HASH_KEY:-$$($(PY) -c 'import secrets; print(secrets.token_hex(32))')}" \
		$(VENV)/bin/redact-proxy --policy policies/doctrine.yaml

# Static checks, configured in pyproject.toml: ruff's lint rules over the package and
# tools/, mypy over the package. A new finding fails `make test` (and so CI). The
# formatter (`ruff format`) is configured but not yet enforced.
lint: install
	$(VENV)/bin/ruff format --check proxy/redact_proxy tools tests/helpers tests/conftest.py
	$(VENV)/bin/ruff check proxy/redact_proxy tools tests/helpers tests/conftest.py
	$(PY) -m mypy

# Everything the tests need (Python packages, Go builds of the collector and Jaeger,
# Prometheus/Alertmanager from Debian, the Node.js SDK), then the static checks, then
# every test.
test: install lint
	bash tests/e2e/setup.sh
	cd native && cargo test -p redact-core --quiet
	$(MAKE) fuzz-engine ENGINE_FUZZ_SECONDS=30
	$(PY) -m pytest
	$(MAKE) test-wheel

# The route a user installs by: the wheel pip builds from this tree, installed into a fresh
# venv with nothing else, and the integration tests run against that installed copy (not
# the source tree), so a packaging break fails CI.
WHEEL_VENV := .cache/wheel-venv
test-wheel: install
	rm -rf .cache/dist $(WHEEL_VENV)
	$(PIP) wheel --no-deps -q -w .cache/dist .
	$(PYTHON) -m venv $(WHEEL_VENV)
	# First the wheel alone, as `pip install .` leaves it: every module must import with
	# the declared dependencies only (the test extras would hide a missing one).
	$(WHEEL_VENV)/bin/python -m pip install -q --disable-pip-version-check --retries 10 --timeout 60 \
		"$$(ls .cache/dist/redact_proxy-*.whl)"
	cd /tmp && $(CURDIR)/$(WHEEL_VENV)/bin/python -c "import importlib, pkgutil, redact_proxy; \
		[importlib.import_module(m.name) for m in pkgutil.walk_packages(redact_proxy.__path__, 'redact_proxy.') \
		 if not m.name.endswith('__main__')]"
	$(WHEEL_VENV)/bin/python -m pip install -q --disable-pip-version-check --retries 10 --timeout 60 \
		"$$(ls .cache/dist/redact_proxy-*.whl)[test]"
	cd /tmp && $(CURDIR)/$(WHEEL_VENV)/bin/python -c "import redact_proxy, sys; \
		sys.exit(0 if '/site-packages/' in redact_proxy.__file__ else 'redact_proxy is not the installed copy')"
	$(WHEEL_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/integration

# Seconds: the in-process tests of policy, scrubber, codec, pipeline, receivers, errors
# and telemetry (no sockets, no subprocesses, no hypothesis searches: `-m fast`).
test-fast: install
	$(PY) -m pytest -q -m fast

# Quick loop while developing: no real-stack tests.
test-unit: install
	$(PY) -m pytest --ignore=tests/e2e --ignore=tests/deploy

bench: install
	$(PY) benchmarks/engine.py

# Coverage-guided fuzzing of decode + scrub (CI runs a bounded hypothesis version).
FUZZ_SECONDS ?= 300
fuzz: install
	$(PIP) install -q -e '.[fuzz]'
	$(PY) tests/fuzz/atheris_pipeline.py -max_total_time=$(FUZZ_SECONDS) .cache/fuzz-corpus
	$(MAKE) fuzz-engine ENGINE_FUZZ_SECONDS=$(FUZZ_SECONDS)

# The native engine under libFuzzer (cargo fuzz, nightly): never panics, stays within its
# memory limits, never emits a planted value (native/fuzz/fuzz_targets/engine.rs).
ENGINE_FUZZ_SECONDS ?= 300
fuzz-engine: install
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	$(PY) tests/fuzz/engine_spec.py --seeds .cache/fuzz-engine
	cd native/fuzz && cargo +nightly fuzz run engine ../../.cache/fuzz-engine -- \
		-max_total_time=$(ENGINE_FUZZ_SECONDS) -rss_limit_mb=1024 -malloc_limit_mb=512

check-policies: install
	for p in policies/*.yaml; do REDACT_PROXY_HASH_KEY=check-only-key-0123456789 $(VENV)/bin/redact-proxy check --policy $$p || exit 1; done

clean:
	rm -rf $(VENV) .cache .pytest_cache
