#!/usr/bin/env bash
# Regenerates the leak corpus (tests/testdata/leak-corpus) from the real SDKs and loggers.
#
#   bash tests/testdata/leak-corpus/capture/capture.sh
#
# Needs python3, node >= 20.6 with npm, go >= 1.22, java 17 with maven, and the package
# registries (pip, npm, the Go module proxy, Maven Central) for the first run. The tests
# never run this: they read the committed output. Steps:
#   1. capture/.venv (python/requirements.txt), plants.tsv from plants.py
#   2. a capturing OTLP/HTTP receiver (receiver.py) on a free loopback port
#   3. OTel Python SDK -> receiver; structlog -> lines/
#   4. OTel JS SDK and Vercel AI SDK -> receiver; pino, winston, bunyan -> lines/
#   5. zap and logrus (Go) -> lines/; log4j2 JsonTemplateLayout (Java) -> lines/
#   6. receiver stops and writes <source>.<signal>.{pb,json}; wrap_lines.py wraps lines/
#   7. make_planted.py writes planted.yaml (and fails if a planted value went missing)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
corpus=$(cd "$here/.." && pwd)
work=$(mktemp -d)
receiver_pid=""
cleanup() {
  if [[ -n "$receiver_pid" ]] && kill -0 "$receiver_pid" 2>/dev/null; then kill "$receiver_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT
log() { printf '[capture] %s\n' "$*"; }

log "python environment"
[[ -x "$here/.venv/bin/python" ]] || python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q -r "$here/python/requirements.txt"
py="$here/.venv/bin/python"
"$py" "$here/plants.py" "$here/plants.tsv"

out="$work/out"
lines="$work/lines"
mkdir -p "$out" "$lines"

log "receiver"
"$py" "$here/receiver.py" "$out" "$work/port" &
receiver_pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
[[ -s "$work/port" ]] || { echo "capture: the receiver did not start" >&2; exit 1; }
base="http://127.0.0.1:$(cat "$work/port")"

log "OTel Python SDK (its own in-process receiver), structlog"
"$py" "$here/python/capture_otel_python.py" "$out"
"$py" "$here/python/capture_structlog.py" "$lines"

log "OTel JS SDK, Vercel AI SDK, pino, winston, bunyan"
(cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error && node capture.js "$base" "$lines")

log "zap, logrus"
(cd "$here/go" && go run . "$lines")

log "log4j2 JsonTemplateLayout"
(cd "$here/java" && mvn -q -B compile exec:java \
  -Dleakcorpus.ecs="$lines/log4j2-ecs.log" -Dleakcorpus.jsonlayout="$lines/log4j2-jsonlayout.log")

kill "$receiver_pid"
wait "$receiver_pid" || true
receiver_pid=""

log "wrap the log lines, write planted.yaml"
"$py" "$here/wrap_lines.py" "$lines" "$out"
rm -f "$corpus"/*.pb "$corpus"/*.json
rm -rf "$corpus/lines"
cp "$out"/* "$corpus/"
cp -r "$lines" "$corpus/lines"
(cd "$here" && "$py" make_planted.py "$corpus")
log "wrote $(ls "$corpus"/*.pb "$corpus"/*.json | wc -l) corpus files to $corpus"
