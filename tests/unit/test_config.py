from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from alice_voice.config import SettingsError, load_settings


def test_defaults_are_embedded_and_local() -> None:
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.redis_url is None and settings.ice_servers == []
    assert settings.asr == "whisper" and settings.agent == "local"


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
