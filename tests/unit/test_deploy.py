"""Deployment files, checked without a Docker engine: compose, Prometheus, Grafana, nginx, Dockerfile.

External tools (Debian): docker-compose, prometheus (promtool), nginx. A missing tool fails the test.
Tests that run Prometheus, nginx, coturn and the health check for real: test_deploy_services.py.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from deploy_support import (
    ALERTS,
    BASE_COMPOSE,
    DASHBOARD,
    DEPLOY,
    NGINX_CONF,
    REPLICAS_COMPOSE,
    ROOT,
    compose_config,
    dockerfile_instructions,
    dockerignore_excludes,
    load_yaml,
    run,
    tool,
)
from prometheus_client.metrics import MetricWrapperBase

from alice_voice.compute import Priority
from alice_voice.config import Settings, load_settings
from alice_voice.metrics import Metrics

HISTOGRAMS = ["voice_webrtc_offer_ms", "voice_ice_connect_ms", "voice_first_partial_ms", "voice_first_audio_ms",
              "voice_barge_in_ms", "voice_end_of_turn_ms"]
# The turn-taking counters: speech over a reply ends as a backchannel, an interruption or a turn repair.
OVERLAPS = ["voice_backchannels_total", "voice_interruptions_total", "voice_turn_repairs_total"]
TURN_TAKING = [*OVERLAPS, "voice_replies_resumed_total"]
# Every tool call lands in the duration histogram (by tool and outcome); the ones that failed also in the counter.
TOOLS = ["voice_tool_duration_ms_count", "voice_tool_duration_ms_bucket", "voice_tool_errors_total"]
_METRIC = re.compile(r"\b(voice_[a-z0-9_]+)")
_SELECTOR = re.compile(r"\b(voice_[a-z0-9_]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
_GROUPING = re.compile(r"\b(by|without)\s*\(([^)]*)\)")
# Labels Prometheus adds to every scraped series (the `replica` label of prometheus.replicas.yml too).
TARGET_LABELS = frozenset({"instance", "job", "replica"})
# The values the gateway sets for the labels the dashboard and alerts select on (src/alice_voice/metrics.py,
# gateway/admission.py, compute/priority.py): a matcher on any other value would silently match nothing.
LABEL_VALUES: dict[tuple[str, str], frozenset[str]] = {
    ("voice_audio_frames", "stage"): frozenset({"received", "lost", "heard"}),
    ("voice_scheduler_wait_ms", "priority"): frozenset(p.label for p in Priority),
    ("voice_scheduler_run_ms", "priority"): frozenset(p.label for p in Priority),
    ("voice_offers_refused", "reason"): frozenset({"max_sessions", "latency_budget", "event_loop"}),
}


def exported_names() -> set[str]:
    """Every series name the gateway's registry can expose, also for labelled metrics not yet used."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "gauge": ("",)}
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(family.name + suffix for suffix in suffixes[family.type])
        names.update(sample.name for sample in family.samples)
    return names


def exported_labels() -> dict[str, tuple[str, frozenset[str]]]:
    """Each series name the registry can expose -> (its family, its own label names); `le` on `_bucket` only."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "gauge": ("",)}
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for collector in vars(Metrics()).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        family = next(iter(collector.describe()))
        labels = frozenset(collector._labelnames)  # fixed at construction; prometheus_client has no accessor
        for suffix in suffixes[family.type]:
            out[family.name + suffix] = (family.name, labels | ({"le"} if suffix == "_bucket" else set()))
    return out


def _parenthesized(expr: str, start: int) -> str:
    """The text inside the parentheses that open at expr[start] (after optional blanks)."""
    while expr[start].isspace():
        start += 1
    assert expr[start] == "(", f"expected '(' at {expr[start:]!r}"
    depth = 0
    for i in range(start, len(expr)):
        depth += {"(": 1, ")": -1}.get(expr[i], 0)
        if depth == 0:
            return expr[start + 1 : i]
    raise AssertionError(f"unbalanced parentheses in {expr!r}")


def label_problems(expr: str) -> list[str]:
    """Label names the selected metrics do not carry, and matcher values the gateway never sets."""
    known = exported_labels()
    problems: list[str] = []
    for name, matchers in _SELECTOR.findall(expr):
        if name not in known:
            continue  # an unknown metric name: test_every_metric_..._is_exported_by_the_gateway says so
        family, labels = known[name]
        for label, op, value in _MATCHER.findall(matchers):
            if label not in labels | TARGET_LABELS:
                problems.append(f"{name} has no label {label!r}")
            elif op == "=" and (family, label) in LABEL_VALUES and value not in LABEL_VALUES[family, label]:
                problems.append(f'{name}{{{label}="{value}"}}: the gateway never sets that value')
    for match in _GROUPING.finditer(expr):
        grouping = {label.strip() for label in match.group(2).split(",") if label.strip()}
        # `sum by (labels) (inner)`: every label must exist on every metric aggregated in `inner`.
        inner = _parenthesized(expr, match.end())
        for name in _METRIC.findall(inner):
            if name in known:
                missing = grouping - known[name][1] - TARGET_LABELS
                if missing:
                    problems.append(f"{match.group(1)} ({match.group(2)}) over {name}: no label {sorted(missing)}")
    return problems


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def compose_env(path: Path) -> dict[str, dict[str, Any]]:
    services = load_yaml(path)["services"]
    return {name: dict(svc.get("environment") or {}) for name, svc in services.items()}


# --- compose ---

@pytest.mark.parametrize("path", [BASE_COMPOSE, REPLICAS_COMPOSE], ids=lambda p: p.name)
def test_compose_file_parses_and_every_mounted_file_exists(path: Path) -> None:
    services = load_yaml(path)["services"]
    assert services
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (path.parent / source).exists(), f"{path.name}: {name} mounts missing {source}"
        if "build" in svc:
            context = path.parent / svc["build"]["context"]
            assert (context / svc["build"]["dockerfile"]).is_file()


def test_single_gateway_layout_passes_the_compose_schema_and_wires_up() -> None:
    config = compose_config(BASE_COMPOSE)
    services = config["services"]
    assert set(services) == {"gateway", "redis", "prometheus", "grafana"}
    # WebRTC media needs host networking (deploy/README.md); the rest shares it to stay on 127.0.0.1.
    assert {svc["network_mode"] for svc in services.values()} == {"host"}
    assert services["gateway"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
    gateway_port = services["gateway"]["environment"]["ALICE_PORT"]
    targets = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"][0]["static_configs"]
    assert [t for group in targets for t in group["targets"]] == [f"127.0.0.1:{gateway_port}"]
    mounts = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    assert {"/etc/prometheus/prometheus.yml", "/etc/prometheus/alerts.yml"} <= mounts


def test_replica_layout_puts_nginx_in_front_of_the_ports_prometheus_scrapes() -> None:
    services = compose_config(BASE_COMPOSE, REPLICAS_COMPOSE)["services"]
    assert set(services) == {"gateway", "gateway-2", "nginx", "coturn", "redis", "prometheus", "grafana"}
    replica_ports = sorted(services[name]["environment"]["ALICE_PORT"] for name in ("gateway", "gateway-2"))
    assert replica_ports == ["8081", "8082"]
    nginx_conf = NGINX_CONF.read_text()
    assert sorted(re.findall(r"server 127\.0\.0\.1:(\d+)", nginx_conf)) == replica_ports
    assert re.search(r"listen 8080;", nginx_conf)
    prometheus_mount = [v for v in services["prometheus"]["volumes"] if v.split(":")[1].endswith("prometheus.yml")]
    assert len(prometheus_mount) == 1 and "prometheus.replicas.yml" in prometheus_mount[0]
    targets = load_yaml(DEPLOY / "prometheus" / "prometheus.replicas.yml")["scrape_configs"][0]["static_configs"]
    assert sorted(t for group in targets for t in group["targets"]) == [f"127.0.0.1:{p}" for p in replica_ports]
    # The shared TURN secret reaches coturn and both replicas from the environment, not from a file.
    assert "--user=alice:test-secret" in services["coturn"]["command"]
    assert {services[n]["environment"]["ALICE_ICE_CREDENTIAL"] for n in ("gateway", "gateway-2")} == {"test-secret"}


@pytest.mark.parametrize("files", [(BASE_COMPOSE,), (BASE_COMPOSE, REPLICAS_COMPOSE)], ids=["single", "replicas"])
def test_config_files_named_in_commands_are_mounted(files: tuple[Path, ...]) -> None:
    checked = 0
    for name, svc in compose_config(*files)["services"].items():
        targets = {v.split(":")[1] for v in svc.get("volumes", [])}
        for arg in svc.get("command") or []:
            path = arg.split("=", 1)[-1]
            if path.startswith("/etc/"):
                assert path in targets, f"{name}: {path} is not mounted"
                checked += 1
    assert checked >= 1


def test_replica_layout_refuses_to_start_without_a_turn_secret() -> None:
    result = run([tool("docker-compose"), "-f", str(BASE_COMPOSE), "-f", str(REPLICAS_COMPOSE), "config", "-q"],
                 env={"TURN_PASSWORD": "", "TURN_EXTERNAL_IP": "203.0.113.7"})
    assert result.returncode != 0
    assert "TURN_PASSWORD" in result.stderr


@pytest.mark.parametrize("path", [BASE_COMPOSE, REPLICAS_COMPOSE], ids=lambda p: p.name)
def test_every_alice_variable_in_compose_is_a_setting(path: Path) -> None:
    fields = set(Settings.model_fields)
    for service, env in compose_env(path).items():
        unknown = [k for k in env if k.startswith("ALICE_") and k.removeprefix("ALICE_").lower() not in fields]
        assert not unknown, f"{path.name}: {service} sets {unknown}, which the gateway would silently ignore"


def test_gateway_settings_from_compose_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose_config(BASE_COMPOSE, REPLICAS_COMPOSE)["services"]
    for name in ("gateway", "gateway-2"):
        for key, value in services[name]["environment"].items():
            if value is not None:
                monkeypatch.setenv(key, str(value))
        settings = load_settings()
        assert settings.host == "0.0.0.0"
        assert settings.redis_url is not None and settings.redis_url.port == 6379
        assert any(url.startswith("turn:") for url in settings.ice_servers)


# --- Prometheus ---

@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus.replicas.yml"])
def test_promtool_accepts_the_prometheus_config(name: str) -> None:
    result = run([tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / name)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_promtool_accepts_the_alert_rules_and_their_unit_tests_pass() -> None:
    check = run([tool("promtool"), "check", "rules", str(ALERTS)])
    assert check.returncode == 0, check.stdout + check.stderr
    unit = run([tool("promtool"), "test", "rules", str(ALERTS.with_name("alerts.test.yml"))])
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_the_required_alerts_exist() -> None:
    rules = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    assert "voice_first_audio_ms_bucket" in rules["VoiceTtfaP95High"]
    assert "voice_barge_in_ms_bucket" in rules["VoiceBargeInP95High"]
    assert "voice_errors_total" in rules["VoiceErrorRateHigh"]
    assert "voice_store_up" in rules["VoiceStoreDown"]
    assert "voice_session_capacity" in rules["VoiceAtCapacity"]
    assert "voice_headroom_sessions" in rules["VoiceNoHeadroom"]
    assert "voice_event_loop_lag_ms_bucket" in rules["VoiceEventLoopLagHigh"]
    assert "voice_budget_breaches_total" in rules["VoiceBudgetBreaches"]
    assert 'stage="lost"' in rules["VoiceAudioFramesLost"] and 'stage="received"' in rules["VoiceAudioFramesLost"]


def test_every_metric_in_the_alerts_and_dashboard_is_exported_by_the_gateway() -> None:
    exprs = dashboard_exprs() + [rule["expr"] for rule in alert_rules()]
    used = {name for expr in exprs for name in _METRIC.findall(expr)}
    assert len(used) >= 17
    assert set(TURN_TAKING) <= used
    assert used <= exported_names(), f"unknown metrics: {sorted(used - exported_names())}"


def test_every_label_in_the_alerts_and_dashboard_is_one_the_gateway_sets() -> None:
    exprs = dashboard_exprs() + [rule["expr"] for rule in alert_rules()]
    problems = {expr: label_problems(expr) for expr in exprs}
    assert not {e: p for e, p in problems.items() if p}
    # The check looks where the new panels and alerts select and group: per priority, per stage.
    assert any('stage="lost"' in e for e in exprs) and any("by (le, priority)" in e for e in exprs)


@pytest.mark.parametrize(("expr", "problem"), [
    ("sum by (priority) (rate(voice_turns_total[5m]))", "no label ['priority']"),
    ("histogram_quantile(0.95, sum by (le) (rate(voice_headroom_sessions[5m])))", "no label ['le']"),
    ("histogram_quantile(0.95, sum by (le, stage) (rate(voice_scheduler_wait_ms_bucket[5m])))", "no label ['stage']"),
    ('rate(voice_audio_frames_total{stage="dropped"}[5m])', "never sets that value"),
    ('rate(voice_scheduler_wait_ms_count{priority="urgent"}[5m])', "never sets that value"),
    ('rate(voice_scheduler_wait_ms_sum{le="10"}[5m])', "has no label 'le'"),
    ('voice_cpu_busy_ratio{stage="lost"}', "has no label 'stage'"),
], ids=lambda v: v if len(v) < 30 else None)
def test_the_label_check_catches_labels_the_gateway_does_not_set(expr: str, problem: str) -> None:
    problems = label_problems(expr)
    assert len(problems) == 1 and problem in problems[0], problems


def test_the_label_check_passes_labels_the_gateway_sets() -> None:
    assert label_problems('histogram_quantile(0.99, sum by (le, instance, priority) '
                          '(rate(voice_scheduler_run_ms_bucket{priority="final", job="alice-voice"}[5m])))') == []
    assert label_problems('sum by (instance) (rate(voice_audio_frames_total{stage=~"lost|heard"}[5m]))') == []


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool has no offline query check, but it parses recording rules: one rule per query.
    exprs = [e.replace("$__rate_interval", "1m").replace("$instance", ".*") for e in dashboard_exprs()]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e}
                                                       for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps(rules))
    result = run([tool("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


# --- Grafana ---

def _panel_with(*fragments: str) -> dict[str, Any]:
    panel: dict[str, Any]
    for panel in dashboard()["panels"]:
        exprs = " ".join(t["expr"] for t in panel.get("targets", []))
        if all(fragment in exprs for fragment in fragments):
            return panel
    raise AssertionError(f"no panel queries all of {fragments}")


@pytest.mark.parametrize("histogram", HISTOGRAMS)
def test_dashboard_shows_p50_and_p95_of_each_latency_histogram(histogram: str) -> None:
    rate = f"rate({histogram}_bucket"
    panel = _panel_with(f"histogram_quantile(0.5, sum by (le) ({rate}", f"histogram_quantile(0.95, sum by (le) ({rate}")
    assert panel["fieldConfig"]["defaults"]["unit"] == "ms"


@pytest.mark.parametrize("fragments", [
    ("voice_active_sessions", "voice_session_capacity"),
    ("sum by (mode) (rate(voice_sessions_total",),
    ("rate(voice_turns_total",),
    ("sum by (code) (rate(voice_errors_total",),
    ("sum by (provider) (rate(voice_provider_failures_total",),
    ("voice_store_up",),
    ("voice_headroom_sessions",),
    ("voice_cpu_busy_ratio",),
    ("sum by (instance) (rate(voice_budget_breaches_total", "/ sum by (instance) (rate(voice_first_audio_ms_count"),
    ("sum by (stage) (rate(voice_cpu_seconds_total", "clamp_min(sum(voice_active_sessions"),
    ("sum by (reason) (rate(voice_offers_refused_total",),
    ("histogram_quantile(0.95, sum by (le, priority) (rate(voice_scheduler_wait_ms_bucket",),
    ("histogram_quantile(0.99, sum by (le, instance) (rate(voice_event_loop_lag_ms_bucket",),
    ('sum by (instance) (rate(voice_audio_frames_total{instance=~"$instance", stage="lost"}',),
    ('stage="lost"', '/ sum by (instance) (rate(voice_audio_frames_total{instance=~"$instance", stage="received"}'),
    *[(f'sum(rate({name}{{instance=~"$instance"}}[$__rate_interval]))',) for name in TURN_TAKING],
], ids=lambda f: f[0])
def test_dashboard_has_the_operational_panels(fragments: tuple[str, ...]) -> None:
    assert _panel_with(*fragments)["title"]


def _row_panels(title: str) -> list[dict[str, Any]]:
    """The panels under the row called `title`, down to the next row."""
    panels = dashboard()["panels"]
    rows = sorted((p["gridPos"]["y"], p["title"]) for p in panels if p["type"] == "row")
    titles = [t for _, t in rows]
    top = rows[titles.index(title)][0]
    bottom = rows[titles.index(title) + 1][0] if titles.index(title) + 1 < len(rows) else float("inf")
    return [p for p in panels if p["type"] != "row" and top < p["gridPos"]["y"] < bottom]


def _row_metrics(title: str) -> set[str]:
    return {n for p in _row_panels(title) for t in p["targets"] for n in _METRIC.findall(t["expr"])}


def _assert_each_panel_names_its_metric(title: str) -> None:
    for panel in _row_panels(title):
        named = {n for t in panel["targets"] for n in _METRIC.findall(t["expr"])}
        assert any(n.removesuffix("_bucket") in panel["description"] for n in named), panel["title"]
        assert "\n" not in panel["description"], panel["title"]


def test_rows_come_in_order_latency_load_turn_taking_tools_errors() -> None:
    rows = sorted((p["gridPos"]["y"], p["title"]) for p in dashboard()["panels"] if p["type"] == "row")
    titles = [t for _, t in rows]
    latency = next(i for i, t in enumerate(titles) if t.startswith("Latency"))
    assert titles[latency + 1 : latency + 5] == ["Load and capacity", "Turn-taking", "Tools", "Errors"]


def test_load_panels_sit_in_their_row_and_name_their_metric() -> None:
    assert _row_metrics("Load and capacity") == {
        "voice_headroom_sessions", "voice_cpu_busy_ratio", "voice_offers_refused_total", "voice_end_of_turn_ms_bucket",
        "voice_scheduler_wait_ms_bucket", "voice_event_loop_lag_ms_bucket", "voice_audio_frames_total",
        "voice_budget_breaches_total", "voice_first_audio_ms_count", "voice_cpu_seconds_total", "voice_active_sessions"}
    _assert_each_panel_names_its_metric("Load and capacity")


def test_turn_taking_panels_sit_in_their_row_and_name_their_metric() -> None:
    assert _row_metrics("Turn-taking") == set(TURN_TAKING)
    _assert_each_panel_names_its_metric("Turn-taking")
    rates = _panel_with(*(f"rate({name}" for name in TURN_TAKING))
    assert rates["fieldConfig"]["defaults"]["unit"] == "ops"
    assert len(rates["targets"]) == len(TURN_TAKING)
    assert len({t["legendFormat"] for t in rates["targets"]}) == len(TURN_TAKING)


def test_backchannel_share_divides_by_every_kind_of_overlap() -> None:
    def rate(name: str) -> str:
        return f'sum(rate({name}{{instance=~"$instance"}}[$__rate_interval]))'

    backchannels, interruptions, repairs = (rate(name) for name in OVERLAPS)
    expr = f"{backchannels} / ({backchannels} + {interruptions} + {repairs})"
    panel = _panel_with(expr)
    assert [t["expr"] for t in panel["targets"]] == [expr]
    assert panel in _row_panels("Turn-taking")
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"


def test_tool_panels_sit_in_their_row_and_name_their_metric() -> None:
    def rate(name: str) -> str:
        return f'rate({name}{{instance=~"$instance"}}[$__rate_interval])'

    assert _row_metrics("Tools") == set(TOOLS)
    _assert_each_panel_names_its_metric("Tools")
    calls = _panel_with(f"sum by (outcome) ({rate('voice_tool_duration_ms_count')})")
    assert calls["fieldConfig"]["defaults"]["unit"] == "ops"
    duration = _panel_with(*(f"histogram_quantile({q}, sum by (le, tool) ({rate('voice_tool_duration_ms_bucket')}))"
                             for q in ("0.5", "0.95")))
    assert duration["fieldConfig"]["defaults"]["unit"] == "ms"
    expr = f"sum({rate('voice_tool_errors_total')}) / sum({rate('voice_tool_duration_ms_count')})"
    share = _panel_with(expr)
    assert [t["expr"] for t in share["targets"]] == [expr]
    assert share["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert {calls["id"], duration["id"], share["id"]} == {p["id"] for p in _row_panels("Tools")}


def test_dashboard_panels_use_the_provisioned_data_source_and_do_not_overlap() -> None:
    sources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    uid = sources[0]["uid"]
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid
            assert {t["datasource"]["uid"] for t in panel["targets"]} == {uid}
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area


def test_grafana_provisioning_points_at_what_compose_mounts() -> None:
    services = load_yaml(BASE_COMPOSE)["services"]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yml")["providers"][0]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    source = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    listen = next(a for a in services["prometheus"]["command"] if a.startswith("--web.listen-address="))
    assert source["url"] == "http://" + listen.split("=", 1)[1]


# --- nginx ---

def test_nginx_accepts_the_proxy_config(tmp_path: Path) -> None:
    result = run([tool("nginx"), "-t", "-c", str(NGINX_CONF), "-e", "stderr", "-g", f"pid {tmp_path}/nginx.pid;"])
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# --- Dockerfile ---

def _dockerfile() -> list[Any]:
    return dockerfile_instructions(ROOT / "Dockerfile")


def test_dockerfile_runs_slim_python_311_as_a_non_root_user() -> None:
    instructions = _dockerfile()
    args = {i.args.split("=")[0]: i.args.split("=", 1)[1] for i in instructions if i.keyword == "ARG" and "=" in i.args}
    assert args["PYTHON_IMAGE"] == "python:3.11-slim-bookworm"
    assert [i.args.split()[0] for i in instructions if i.keyword == "FROM"] == ["${PYTHON_IMAGE}"] * 2
    final_stage = instructions[max(n for n, i in enumerate(instructions) if i.keyword == "FROM"):]
    users = [i.args for i in final_stage if i.keyword == "USER"]
    assert users and users[-1] not in {"root", "0"} and not users[-1].startswith("0:")
    env = " ".join(i.args for i in final_stage if i.keyword == "ENV")
    assert "ALICE_HOST=0.0.0.0" in env and "HF_HUB_OFFLINE=1" in env
    alice_vars = re.findall(r"ALICE_(\w+)=", env)
    assert alice_vars and {v.lower() for v in alice_vars} <= set(Settings.model_fields)
    assert [i.args for i in final_stage if i.keyword == "EXPOSE"] == ["8080"]
    assert json.loads(next(i.args for i in final_stage if i.keyword == "CMD")) == ["python", "-m", "alice_voice"]


def test_dockerfile_health_check_uses_python_not_curl() -> None:
    checks = [i.args for i in _dockerfile() if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    command = json.loads(checks[0].split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"] and "/health" in command[2]
    ast.parse(command[2])
    assert "curl" not in checks[0] and "wget" not in checks[0]


def test_dockerfile_installs_the_lock_and_downloads_no_model() -> None:
    instructions = _dockerfile()
    runs = " ".join(i.args for i in instructions if i.keyword == "RUN")
    for forbidden in ("curl", "wget", "hf_hub_download", "snapshot_download", "from_pretrained",
                      "huggingface-cli", "git clone"):
        assert forbidden not in runs, forbidden
    assert not [i for i in instructions if i.keyword == "ADD"], "ADD can fetch URLs; COPY only"
    installs = [m.strip() for i in instructions if i.keyword == "RUN"
                for m in re.findall(r"pip install (.+?)(?:&&|$)", i.args)]
    assert installs == ["-r requirements.lock", "--no-deps pipecat-ai==1.14.0", "--no-deps ."]


def test_dockerfile_proves_at_build_time_that_models_load_offline() -> None:
    check = [i.args for i in _dockerfile() if i.keyword == "RUN" and i.args.startswith("--network=none ")]
    assert len(check) == 1
    command = shlex.split(check[0].removeprefix("--network=none "))
    assert command[:2] == ["python", "-c"] and "load_all" in command[2]
    ast.parse(command[2])
    # Every provider pair it loads must be a real choice of the settings, and all embedded ones appear.
    pairs = re.findall(r"\('(\w+)', '(\w+)'\)", command[2])
    for asr, tts in pairs:
        assert Settings(asr=asr, tts=tts).tts == tts
    assert {asr for asr, _ in pairs} == {"whisper", "sphinx"}
    assert {tts for _, tts in pairs} == {"hibari", "piper", "espeak"}


def test_every_file_the_dockerfile_copies_is_in_the_build_context() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copies = [i.args.split()[:-1] for i in _dockerfile() if i.keyword == "COPY" and "--from" not in i.args]
    sources = [s for sources in copies for s in sources]
    assert "requirements.lock" in sources and "src" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repo"
        assert not dockerignore_excludes(patterns, source), f"COPY {source}: excluded by .dockerignore"
    assert not dockerignore_excludes(patterns, "src/alice_voice/config.py")
    for path in (".git/HEAD", ".venv/bin/python", ".cache/x", "tests/unit/test_deploy.py", "test-artifacts/a.wav",
                 "bench/out/latency.json", ".pytest_cache/v", "src/alice_voice/__pycache__/config.cpython-311.pyc"):
        assert dockerignore_excludes(patterns, path), f"{path} would reach the build context"


def test_the_image_carries_the_runtime_set_only() -> None:
    """requirements.lock is what runs (the image installs it); the test tools live in requirements-dev.lock."""
    def names(path: str) -> set[str]:
        lines = (DEPLOY.parent / path).read_text().splitlines()
        return {line.split("==")[0].lower() for line in lines if line and not line.startswith("#")}

    runtime, dev = names("requirements.lock"), names("requirements-dev.lock")
    assert not runtime & dev
    assert not runtime & {"pytest", "pytest-asyncio", "mypy", "ruff", "playwright", "schemathesis", "hypothesis",
                          "matplotlib", "import-linter", "kubernetes-validate"}
    assert {"aiortc", "fastapi", "uvicorn", "mcp", "opentelemetry-sdk"} <= runtime
