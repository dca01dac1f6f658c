// EstuaryClient: the browser SDK's facade. Socket.IO signalling on the /sdk namespace (CONN),
// transport selection (SEL), error codes (ERR) and the voice life cycle (LIFE) of protocol.md.

import { io } from "socket.io-client";
import { ErrorCode, EstuaryError, reasonOf } from "./errors.js";
import { LiveKitVoice } from "./livekit-voice.js";
import { Microphone } from "./microphone.js";
import { TaskSet } from "./tasks.js";
import { WebSocketVoice } from "./websocket-voice.js";

const TRANSPORTS = ["auto", "livekit", "websocket"];
const SESSION_TIMEOUT = 15_000; // CONN-4: session_info within 15 s
const RECONNECT_DELAYS = [250, 500, 1000, 2000, 4000]; // ms; then the client gives up
const SERVER_EVENTS = ["stt_response", "bot_response"]; // passed to the app as they come (LIFE-4)

/** A module that cannot be found at all, as browsers and bundlers word it (vs. one that fails to load). */
function isMissingModule(error) {
  const text = String(error?.message ?? "");
  return error?.code === "MODULE_NOT_FOUND" || /failed to resolve module specifier|cannot find module/i.test(text);
}

export class EstuaryClient {
  constructor({
    serverUrl,
    apiKey,
    characterId,
    playerId,
    voiceTransport = "auto",
    tokenTimeout = 10,
    readyTimeout = 5,
    connectTimeout = 10,
    reconnect = false,
    audioSampleRate = 24000,
    loadLiveKit = () => import("livekit-client"),
    logger = console,
  }) {
    Object.assign(this, { serverUrl, apiKey, characterId, playerId, voiceTransport, reconnect, audioSampleRate });
    this.timeouts = { tokenTimeout: tokenTimeout * 1000, readyTimeout: readyTimeout * 1000, connectTimeout: connectTimeout * 1000 };
    this.loadLiveKit = loadLiveKit;
    this.logger = logger;
    this.listeners = new Map();
    this.tasks = new TaskSet();
    this.socket = null;
    this.session = null;
    this.voice = null;
    this.transport = null; // the transport in use (SEL-6), null without voice
    this.starting = false;
    this.isMuted = false;
    this.microphone = null;
    this.leaving = false; // the app disconnected: no reconnect
    this.sessionEnded = false; // session_timeout: no reconnect (CONN-7)
  }

  // --- app events ---
  on(name, listener) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(listener);
    return () => this.listeners.get(name).delete(listener);
  }

  emit(name, payload = {}) {
    for (const listener of this.listeners.get(name) ?? []) {
      try {
        listener(payload);
      } catch (error) {
        this.logger.error(`a ${name} listener threw: ${reasonOf(error)}`);
      }
    }
  }

  // --- what the app can see ---
  get isConnected() {
    return this.session !== null && this.socket?.connected === true;
  }

  get isVoiceActive() {
    return this.voice !== null;
  }

  get room() {
    return this.voice instanceof LiveKitVoice ? this.voice.roomName : null;
  }

  get inputOpen() {
    return this.microphone?.isOpen === true;
  }

  /** Timers, pending waits and running voice loops: none may outlive a failed start (ERR-7). */
  get taskCount() {
    return this.tasks.size + (this.voice ? 1 : 0) + (this.socket ? 1 : 0);
  }

  // --- connection (CONN) ---
  async connect() {
    if (this.isConnected) return;
    this.leaving = false;
    this.sessionEnded = false;
    await this.openSession();
  }

  async openSession() {
    const socket = io(`${this.serverUrl.replace(/\/$/, "")}/sdk`, {
      transports: ["websocket"],
      reconnection: false, // CONN-1: the client runs its own reconnect
      forceNew: true,
    });
    this.socket = socket;
    try {
      const opened = this.tasks.waitFor(socket, ["connect", "connect_error"], SESSION_TIMEOUT, () => new EstuaryError(
        ErrorCode.CONNECTION_TIMEOUT, `no Socket.IO connection to ${this.serverUrl} within ${SESSION_TIMEOUT / 1000} s`));
      const [how, why] = await opened;
      if (how === "connect_error") {
        throw new EstuaryError(ErrorCode.CONNECTION_FAILED, `could not connect to ${this.serverUrl}: ${reasonOf(why)}`, why);
      }
      const answered = this.tasks.waitFor(socket, ["session_info", "auth_error"], SESSION_TIMEOUT, () => new EstuaryError(
        ErrorCode.CONNECTION_TIMEOUT, `no session_info within ${SESSION_TIMEOUT / 1000} s of authenticate`));
      socket.emit("authenticate", {
        api_key: this.apiKey,
        character_id: this.characterId,
        player_id: this.playerId,
        audio_sample_rate: this.audioSampleRate,
      }); // CONN-3, as the TypeScript SDK authenticates
      const [name, payload] = await answered;
      if (name === "auth_error") {
        throw new EstuaryError(ErrorCode.AUTH_FAILED, `the server refused the credentials: ${payload.error ?? "(no reason)"}`);
      }
      this.session = payload;
    } catch (error) {
      socket.removeAllListeners();
      socket.disconnect();
      this.socket = null;
      throw error;
    }
    for (const name of SERVER_EVENTS) socket.on(name, (payload) => this.emit(name, payload ?? {}));
    socket.on("voice_timeout", (payload) => this.onVoiceTimeout(payload ?? {}));
    socket.on("session_timeout", (payload) => {
      this.sessionEnded = true;
      this.emit("session_timeout", payload ?? {});
    });
    socket.on("disconnect", (reason) => this.onSocketGone(reason));
    this.emit("connected", this.session);
  }

  async onSocketGone(reason) {
    this.session = null;
    this.socket?.removeAllListeners();
    this.socket = null;
    await this.releaseVoice(false);
    this.emit("disconnected", { reason: String(reason) });
    if (this.reconnect && !this.leaving && !this.sessionEnded) this.scheduleReconnect(0);
  }

  scheduleReconnect(attempt) {
    if (attempt >= RECONNECT_DELAYS.length) {
      this.logger.warn(`gave up reconnecting to ${this.serverUrl} after ${attempt} attempts`);
      return;
    }
    this.cancelReconnect = this.tasks.timeout(async () => {
      this.cancelReconnect = null;
      if (this.leaving || this.sessionEnded) return;
      try {
        await this.openSession();
      } catch (error) {
        this.logger.warn(`reconnect attempt ${attempt + 1} failed: ${reasonOf(error)}`);
        this.scheduleReconnect(attempt + 1);
      }
    }, RECONNECT_DELAYS[attempt]);
  }

  async disconnect() {
    this.leaving = true;
    this.cancelReconnect?.();
    this.cancelReconnect = null;
    await this.releaseVoice(true);
    const socket = this.socket;
    if (socket) {
      socket.disconnect(); // its "disconnect" event releases the rest and tells the app
    }
  }

  // --- text ---
  async sendText(text) {
    if (!this.isConnected) throw new EstuaryError(ErrorCode.NOT_CONNECTED, "send_text() before connect()");
    this.socket.emit("text", { text });
  }

  // --- voice (SEL, ERR, LIFE) ---
  /** The transport this start uses and, for LiveKit, the loaded library (SEL-1..4). */
  async selectTransport() {
    const wanted = this.voiceTransport;
    if (!TRANSPORTS.includes(wanted)) {
      throw new EstuaryError(
        ErrorCode.VOICE_NOT_SUPPORTED,
        `voice_transport ${JSON.stringify(wanted)} is not supported; expected one of ${TRANSPORTS.join(", ")}`,
      );
    }
    if (wanted === "websocket") return ["websocket", null]; // SEL-3: LiveKit is never touched
    let library;
    try {
      library = await this.loadLiveKit();
    } catch (error) {
      if (!isMissingModule(error)) {
        throw new EstuaryError(ErrorCode.LIVEKIT_UNAVAILABLE, `livekit-client cannot be loaded: ${reasonOf(error)}`, error);
      }
      if (wanted === "livekit") {
        this.logger.warn("livekit-client is not installed; falling back to WebSocket voice");
      }
      return ["websocket", null];
    }
    return ["livekit", library];
  }

  async startVoice() {
    if (!this.isConnected) throw new EstuaryError(ErrorCode.NOT_CONNECTED, "start_voice() before connect()");
    if (this.voice || this.starting) throw new EstuaryError(ErrorCode.VOICE_ALREADY_ACTIVE, "voice is already active");
    this.starting = true;
    let voice = null;
    try {
      const [transport, library] = await this.selectTransport();
      this.microphone = await Microphone.open();
      voice =
        transport === "livekit"
          ? new LiveKitVoice(library, this.socket, this.microphone, () => this.onRoomEnded())
          : new WebSocketVoice(this.socket, this.microphone, this.audioSampleRate, () => this.isMuted);
      if (transport === "livekit") {
        await voice.start(this.tasks, this.timeouts);
        if (this.isMuted) await voice.setMuted(true);
      } else {
        await voice.start(this.tasks, this.timeouts.tokenTimeout);
      }
      this.voice = voice;
      this.transport = transport;
      if (transport === "livekit") this.emit("livekit_connected", { room: voice.roomName });
      return transport;
    } catch (error) {
      // ERR-7: nothing of the failed start stays (room, microphone, listeners, timers)
      if (voice) await voice.close(true).catch(() => {});
      this.microphone?.close();
      this.microphone = null;
      throw error;
    } finally {
      this.starting = false;
    }
  }

  async stopVoice() {
    if (!this.voice) throw new EstuaryError(ErrorCode.VOICE_NOT_ACTIVE, "stop_voice() with no voice active");
    await this.releaseVoice(true);
  }

  /** Voice off: the room left or capture stopped, the microphone closed; `notify` tells the server. */
  async releaseVoice(notify) {
    const voice = this.voice;
    this.voice = null;
    this.transport = null;
    if (voice) await voice.close(notify && this.socket?.connected === true);
    this.microphone?.close();
    this.microphone = null;
  }

  onRoomEnded() {
    this.emit("livekit_disconnected", {}); // LIFE-3: once per room that reached livekit_ready
    if (this.voice instanceof LiveKitVoice) this.releaseVoice(false); // the server or the SFU ended it
  }

  async onVoiceTimeout(payload) {
    await this.releaseVoice(false); // CONN-7: the server already released voice; text keeps working
    this.emit("voice_timeout", payload);
  }

  async toggleMute() {
    this.isMuted = !this.isMuted;
    if (this.voice instanceof LiveKitVoice) await this.voice.setMuted(this.isMuted);
    return this.isMuted;
  }
}
