#!/usr/bin/env bash
# Stops the observability stack.
#
#   ./stop.sh          stop and remove the containers, keep Prometheus/Grafana/Alertmanager data
#   ./stop.sh --purge  also delete those volumes
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

die() { echo "stop.sh: $*" >&2; exit 1; }

args=(down --remove-orphans)
case "${1:-}" in
  "") ;;
  --purge) args+=(--volumes) ;;
  -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
  *) die "unknown option: $1 (try --help)" ;;
esac

command -v docker >/dev/null 2>&1 || die "docker is not installed"
# `down` needs no secrets, but compose interpolates the whole file: without a
# .env, give it the example values.
env_file=(--env-file .env.example)
if [[ -f .env ]]; then env_file=(--env-file .env); fi
docker compose "${env_file[@]}" "${args[@]}"
