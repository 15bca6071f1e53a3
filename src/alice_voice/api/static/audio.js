// WebAudio: the assistant's voice (MediaStreamSource -> Gain -> Analyser -> speakers) and the mic's level.

const DUCKED_GAIN = 0.3;   // about -10 dB: Alice stays audible but gives way while the user talks
const DUCK_TIME_S = 0.04;
const RESTORE_TIME_S = 0.15;

function level(analyser, buffer) {
  if (!analyser) return { rms: 0, peak: 0 };
  analyser.getFloatTimeDomainData(buffer);
  let sum = 0;
  let peak = 0;
  for (const v of buffer) {
    sum += v * v;
    peak = Math.max(peak, Math.abs(v));
  }
  return { rms: Math.sqrt(sum / buffer.length), peak };
}

/** One per call; create it inside the click handler so browsers let it start. */
export class AudioGraph {
  constructor() {
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    this.gain = null;
    this.remote = null;
    this.mic = null;
    this.buffer = new Float32Array(2048);
    this.ducked = false;
  }

  resume() {
    return this.ctx.state === "suspended" ? this.ctx.resume() : Promise.resolve();
  }

  /**
   * Chromium delivers a remote WebRTC stream to WebAudio only while a media element also plays it, so the
   * element is attached but muted: the speakers are fed by the graph, where the gain can duck.
   */
  playRemote(stream, element) {
    element.srcObject = stream;
    element.muted = true;
    element.play().catch(() => {});
    const source = this.ctx.createMediaStreamSource(stream);
    this.gain = this.ctx.createGain();
    this.gain.gain.value = this.ducked ? DUCKED_GAIN : 1;
    this.remote = this.ctx.createAnalyser();
    this.remote.fftSize = this.buffer.length;
    source.connect(this.gain).connect(this.remote).connect(this.ctx.destination);
    this.resume();
  }

  watchMic(stream) {
    const source = this.ctx.createMediaStreamSource(stream);
    this.mic = this.ctx.createAnalyser();
    this.mic.fftSize = 1024;
    source.connect(this.mic);  // measured only, never played back
  }

  duck(on) {
    this.ducked = on;
    if (!this.gain) return;
    const now = this.ctx.currentTime;
    this.gain.gain.cancelScheduledValues(now);
    this.gain.gain.setTargetAtTime(on ? DUCKED_GAIN : 1, now, on ? DUCK_TIME_S : RESTORE_TIME_S);
  }

  gainValue() {
    return this.gain ? this.gain.gain.value : 1;
  }

  remoteLevel() {
    return level(this.remote, this.buffer);
  }

  micLevel() {
    return level(this.mic, this.buffer.subarray(0, 1024));
  }

  close() {
    this.ctx.close().catch(() => {});
  }
}
