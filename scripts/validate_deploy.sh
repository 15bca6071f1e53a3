#!/usr/bin/env bash
# Validate the deployment files without a Docker engine (deploy/README.md, "Validation").
#
# Tools, from Debian: docker-compose (install with --no-install-recommends), prometheus (promtool),
# nginx, coturn. Then runs tests/unit/test_deploy*.py, which repeat these checks and add the ones that
# need Python: metric names, dashboard panels and queries against a real Prometheus, nginx's behaviour,
# a TURN allocation on coturn, the Dockerfile and its health check.
#
#   scripts/validate_deploy.sh            # config checks and tests (~30 s)
#   scripts/validate_deploy.sh --models   # also the Dockerfile's build-time model check, run here with
#                                         # no network at all (unshare -n, needs root); loads every model
set -euo pipefail
models=0
[[ "${1:-}" == "--models" ]] && models=1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deploy="$root/deploy"
export PATH="$PATH:/usr/sbin:/sbin"

need() {  # need TOOL PACKAGE
    command -v "$1" >/dev/null || { echo "missing $1: apt-get install -y --no-install-recommends $2" >&2; exit 1; }
}
need docker-compose docker-compose
need promtool prometheus
need prometheus prometheus
need nginx nginx
need turnserver coturn

step() { printf '== %s\n' "$*"; }
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

step "compose: single gateway"
docker-compose -f "$deploy/docker-compose.yml" config -q
step "compose: replicas (with stand-in TURN values)"
TURN_PASSWORD=validate TURN_EXTERNAL_IP=203.0.113.7 \
    docker-compose -f "$deploy/docker-compose.yml" -f "$deploy/docker-compose.replicas.yml" config -q

step "prometheus: configs, rules, rule unit tests"
promtool check config "$deploy/prometheus/prometheus.yml"
promtool check config "$deploy/prometheus/prometheus.replicas.yml"
promtool check rules "$deploy/prometheus/alerts.yml"
promtool test rules "$deploy/prometheus/alerts.test.yml"

step "grafana: dashboard JSON"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print("  %s: %d panels" % (d["title"], len(d["panels"])))' \
    "$deploy/grafana/dashboards/alice-voice.json"

step "nginx: proxy config"
nginx -t -c "$deploy/nginx/nginx.conf" -e stderr -g "pid $scratch/nginx.pid;"

step "tests/unit/test_deploy*.py"
python="$root/.venv/bin/python"
[[ -x "$python" ]] || python=python3
# --noconftest: these tests need none of the shared fixtures, so a half-built app cannot break them.
cd "$root"
"$python" -m pytest -q --noconftest tests/unit/test_deploy.py tests/unit/test_deploy_services.py

if (( models )); then
    step "Dockerfile: every embedded model loads with no network"
    # The same Python the image runs at build time under RUN --network=none.
    "$python" - "$root/Dockerfile" > "$scratch/models.py" <<'PY'
import shlex, sys
text = open(sys.argv[1]).read().replace("\\\n", "")
run = next(line for line in text.splitlines() if line.startswith("RUN --network=none "))
print(shlex.split(run.removeprefix("RUN --network=none "))[2])
PY
    (cd "$scratch" && HF_HUB_OFFLINE=1 unshare -n "$python" models.py)
fi
