#!/usr/bin/env bash
# Starts the observability stack (docker compose) and prints where everything is.
#
#   ./start.sh            build redact-proxy from the repo's Dockerfile and start
#   ./start.sh --no-build start with the images already built/pulled
#
# On first run it creates deploy/.env from .env.example, with a fresh random value
# for every "change-me" secret (hash key, Grafana password, ...). Edit the alert
# receivers in .env afterwards; secrets live only there (git-ignored).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

die() { echo "start.sh: $*" >&2; exit 1; }

build=(--build)
case "${1:-}" in
  "") ;;
  --no-build) build=() ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) die "unknown option: $1 (try --help)" ;;
esac

command -v docker >/dev/null 2>&1 || die "docker is not installed"
docker compose version >/dev/null 2>&1 || die "the docker compose v2 plugin is required"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable"

random_secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

if [[ ! -f .env ]]; then
  umask 077
  while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" == *=change-me ]]; then
      printf '%s=%s\n' "${line%%=*}" "$(random_secret)"
    else
      printf '%s\n' "$line"
    fi
  done < .env.example > .env
  echo "Created deploy/.env with fresh secrets. Set the alert receivers (Slack, PagerDuty, SMTP) in it."
fi

docker compose --env-file .env up --detach --wait --wait-timeout 180 "${build[@]}"

# shellcheck disable=SC1091  # .env is created above
grafana_user=$(. ./.env && printf '%s' "${GRAFANA_ADMIN_USER:-admin}")
cat <<INFO

Stack is up.
  OTLP to redact-proxy   grpc://localhost:4317   http://localhost:4318
  redact-proxy admin     http://localhost:8890/healthz  /readyz  /metrics
  Grafana                http://localhost:3030   (user ${grafana_user}, password in deploy/.env)
  Prometheus             http://localhost:9090
  Alertmanager           http://localhost:9093
  Jaeger UI              http://localhost:16686
  Collector telemetry    http://localhost:8888/metrics
Stop with ./stop.sh (./stop.sh --purge also deletes the stored data).
INFO
