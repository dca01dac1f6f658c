// WebSocket voice (protocol.md §5): the microphone as PCM16 in `stream_audio`, the bot's
// `bot_voice` chunks played through WebAudio.

import { ErrorCode, EstuaryError } from "./errors.js";

const FRAME = 2048; // samples per capture callback at the context's rate (~43 ms at 48 kHz)

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** Float samples at `from` Hz → little-endian PCM16 at `to` Hz (linear interpolation). */
export function pcm16(samples, from, to) {
  const count = Math.floor((samples.length * to) / from);
  const out = new DataView(new ArrayBuffer(count * 2));
  for (let i = 0; i < count; i++) {
    const at = (i * from) / to;
    const left = Math.floor(at);
    const right = Math.min(left + 1, samples.length - 1);
    const value = samples[left] + (samples[right] - samples[left]) * (at - left);
    out.setInt16(i * 2, Math.max(-1, Math.min(1, value)) * 0x7fff, true);
  }
  return new Uint8Array(out.buffer);
}

export class WebSocketVoice {
  constructor(socket, microphone, sampleRate, isMuted) {
    this.socket = socket;
    this.microphone = microphone;
    this.sampleRate = sampleRate;
    this.isMuted = isMuted;
    this.context = null;
    this.playhead = 0;
    this.onBotVoice = (payload) => this.play(payload ?? {});
  }

  /** start_voice → voice_started (WS-1) within `timeout` ms, then capture. */
  async start(tasks, timeout) {
    const reply = tasks.waitFor(
      this.socket,
      ["voice_started", "voice_error"],
      timeout,
      () => new EstuaryError(ErrorCode.CONNECTION_TIMEOUT, `no voice_started within ${timeout / 1000} s of start_voice`),
    );
    this.socket.emit("start_voice", null);
    const [name, payload] = await reply;
    if (name === "voice_error") {
      throw new EstuaryError(ErrorCode.CONNECTION_FAILED, `the server refused WebSocket voice: ${payload.error ?? "(no reason)"}`);
    }
    this.capture();
  }

  capture() {
    const context = new AudioContext();
    this.context = context;
    const source = context.createMediaStreamSource(this.microphone.stream);
    const processor = context.createScriptProcessor(FRAME, 1, 1);
    const silent = context.createGain();
    silent.gain.value = 0; // the processor only runs when connected to the destination
    processor.onaudioprocess = (event) => {
      if (this.isMuted()) return;
      const bytes = pcm16(event.inputBuffer.getChannelData(0), context.sampleRate, this.sampleRate);
      this.socket.emit("stream_audio", { audio: toBase64(bytes) });
    };
    source.connect(processor).connect(silent).connect(context.destination);
    this.socket.on("bot_voice", this.onBotVoice);
  }

  play({ audio, sample_rate: rate }) {
    if (!this.context || typeof audio !== "string" || !audio) return;
    const bytes = fromBase64(audio);
    const view = new DataView(bytes.buffer, 0, bytes.length - (bytes.length % 2));
    const samples = new Float32Array(view.byteLength / 2);
    for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(i * 2, true) / 0x8000;
    if (samples.length === 0) return;
    const buffer = this.context.createBuffer(1, samples.length, rate || this.sampleRate);
    buffer.copyToChannel(samples, 0);
    const node = this.context.createBufferSource();
    node.buffer = buffer;
    node.connect(this.context.destination);
    this.playhead = Math.max(this.playhead, this.context.currentTime);
    node.start(this.playhead);
    this.playhead += buffer.duration;
  }

  /** Capture and playback off; `notify` also tells the server (WS-3's stop_voice). */
  close(notify) {
    this.socket.off("bot_voice", this.onBotVoice);
    if (notify) this.socket.emit("stop_voice", null);
    if (this.context) {
      this.context.close().catch(() => {});
      this.context = null;
    }
  }
}
