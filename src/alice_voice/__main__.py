"""`python -m alice_voice` / `alice-voice`: load the settings, then serve with uvicorn (SIGTERM drains).

`alice-voice check-config` prints the effective settings as JSON, secrets masked, and exits 2 on a bad
setting or tools file: for CI/CD and init containers.
"""

from __future__ import annotations

import faulthandler
import json
import signal
import sys

from alice_voice.config import Settings, SettingsError, load_settings
from alice_voice.logs import configure_logging


def main() -> None:
    settings = _settings_or_exit()
    if sys.argv[1:] == ["check-config"]:
        check_config(settings)
        return
    if sys.argv[1:]:
        print(f"alice-voice: unknown command {' '.join(sys.argv[1:])!r} (try check-config)", file=sys.stderr)
        raise SystemExit(2)
    configure_logging(settings.log_level, settings.log_json)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: every thread's stack on stderr
    from alice_voice.tracing import configure_from_environment

    configure_from_environment()  # traces: off unless the OTEL_* variables ask for them
    from alice_voice.api.app import create_app
    from alice_voice.api.server import DrainingServer, server_config
    from alice_voice.transport.ice import pin_host_addresses

    pin_host_addresses(settings.ice_host_addresses)  # once, for the process (aioice's host candidates)
    app = create_app(settings, freeze_heap=True)
    DrainingServer(server_config(app, settings), app.state.gateway, app.state.parts.drain).run()


def check_config(settings: Settings) -> None:
    from alice_voice.tools.config import ToolsFileError, load_tools_file

    try:
        tools = load_tools_file(settings.tools_file)
    except ToolsFileError as exc:
        print(f"alice-voice: bad tools file: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    effective = settings.model_dump(mode="json")  # SecretStr fields come out as "**********"
    effective["tools_file_contents"] = {"webhooks": [w.name for w in tools.webhook],
                                        "mcp_servers": [m.name for m in tools.mcp], "builtin": tools.builtin}
    print(json.dumps(effective, indent=2, sort_keys=True))


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"alice-voice: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
