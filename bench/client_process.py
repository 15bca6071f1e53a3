"""Run a reference client in its own process: connects, prints `session_id token`, then stays until killed.

Tests kill it with SIGKILL to play a client that vanishes without saying goodbye.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import numpy as np

from alice_voice.transport.ice import pin_host_addresses
from support.rtc_client import RtcClient


async def main(url: str, mode: str | None) -> None:
    pin_host_addresses(["127.0.0.1"])
    client = RtcClient(url, mode=mode)
    await client.connect()
    client.say(np.zeros(16000 * 600, dtype=np.int16))  # keep media flowing until killed
    print(client.session_id, client.token, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--mode", default="tone")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.url, args.mode))
    except KeyboardInterrupt:
        sys.exit(0)
