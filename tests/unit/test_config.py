from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import alice_voice
from alice_voice.config import Settings, SettingsError, load_settings


def test_defaults_are_embedded_and_local() -> None:
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.redis_url is None and settings.ice_servers == []
    assert settings.asr == "whisper" and settings.agent == "local"


def test_compute_and_admission_defaults() -> None:
    settings = load_settings()
    assert settings.compute_threads == 0  # size the inference scheduler for the CPUs this process may use
    assert settings.latency_budget_ms == 500
    assert settings.retry_after_s == 5
    assert settings.offer_timeout_s == 8.0


def test_compute_threads_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALICE_COMPUTE_THREADS", "3")
    monkeypatch.setenv("ALICE_LATENCY_BUDGET_MS", "900")
    monkeypatch.setenv("ALICE_RETRY_AFTER_S", "12")
    monkeypatch.setenv("ALICE_OFFER_TIMEOUT_S", "4.5")
    settings = load_settings()
    assert (settings.compute_threads, settings.latency_budget_ms) == (3, 900)
    assert (settings.retry_after_s, settings.offer_timeout_s) == (12, 4.5)


def test_asr_threads_is_gone_and_a_config_file_that_still_sets_it_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "asr_threads" not in Settings.model_fields
    path = tmp_path / "alice.yaml"
    path.write_text("asr_threads: 2\n")
    monkeypatch.setenv("ALICE_CONFIG_FILE", str(path))
    with pytest.raises(SettingsError, match="ALICE_ASR_THREADS"):
        load_settings()


def test_environment_and_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALICE_PORT", "9000")
    monkeypatch.setenv("ALICE_ICE_SERVERS", "stun:a.example:3478, turn:b.example:3478")
    monkeypatch.setenv("ALICE_REDIS_URL", "redis://127.0.0.1:6379/0")
    settings = load_settings()
    assert settings.port == 9000
    assert settings.ice_servers == ["stun:a.example:3478", "turn:b.example:3478"]
    assert str(settings.redis_url) == "redis://127.0.0.1:6379/0"


def test_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "alice.yaml"
    path.write_text("max_sessions: 3\nlog_level: DEBUG\n")
    monkeypatch.setenv("ALICE_CONFIG_FILE", str(path))
    monkeypatch.setenv("ALICE_MAX_SESSIONS", "5")  # the environment wins over the file
    settings = load_settings()
    assert settings.max_sessions == 5 and settings.log_level == "DEBUG"


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("ALICE_PORT", "99999", "ALICE_PORT"),
    ("ALICE_MAX_SESSIONS", "zero", "ALICE_MAX_SESSIONS"),
    ("ALICE_REDIS_URL", "not a url", "ALICE_REDIS_URL"),
    ("ALICE_ASR", "martian", "ALICE_ASR"),
    ("ALICE_COMPUTE_THREADS", "-1", "ALICE_COMPUTE_THREADS"),
    ("ALICE_LATENCY_BUDGET_MS", "50", "ALICE_LATENCY_BUDGET_MS"),
    ("ALICE_RETRY_AFTER_S", "0", "ALICE_RETRY_AFTER_S"),
    ("ALICE_OFFER_TIMEOUT_S", "0", "ALICE_OFFER_TIMEOUT_S"),
    ("ALICE_EOT_ASK_LEAD_MS", "-1", "ALICE_EOT_ASK_LEAD_MS"),
    ("ALICE_EOT_ASK_LEAD_MS", "300", "eot_ask_lead_ms <= eot_silence_ms"),  # asked before the pause began
    ("ALICE_NO_SUCH_THING", "1", None),
])
def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                     needle: str | None) -> None:
    monkeypatch.setenv(name, value)
    if needle is None:  # unknown environment variables are not settings; they are ignored
        load_settings()
        return
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_start_up_with_a_bad_value_prints_one_line_and_exits_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "alice_voice"], env={"ALICE_PORT": "-1", "PATH": "/usr/bin"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "ALICE_PORT" in lines[0] and "Traceback" not in proc.stderr


def test_turn_servers_get_their_credentials_and_stun_servers_do_not() -> None:
    from alice_voice.transport.peer import ice_servers

    servers = ice_servers(["stun:s.example:3478", "turn:t.example:3478?transport=udp"], "alice", "pw")
    assert (servers[0].username, servers[0].credential) == (None, None)
    assert (servers[1].username, servers[1].credential) == ("alice", "pw")


def _attributes_read(root: Path) -> set[str]:
    """Every `<something>.<name>` read in the package's source, outside config.py."""
    names: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        if path == root / "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.add(node.attr)
    return names


def test_every_setting_is_read_somewhere_in_the_gateway() -> None:
    """A setting declared but never read is a knob that does nothing (as `vad_exit_margin` once was)."""
    root = Path(alice_voice.__file__).resolve().parent
    read = _attributes_read(root)
    assert len(read) > 100  # the walk did find the source
    unread = sorted(name for name in Settings.model_fields if name not in read)
    assert unread == [], f"settings never read outside config.py: {unread}"


def test_check_config_prints_the_effective_settings_with_secrets_masked(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin", "ALICE_LLM_API_KEY": "sk-very-secret", "ALICE_TWILIO_AUTH_TOKEN": "tw-secret",
           "ALICE_PORT": "9000"}
    proc = subprocess.run([sys.executable, "-m", "alice_voice", "check-config"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    effective = json.loads(proc.stdout)
    assert effective["port"] == 9000 and effective["llm_api_key"] == "**********"
    assert "sk-very-secret" not in proc.stdout and "tw-secret" not in proc.stdout
    assert effective["tools_file_contents"] == {"webhooks": [], "mcp_servers": [], "builtin": True}


@pytest.mark.parametrize(("env", "says"), [({"ALICE_PORT": "0"}, "bad setting: ALICE_PORT"),
                                           ({"ALICE_TOOLS_FILE": "/nonexistent.toml"}, "bad tools file")])
def test_check_config_exits_2_on_a_bad_setting_or_tools_file(env: dict[str, str], says: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "alice_voice", "check-config"], env={"PATH": "/usr/bin", **env},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and says in proc.stderr and proc.stdout == ""


def test_sip_on_every_interface_needs_the_address_callers_reach() -> None:
    with pytest.raises(ValueError, match="sip_public_address"):
        Settings(host="0.0.0.0", sip_port=5060)
    assert Settings(host="0.0.0.0", sip_port=5060, sip_public_address="203.0.113.5").sip_port == 5060
    with pytest.raises(ValueError, match="together"):
        Settings(sip_port=5060, sip_username="pbx")
