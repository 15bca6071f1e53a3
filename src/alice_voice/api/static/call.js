// One call to the gateway: microphone, RTCPeerConnection, DataChannel "events", non-trickle offer/answer.

const GATHER_TIMEOUT_MS = 3000;
const OFFER_TIMEOUT_MS = 15000;
const OPEN_TIMEOUT_MS = 15000;

/** A failure the user can act on; `kind` picks the message. */
export class CallError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

const MIC_CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
  video: false,
};

async function openMic() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new CallError("no_mic", "This browser cannot use a microphone here (the page needs https or localhost).");
  }
  try {
    return await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
  } catch (err) {
    if (err.name === "NotAllowedError" || err.name === "SecurityError") {
      throw new CallError("mic_denied",
        "Microphone access was denied. Allow the microphone for this site in your browser, then reconnect.");
    }
    if (err.name === "NotFoundError" || err.name === "OverconstrainedError") {
      throw new CallError("no_mic", "No microphone was found. Plug one in, then reconnect.");
    }
    throw new CallError("no_mic", `The microphone could not be opened (${err.name}).`);
  }
}

function iceGathered(pc, timeoutMs) {
  // Non-trickle: the gateway takes every candidate in the offer, so wait for gathering to finish.
  if (pc.iceGatheringState === "complete") return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (complete) => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve(complete);
    };
    const check = () => { if (pc.iceGatheringState === "complete") done(true); };
    const timer = setTimeout(() => done(false), timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

async function postOffer(body) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), OFFER_TIMEOUT_MS);
  let response;
  try {
    response = await fetch("/api/webrtc/offer", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      signal: abort.signal,
    });
  } catch (err) {
    throw new CallError("unreachable", abort.signal.aborted
      ? "The gateway did not answer in time. Check that it is running, then reconnect."
      : `Can't reach the gateway at ${location.host}. Check that it is running, then reconnect.`);
  } finally {
    clearTimeout(timer);
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    const error = payload?.error ?? {};
    const busy = error.code === "at_capacity" ? "Alice is busy with other calls right now. " : "";
    throw new CallError("rejected", `${busy}The gateway refused the call: ${error.message ?? response.statusText}`);
  }
  return payload;
}

/**
 * Listeners: onEvent(event), onTrack(stream), onDrop(message). `timings` fills in as the call opens (ms).
 */
export class Call {
  constructor({ onEvent, onTrack, onDrop }) {
    this.listeners = { onEvent, onTrack, onDrop };
    this.timings = {};
    this.sessionId = null;
    this.token = null;
    this.mic = null;
    this.pc = null;
    this.channel = null;
    this.closing = false;
    this.open = false;  // true once start() has finished: later failures are drops, earlier ones start() errors
  }

  async start({ tone = false } = {}) {
    const began = performance.now();
    const since = (t) => Math.round(performance.now() - t);
    this.mic = await openMic();
    this.timings.mic_ms = since(began);

    const pc = new RTCPeerConnection({ iceServers: await iceServers() });
    this.pc = pc;
    this.channel = this.#openChannel(pc);  // before createOffer, so the offer carries an SCTP section
    pc.ontrack = (e) => this.listeners.onTrack(e.streams[0] ?? new MediaStream([e.track]));
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") this.#dropped("The connection to Alice was lost.");
    };
    for (const track of this.mic.getAudioTracks()) pc.addTrack(track, this.mic);

    const gatherStart = performance.now();
    await pc.setLocalDescription(await pc.createOffer());
    const complete = await iceGathered(pc, GATHER_TIMEOUT_MS);
    this.timings.ice_gathering_ms = since(gatherStart);
    this.timings.ice_gathering_complete = complete;

    const sent = performance.now();
    const answer = await postOffer({ sdp: pc.localDescription.sdp, type: "offer", ...(tone ? { mode: "tone" } : {}) });
    this.timings.offer_rtt_ms = since(sent);
    this.sessionId = answer.session_id;
    this.token = answer.token;

    const answered = performance.now();
    const iceConnected = this.#iceConnected(pc).then(() => { this.timings.ice_connected_ms = since(answered); });
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    await this.#channelOpen(OPEN_TIMEOUT_MS);
    await iceConnected;
    this.timings.dc_open_ms = since(answered);
    this.timings.connect_ms = since(began);
    this.open = true;
  }

  send(message) {
    if (this.channel?.readyState !== "open") return false;
    this.channel.send(JSON.stringify(message));
    return true;
  }

  /** Ends the call; tells the gateway unless the gateway already ended it. */
  hangup({ tellGateway = true } = {}) {
    this.closing = true;
    if (tellGateway && this.sessionId && this.token) {
      fetch(`/api/voice/sessions/${encodeURIComponent(this.sessionId)}`, {
        method: "DELETE", headers: { Authorization: `Bearer ${this.token}` }, keepalive: true,
      }).catch(() => {});  // best effort: the gateway also ends a session whose peer went away
    }
    this.channel?.close();
    this.pc?.close();
    for (const track of this.mic?.getTracks() ?? []) track.stop();
  }

  #openChannel(pc) {
    const channel = pc.createDataChannel("events");
    channel.onmessage = (e) => {
      let event;
      try { event = JSON.parse(e.data); } catch { return; }
      this.listeners.onEvent(event);
    };
    channel.onclose = () => this.#dropped("The connection to Alice dropped.");
    return channel;
  }

  #channelOpen(timeoutMs) {
    const channel = this.channel;
    if (channel.readyState === "open") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const fail = () => {
        clearTimeout(timer);
        reject(new CallError("timeout",
          "Reached the gateway, but no media path opened (a firewall or VPN may block it). Reconnect to retry."));
      };
      const timer = setTimeout(fail, timeoutMs);
      channel.addEventListener("open", () => { clearTimeout(timer); resolve(); }, { once: true });
      channel.addEventListener("close", fail, { once: true });
      this.pc.addEventListener("connectionstatechange", () => {
        if (this.pc.connectionState === "failed") fail();
      });
    });
  }

  #iceConnected(pc) {
    const ok = () => ["connected", "completed"].includes(pc.iceConnectionState);
    if (ok()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!ok()) return;
        pc.removeEventListener("iceconnectionstatechange", check);
        resolve();
      };
      pc.addEventListener("iceconnectionstatechange", check);
    });
  }

  #dropped(message) {
    if (this.closing || !this.open) return;
    this.closing = true;
    this.listeners.onDrop(message);
  }
}

// The gateway's STUN/TURN servers (none by default); without them a call still works on a LAN or loopback.
async function iceServers() {
  try {
    const response = await fetch("/api/webrtc/config");
    if (!response.ok) return [];
    return (await response.json()).ice_servers;
  } catch {
    return [];
  }
}
