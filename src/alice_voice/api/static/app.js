// The page: wires the call, the audio graph and the conversation view to the controls; exposes window.alice.

import { AudioGraph } from "./audio.js";
import { Call, CallError } from "./call.js";
import { ConversationView } from "./conversation.js";

const STATE_LABELS = {
  idle: "Not connected",
  connecting: "Connecting…",
  listening: "Listening",
  user_speaking: "You're speaking",
  thinking: "Thinking…",
  speaking: "Alice is speaking",
  paused: "Paused — listening to you",
  tone: "Playing test tone",
};
// The conversation's states, as the gateway reports them in `turn.state` events (the page derives none of
// them); the others (idle, connecting, tone) are the page's own, about the connection.
const TURN_STATES = new Set(["listening", "user_speaking", "thinking", "speaking", "paused"]);
// A reply can be stopped while it plays, and while it waits paused for the caller's sound to be understood.
const REPLY_PLAYING = new Set(["speaking", "paused"]);

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"), statusText: $("status-text"), notice: $("notice"), noticeText: $("notice-text"),
  reconnect: $("reconnect"), call: $("call"), callLabel: $("call-label"), stop: $("stop"), composer: $("composer"),
  text: $("text"), send: $("send"), tone: $("tone"), meter: $("meter"), meterFill: $("meter-fill"),
  connection: $("connection"), remote: $("remote"), app: document.querySelector(".app"),
};
const view = new ConversationView({ scroller: $("conversation"), list: $("turns"), partial: $("partial"),
                                    empty: $("empty") });

let call = null;
let audio = null;
let state = "idle";
let meterFrame = 0;

const alice = {
  events: [],
  timings: {},
  errors: [],
  get state() { return state; },
  get session() { return call ? { id: call.sessionId, token: call.token } : null; },
  remoteLevel: () => audio?.remoteLevel() ?? { rms: 0, peak: 0 },
  micLevel: () => audio?.micLevel() ?? { rms: 0, peak: 0 },
  gain: () => audio?.gainValue() ?? 1,
  send: (message) => call?.send(message) ?? false,
  connect: () => connect(),
  hangup: () => hangup(),
};
window.alice = alice;

function setState(next) {
  state = next;
  ui.status.dataset.state = next;
  ui.statusText.textContent = STATE_LABELS[next];
  const live = next !== "idle" && next !== "connecting";
  ui.app.toggleAttribute("data-live", live);
  ui.call.dataset.connected = String(next !== "idle");
  ui.call.disabled = next === "connecting";
  ui.callLabel.textContent = next === "idle" ? "Connect" : next === "connecting" ? "Connecting…" : "Hang up";
  ui.stop.disabled = !REPLY_PLAYING.has(next);
  ui.text.disabled = ui.send.disabled = !live || next === "tone";
  ui.tone.disabled = next !== "idle";
}

function showNotice(message, action = "Reconnect") {
  ui.noticeText.textContent = message;
  ui.reconnect.textContent = action;
  ui.notice.hidden = false;
  ui.reconnect.focus();
}

function hideNotice() {
  ui.notice.hidden = true;
}

async function connect() {
  if (state !== "idle") return;
  hideNotice();
  audio = new AudioGraph();  // created inside the click, so the browser lets it play
  const tone = ui.tone.checked;
  const current = new Call({ onEvent, onTrack: (stream) => audio?.playRemote(stream, ui.remote), onDrop });
  call = current;
  alice.timings = call.timings;
  setState("connecting");
  ui.connection.textContent = "";
  try {
    await audio.resume();
    await current.start({ tone });
  } catch (err) {
    if (call !== current) return;  // hung up while connecting: nothing to report
    const known = err instanceof CallError;
    alice.errors.push({ kind: known ? err.kind : "unexpected", message: err.message });
    teardown();
    showNotice(known ? err.message : `Could not connect: ${err.message}`,
               known && err.kind === "mic_denied" ? "Try again" : "Reconnect");
    return;
  }
  if (call !== current) return;
  audio.watchMic(call.mic);
  startMeter();
  if (state === "connecting") setState(tone ? "tone" : "listening");
  showConnectionTimings(call.timings);
}

function hangup() {
  if (!call) return;
  teardown();
  view.note("Call ended");
}

function onDrop(message) {
  alice.errors.push({ kind: "dropped", message });
  teardown();
  showNotice(message);
}

function teardown() {
  call?.hangup();
  call = null;
  audio?.close();
  audio = null;
  cancelAnimationFrame(meterFrame);
  ui.meterFill.style.transform = "scaleX(0)";
  ui.meter.setAttribute("aria-valuenow", "0");
  view.clearPartial();
  ui.connection.textContent = "";
  setState("idle");
}

function showConnectionTimings(t) {
  const parts = [["offer", t.offer_rtt_ms], ["ICE", t.ice_connected_ms], ["channel", t.dc_open_ms]]
    .filter(([, ms]) => Number.isFinite(ms)).map(([name, ms]) => `${name} ${ms} ms`);
  ui.connection.textContent = `Connected · ${parts.join(" · ")}`;
}

function onEvent(event) {
  alice.events.push(event);
  switch (event.type) {
    case "session.ready":
      if (event.mode === "tone") setState("tone");
      else if (state === "connecting") setState("listening");  // the gateway's state until its first turn.state
      break;
    case "turn.state":
      // The status shows the gateway's own state: a call in tone mode has no conversation, and a call
      // being hung up reports nothing more.
      if (call && state !== "idle" && state !== "tone" && TURN_STATES.has(event.state)) setState(event.state);
      break;
    case "vad.speech_started": audio?.duck(true); break;
    case "vad.speech_stopped": audio?.duck(false); break;
    case "transcript.partial": view.partial(event.text ?? "", event.stable ?? ""); break;
    case "transcript.final": view.userTurn(event.text ?? ""); break;
    case "agent.text": view.assistantDelta(event.delta ?? ""); break;
    case "backchannel": view.backchannel(event.text ?? "", event.duration_ms); break;
    case "tts.stopped": view.replyStopped(event.reason, event.heard); break;
    case "tool.started": view.toolStarted(event.call_id ?? "", event.name ?? "tool"); break;
    case "tool.finished": view.toolFinished(event.call_id ?? "", event.name ?? "tool", event.outcome ?? "error",
                                            event.duration_ms ?? 0); break;
    case "turn.metrics": view.metrics(event.turn, event.timings ?? {}); break;
    case "error": view.note(`${event.message} (${event.code})`, { error: true }); break;
    default: break;
  }
}

function startMeter() {
  let shown = -1;
  const tick = () => {
    const { rms } = alice.micLevel();
    // -60 dBFS .. 0 dBFS onto 0..1: speech sits in the middle, silence at the left.
    const value = Math.max(0, Math.min(1, (20 * Math.log10(rms + 1e-9) + 60) / 60));
    ui.meterFill.style.transform = `scaleX(${value.toFixed(3)})`;
    const pct = Math.round(value * 100);
    if (Math.abs(pct - shown) >= 5) {
      shown = pct;
      ui.meter.setAttribute("aria-valuenow", String(pct));
    }
    meterFrame = requestAnimationFrame(tick);
  };
  meterFrame = requestAnimationFrame(tick);
}

ui.call.addEventListener("click", () => (state === "idle" ? connect() : hangup()));
ui.reconnect.addEventListener("click", () => { teardown(); connect(); });
ui.stop.addEventListener("click", () => { call?.send({ type: "stop_tts" }); });
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && REPLY_PLAYING.has(state)) call?.send({ type: "stop_tts" });  // the keyboard's Stop
});
ui.composer.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = ui.text.value.trim();
  if (!text || !call?.send({ type: "text", text })) return;
  view.userTurn(text, { typed: true });
  ui.text.value = "";  // the status follows once the gateway reports the turn (turn.state "thinking")
});
setState("idle");
