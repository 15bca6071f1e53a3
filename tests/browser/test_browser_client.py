"""The browser client at GET /, in headless Chromium, against a real agent-mode gateway on 127.0.0.1."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, Playwright, expect

from conftest import RunningGateway, make_settings, serve

from .conftest import OKAY_AT_S, chromium, client_page, open_client

pytestmark = [pytest.mark.browser, pytest.mark.models, pytest.mark.asyncio(loop_scope="module")]

AUDIBLE_RMS = 0.01  # -40 dBFS: well above the silence Chromium plays between replies
# What the status shows for each conversation state the gateway reports in `turn.state`.
STATE_LABELS = {
    "listening": "Listening",
    "user_speaking": "You're speaking",
    "thinking": "Thinking…",
    "speaking": "Alice is speaking",
    "paused": "Paused — listening to you",
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def talking_browser(pw: Playwright, speech_wav: Path) -> AsyncIterator[BrowserContext]:
    async with chromium(pw, speech_wav) as context:
        yield context


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def acknowledging_browser(pw: Playwright, backchannel_wav: Path) -> AsyncIterator[BrowserContext]:
    async with chromium(pw, backchannel_wav) as context:
        yield context


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def quiet_browser(pw: Playwright, silence_wav: Path) -> AsyncIterator[BrowserContext]:
    async with chromium(pw, silence_wav) as context:
        yield context


async def wait_event(page: Page, kind: str, *, after: int = 0, timeout: float = 20_000,
                     **fields: Any) -> dict[str, Any]:
    handle = await page.wait_for_function(
        """([kind, after, fields]) => alice.events.slice(after).find(
             e => e.type === kind && Object.entries(fields).every(([k, v]) => e[k] === v))""",
        arg=[kind, after, fields], timeout=timeout)
    event: dict[str, Any] = await handle.json_value()
    return event


async def event_count(page: Page) -> int:
    count: int = await page.evaluate("alice.events.length")
    return count


async def wait_audible(page: Page, frames: int = 1, timeout: float = 20_000) -> dict[str, float]:
    """Until the page's analyser has measured `frames` polls of audible assistant audio; the loudest one."""
    handle = await page.wait_for_function(
        """([frames, floor]) => {
             const level = alice.remoteLevel(), seen = (window.__audible ??= {count: 0, peak: 0, rms: 0});
             if (level.rms > floor) Object.assign(seen, {count: seen.count + 1, peak: Math.max(seen.peak, level.peak),
                                                         rms: Math.max(seen.rms, level.rms)});
             return seen.count >= frames && seen;
           }""", arg=[frames, AUDIBLE_RMS], polling=20, timeout=timeout)
    level: dict[str, float] = await handle.json_value()
    await page.evaluate("delete window.__audible")
    return level


async def record_status(page: Page) -> None:
    """From now on, the page keeps every label its status shows, with the last `turn.state` it had received.

    Each DataChannel message is a task of its own, and the observer runs after each, so no label is missed.
    """
    await page.evaluate("""() => {
        window.__shown = [];
        new MutationObserver((records) => {
          const last = alice.events.filter(e => e.type === 'turn.state').at(-1);
          for (const record of records) for (const node of record.addedNodes) {
            window.__shown.push({label: node.textContent, server: last?.state ?? null,
                                 events: alice.events.length});
          }
        }).observe(document.getElementById('status-text'), {childList: true});
      }""")


async def turn_states(page: Page, *, after: int) -> list[str]:
    states: list[str] = await page.evaluate(
        "after => alice.events.slice(after).filter(e => e.type === 'turn.state').map(e => e.state)", after)
    return states


async def assert_status_followed_the_server(page: Page, *, after: int) -> list[str]:
    """The status showed exactly the states the gateway reported after event `after`, in order, each one once
    that state's `turn.state` had arrived (never ahead of it); returns those states."""
    states = await turn_states(page, after=after)
    shown: list[dict[str, Any]] = await page.evaluate("after => window.__shown.filter(s => s.events > after)", after)
    labels = [s["label"] for i, s in enumerate(shown) if i == 0 or s["label"] != shown[i - 1]["label"]]
    assert labels == [STATE_LABELS[state] for state in states], (labels, states)
    ahead = [s for s in shown if s["server"] is None or STATE_LABELS[s["server"]] != s["label"]]
    assert not ahead, f"shown without the gateway saying so: {ahead}"
    await expect(page.locator("#status")).to_have_text(STATE_LABELS[states[-1]])
    return states


async def connect(page: Page) -> None:
    await page.get_by_role("button", name="Connect").click()
    await page.wait_for_function("alice.timings.dc_open_ms !== undefined", timeout=15_000)
    await wait_event(page, "session.ready", timeout=5_000)


async def hang_up(page: Page) -> None:
    await page.get_by_role("button", name="Hang up").click()
    await expect(page.locator("#status")).to_have_text("Not connected")


async def test_spoken_question_is_shown_answered_and_heard(agent_gateway: RunningGateway,
                                                          talking_browser: BrowserContext, artifacts: Path) -> None:
    async with client_page(talking_browser, agent_gateway.url) as page:
        await record_status(page)
        await connect(page)
        ready = await page.evaluate("alice.events.findIndex(e => e.type === 'session.ready')")
        await expect(page.locator("#connection")).to_contain_text(re.compile(r"offer \d+ ms · ICE \d+ ms"))
        timings = await page.evaluate("alice.timings")
        assert timings["ice_gathering_complete"] is True
        assert 0 < timings["offer_rtt_ms"] < timings["connect_ms"]
        assert timings["ice_connected_ms"] <= timings["dc_open_ms"]
        # The page ducks Alice while the user speaks: the gain is down between speech_started and stopped.
        await page.wait_for_function("alice.state === 'user_speaking' && alice.gain() < 0.5", timeout=15_000)
        # The live partial shows the latest transcript.partial, its `stable` prefix in its own span.
        await page.wait_for_function(
            """() => {
                 const last = alice.events.filter(e => e.type === 'transcript.partial').at(-1);
                 const shown = document.getElementById('partial');
                 const [fixed, rest] = ['.stable', '.unstable'].map(s => shown.querySelector(s).textContent);
                 return last && !shown.hidden && fixed + rest === last.text &&
                        fixed === (last.text.startsWith(last.stable) ? last.stable : '');
               }""", timeout=15_000)

        final = await wait_event(page, "transcript.final", timeout=20_000)
        assert re.search(r"(seven|7) times (eight|8)", final["text"].lower()), final["text"]
        await expect(page.locator(".row.user .bubble").first).to_have_text(final["text"])
        kinds = await page.evaluate("alice.events.map(e => e.type)")
        assert "transcript.partial" in kinds[:kinds.index("transcript.final")]

        reply = page.locator(".row.assistant .bubble").first
        await expect(reply).to_contain_text("fifty-six", timeout=20_000)
        await page.wait_for_function("alice.state === 'speaking'", timeout=20_000)
        await expect(page.locator("#status")).to_have_text("Alice is speaking")
        level = await wait_audible(page, frames=10)
        assert level["peak"] > 0.05, level
        assert await page.evaluate("alice.gain()") > 0.9  # restored once the user stopped

        stopped = await wait_event(page, "tts.stopped", timeout=20_000)
        assert stopped["reason"] == "done"
        await wait_event(page, "turn.metrics", timeout=10_000)
        await expect(page.locator(".row.assistant .metrics li[data-metric='first_audio_ms']")).to_be_visible()
        await wait_event(page, "turn.state", after=ready, state="listening")
        states = await assert_status_followed_the_server(page, after=ready + 1)
        assert states[0] == "user_speaking" and "thinking" in states and "speaking" in states, states
        await page.screenshot(path=str(artifacts / "browser-turn.png"))
        await hang_up(page)


async def test_text_box_gets_an_answer_and_stop_cuts_the_reply(agent_gateway: RunningGateway,
                                                              quiet_browser: BrowserContext, artifacts: Path) -> None:
    async with client_page(quiet_browser, agent_gateway.url) as page:
        await connect(page)
        # A message the gateway refuses comes back as an `error` event, shown in the conversation.
        assert await page.evaluate("alice.send({type: 'shout'})")
        error = await wait_event(page, "error")
        await expect(page.locator(".row.note.error")).to_contain_text(error["message"])
        await expect(page.locator(".row.note.error")).to_contain_text("invalid_message")

        box = page.get_by_label("Type a message to Alice")
        await record_status(page)
        seen = await event_count(page)
        await box.fill("what is 12 plus 30")
        await box.press("Enter")
        await expect(page.locator(".row.user .bubble").last).to_have_text("what is 12 plus 30")
        await expect(page.locator(".row.assistant .bubble").last).to_contain_text("forty-two", timeout=20_000)
        await wait_event(page, "tts.stopped", after=seen, timeout=20_000, reason="done")
        await wait_event(page, "turn.state", after=seen, state="listening")
        states = await assert_status_followed_the_server(page, after=seen)
        assert states[0] == "thinking" and "speaking" in states, states

        # A tool call is shown under the reply that made it: its name, then its time.
        seen = await event_count(page)
        await box.fill("set a timer for ten minutes")
        await box.press("Enter")
        finished = await wait_event(page, "tool.finished", after=seen, timeout=20_000)
        chip = page.locator(".row.assistant .tools .tool").last
        await expect(chip).to_have_class(re.compile(r"\bok\b"))
        shown_ms = math.floor(finished["duration_ms"] + 0.5)  # JavaScript's Math.round: halves go up
        await expect(chip).to_have_text(f"set_timer {shown_ms} ms")
        await expect(page.locator(".row.assistant .bubble").last).to_contain_text("ten-minute timer is set")
        await wait_event(page, "tts.stopped", after=seen, timeout=20_000, reason="done")

        seen = await event_count(page)
        await box.fill("tell me a joke")
        await box.press("Enter")
        await wait_event(page, "tts.started", after=seen)
        await wait_audible(page, frames=25)  # about half a second of the joke, so something was heard
        await page.get_by_role("button", name="Stop").click()
        stopped = await wait_event(page, "tts.stopped", after=seen, timeout=5_000)
        assert stopped["reason"] == "stop_request" and stopped["heard"]

        cut = page.locator(".row.assistant").last
        await expect(cut).to_have_class(re.compile(r"\binterrupted\b"))
        await expect(cut.locator(".badge")).to_have_text("Stopped")
        await expect(cut.locator(".heard")).to_have_text(stopped["heard"])
        await expect(cut.locator(".unheard")).not_to_be_empty()
        await expect(page.locator("#status")).to_have_text("Listening")
        await page.screenshot(path=str(artifacts / "browser-stop.png"))
        await hang_up(page)


async def test_an_acknowledgement_over_the_reply_is_a_note_and_the_reply_goes_on(
        agent_gateway: RunningGateway, acknowledging_browser: BrowserContext, artifacts: Path) -> None:
    # The microphone says "Okay." once, OKAY_AT_S after it opened: into the long reply typed as soon as the call
    # is up. The gateway pauses the reply, hears an acknowledgement, sends `backchannel` and goes on.
    async with client_page(acknowledging_browser, agent_gateway.url) as page:
        await record_status(page)
        await connect(page)
        # When the microphone opened, on the page's clock (a little late: connecting ended before this).
        mic_opened: float = await page.evaluate(
            "() => performance.now() - (alice.timings.connect_ms - alice.timings.mic_ms)")
        seen = await event_count(page)
        box = page.get_by_label("Type a message to Alice")
        await box.fill("what can you do")
        await box.press("Enter")
        await wait_event(page, "tts.started", after=seen)
        began: float = await page.evaluate("opened => (performance.now() - opened) / 1000", mic_opened)
        assert began < OKAY_AT_S - 0.5, f"the reply began {began:.1f} s into the microphone's file: too late"

        backchannel = await wait_event(page, "backchannel", after=seen, timeout=20_000)
        reply = page.locator(".row.assistant").last
        note = reply.locator(".backchannels .backchannel")
        await expect(note).to_have_count(1)
        await expect(note).to_contain_text(backchannel["text"].strip())
        await expect(note).to_have_attribute("data-duration-ms", str(backchannel["duration_ms"]))
        stopped = await wait_event(page, "tts.stopped", after=seen, timeout=30_000)
        assert stopped["reason"] == "done", stopped  # the reply went on to its end
        await wait_event(page, "turn.state", after=seen, state="listening")

        kinds = await page.evaluate("after => alice.events.slice(after).map(e => e.type)", seen)
        assert "transcript.final" not in kinds, "the acknowledgement was taken as a turn"
        await expect(page.locator(".row.user")).to_have_count(1)  # the typed question only
        await expect(page.locator(".row.user .bubble")).to_have_text("what can you do")
        await expect(page.locator(".row.assistant")).to_have_count(1)  # no answer to it
        await expect(reply).not_to_have_class(re.compile(r"\binterrupted\b"))
        await expect(note).to_be_visible()
        states = await assert_status_followed_the_server(page, after=seen)
        assert "paused" in states, states  # shown as "Paused — listening to you" while it was heard
        await page.screenshot(path=str(artifacts / "browser-backchannel.png"))
        await hang_up(page)


async def test_tone_mode_plays_and_a_dropped_call_offers_to_reconnect(agent_gateway: RunningGateway,
                                                                      quiet_browser: BrowserContext) -> None:
    async with client_page(quiet_browser, agent_gateway.url) as page:
        await page.get_by_text("Tone test").click()
        await expect(page.get_by_role("switch", name="Tone test")).to_be_checked()
        await connect(page)
        ready = await wait_event(page, "session.ready")
        assert ready["mode"] == "tone"
        await expect(page.locator("#status")).to_have_text("Playing test tone")
        level = await wait_audible(page, frames=10, timeout=10_000)
        assert level["rms"] > 0.05, level
        await expect(page.get_by_label("Type a message to Alice")).to_be_disabled()

        session = await page.evaluate("alice.session")
        async with httpx.AsyncClient(base_url=agent_gateway.url) as http:
            gone = await http.delete(f"/api/voice/sessions/{session['id']}",
                                     headers={"Authorization": f"Bearer {session['token']}"})
        assert gone.status_code == 200
        notice = page.get_by_role("alert")
        await expect(notice).to_contain_text("dropped", timeout=10_000)
        await expect(page.locator("#status")).to_have_text("Not connected")
        await notice.get_by_role("button", name="Reconnect").click()
        await page.wait_for_function("alice.state === 'tone'", timeout=15_000)
        await expect(notice).to_be_hidden()
        await hang_up(page)


async def test_denied_microphone_says_so(agent_gateway: RunningGateway, quiet_browser: BrowserContext) -> None:
    async with client_page(quiet_browser, agent_gateway.url, microphone=False) as page:
        await page.get_by_role("button", name="Connect").click()
        notice = page.get_by_role("alert")
        await expect(notice).to_contain_text("Microphone access was denied")
        await expect(notice.get_by_role("button", name="Try again")).to_be_focused()
        await expect(page.locator("#status")).to_have_text("Not connected")
        assert await page.evaluate("alice.errors.map(e => e.kind)") == ["mic_denied"]


async def test_unreachable_gateway_says_so(quiet_browser: BrowserContext) -> None:
    async with serve(make_settings()) as running:
        page, errors = await open_client(quiet_browser, running.url)
    try:  # the page is loaded; the gateway that served it is gone
        await page.get_by_role("button", name="Connect").click()
        notice = page.get_by_role("alert")
        await expect(notice).to_contain_text("Can't reach the gateway")
        await expect(notice.get_by_role("button", name="Reconnect")).to_be_visible()
        await expect(page.locator("#status")).to_have_text("Not connected")
        assert await page.evaluate("alice.errors.map(e => e.kind)") == ["unreachable"]
        assert not errors, errors
    finally:
        await page.close()
