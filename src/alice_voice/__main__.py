"""`python -m alice_voice` / `alice-voice`: load the settings, then serve with uvicorn."""

from __future__ import annotations

import sys

import uvicorn

from alice_voice.config import SettingsError, load_settings
from alice_voice.logs import configure_logging


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"alice-voice: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.log_json)
    from alice_voice.api.app import create_app

    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=False, lifespan="on")


if __name__ == "__main__":
    main()
