// The conversation as chat bubbles: user turns, Alice's streamed replies, cuts, backchannels, tool calls,
// per-turn latencies, notes.

// [timing key, chip label, what it measures]; the first is the number a caller feels.
const METRICS = [
  ["first_audio_ms", "reply", "from the end of your speech to Alice's first audio"],
  ["barge_in_ms", "barge-in", "from your first word to Alice falling silent"],
  ["end_of_turn_ms", "end of turn", "from the end of your speech to the decision that you had finished"],
  ["first_partial_ms", "first words", "from the start of your speech to the first words on screen"],
  ["final_after_speech_ms", "final text", "from the end of your speech to the final transcript"],
  ["agent_first_text_ms", "agent", "from the start of the reply to the agent's first words"],
  ["tts_first_audio_ms", "voice", "from the start of the reply to the first synthesized audio"],
];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Splits a partial transcript into the part the recognizer will not revise and the rest. */
export function splitPartial(text, stable) {
  return stable && text.startsWith(stable) ? [stable, text.slice(stable.length)] : ["", text];
}

export class ConversationView {
  constructor({ scroller, list, partial, empty }) {
    Object.assign(this, { scroller, list, partialEl: partial, empty });
    this.reply = null;      // the assistant row receiving agent.text deltas
    this.lastTurnRow = null; // where the next turn.metrics goes
    this.typedTurn = false;
  }

  clear() {
    this.list.replaceChildren();
    this.clearPartial();
    this.reply = this.lastTurnRow = null;
    this.empty.hidden = false;
  }

  partial(text, stable) {
    const [fixed, rest] = splitPartial(text, stable);
    this.partialEl.querySelector(".stable").textContent = fixed;
    this.partialEl.querySelector(".unstable").textContent = rest;
    this.partialEl.hidden = false;
    this.empty.hidden = true;
    this.#scroll();
  }

  clearPartial() {
    this.partialEl.hidden = true;
    this.partialEl.querySelector(".stable").textContent = "";
    this.partialEl.querySelector(".unstable").textContent = "";
  }

  userTurn(text, { typed = false } = {}) {
    this.clearPartial();
    this.#closeReply();
    const row = this.#row("user");
    const bubble = row.appendChild(el("p", "bubble", text));
    if (typed) bubble.dataset.typed = "true";
    this.lastTurnRow = row;
    this.typedTurn = typed;
  }

  assistantDelta(delta) {
    const bubble = this.#replyRow().querySelector(".bubble");
    bubble.textContent += delta;
    this.#scroll();
  }

  /** The reply being written, begun if need be (a tool call can come before its first word). */
  #replyRow() {
    if (!this.reply) {
      this.reply = this.#row("assistant streaming");
      this.reply.setAttribute("aria-busy", "true");  // read the reply once it is complete, not word by word
      this.reply.appendChild(el("p", "bubble"));
      this.lastTurnRow = this.reply;
    }
    return this.reply;
  }

  /** tts.stopped: `done` closes the reply; a cut shows what was heard and strikes the rest. */
  replyStopped(reason, heard) {
    const row = this.reply ?? this.lastTurnRow;
    this.#closeReply();
    if (!row?.classList.contains("assistant") || !["barge_in", "stop_request"].includes(reason)) return;
    row.classList.add("interrupted");
    row.dataset.reason = reason;
    const bubble = row.querySelector(".bubble");
    const full = bubble.textContent;
    const spoken = heard ?? "";
    const rest = full.startsWith(spoken) ? full.slice(spoken.length) : "";
    bubble.replaceChildren(el("span", "heard", spoken));
    if (rest) bubble.appendChild(el("span", "unheard", rest));
    const label = reason === "barge_in" ? "Interrupted — you spoke" : "Stopped";
    const badge = el("span", "badge", label);
    badge.setAttribute("aria-label", `${label}; Alice said: ${spoken || "nothing"}`);
    row.insertBefore(badge, bubble.nextSibling);
    this.#scroll();
  }

  /**
   * backchannel: the caller acknowledged ("mm-hmm") over the reply, which went on. Not a turn: a small muted
   * note under the reply that was playing (or, with no reply on screen, a discreet row of its own).
   */
  backchannel(text, durationMs) {
    const said = text.trim();
    const chip = el("span", "backchannel");
    chip.append(el("span", "sr-only", "You, while Alice spoke: "), said ? `“${said}”` : "…");
    chip.title = "You acknowledged while Alice spoke; she went on";
    if (Number.isFinite(durationMs)) chip.dataset.durationMs = String(durationMs);
    const row = this.reply ?? (this.lastTurnRow?.classList.contains("assistant") ? this.lastTurnRow : null);
    if (row) {
      let notes = row.querySelector(":scope > .backchannels");
      if (!notes) {
        notes = el("p", "backchannels");
        const bubble = row.querySelector(":scope > .bubble");
        row.insertBefore(notes, bubble ? bubble.nextSibling : null);
      }
      notes.appendChild(chip);
    } else {
      this.#row("note backchannel-note").appendChild(el("p")).appendChild(chip);
    }
    this.#scroll();
    return chip;
  }

  /** tool.started / tool.finished: a chip per call under the reply (name, then its time and outcome). */
  toolStarted(callId, name) {
    const chip = el("span", "tool running", `${name}…`);
    chip.title = `Alice is using ${name}`;
    chip.dataset.callId = callId;
    const row = this.#replyRow();
    let tools = row.querySelector(":scope > .tools");
    if (!tools) tools = row.appendChild(el("p", "tools"));
    tools.appendChild(chip);
    this.#scroll();
    return chip;
  }

  toolFinished(callId, name, outcome, durationMs) {
    const chip = [...this.list.querySelectorAll(".tool")].find((c) => c.dataset.callId === callId)
      ?? this.toolStarted(callId, name);
    chip.classList.remove("running");
    chip.classList.add(outcome === "ok" ? "ok" : "failed");
    chip.dataset.outcome = outcome;
    chip.textContent = `${name} ${Math.round(durationMs)} ms${outcome === "ok" ? "" : ` (${outcome})`}`;
    chip.title = `${name}: ${outcome}, ${Math.round(durationMs)} ms`;
    return chip;
  }

  metrics(turn, timings) {
    // A typed turn has no end of speech to detect: its end-of-turn time says nothing.
    const items = METRICS.filter(([key]) => Number.isFinite(timings[key]) &&
                                            !(this.typedTurn && key === "end_of_turn_ms"));
    if (!items.length) return;
    const list = el("ul", "metrics");
    list.setAttribute("aria-label", `Turn ${turn} latencies`);
    list.dataset.turn = String(turn);
    for (const [key, label, meaning] of items) {
      const item = list.appendChild(el("li"));
      item.dataset.metric = key;
      item.title = meaning;
      item.append(`${label} `, el("b", "", `${Math.round(timings[key])} ms`));
    }
    const row = this.lastTurnRow ?? this.#row("note");
    row.appendChild(list);
    this.#scroll();
  }

  note(text, { error = false } = {}) {
    const row = this.#row(error ? "note error" : "note");
    row.appendChild(el("p", "", text));
    return row;
  }

  #closeReply() {
    this.reply?.classList.remove("streaming");
    this.reply?.removeAttribute("aria-busy");
    this.reply = null;
  }

  #row(kind) {
    this.empty.hidden = true;
    const row = el("li", `row ${kind}`);
    this.list.appendChild(row);
    this.#scroll();
    return row;
  }

  #scroll() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }
}
