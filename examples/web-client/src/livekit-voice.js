// LiveKit voice (protocol.md §4, the seed page's six steps) on livekit-client, loaded by the
// caller: token, room connect, microphone published as "microphone", livekit_join, livekit_ready.

import { ErrorCode, EstuaryError, reasonOf } from "./errors.js";

export class LiveKitVoice {
  /**
   * `lk` is the loaded livekit-client module; `onEnded` is called once when a room that reached
   * livekit_ready ends for any reason (LIFE-3).
   */
  constructor(lk, socket, microphone, onEnded) {
    this.lk = lk;
    this.socket = socket;
    this.microphone = microphone;
    this.onEnded = onEnded;
    this.room = null;
    this.roomName = null;
    this.track = null;
    this.ready = false;
    this.tokenReceived = false;
    this.players = [];
  }

  async start(tasks, { tokenTimeout, connectTimeout, readyTimeout }) {
    const tokenReply = tasks.waitFor(
      this.socket,
      ["livekit_token", "livekit_error"],
      tokenTimeout,
      () => new EstuaryError(ErrorCode.CONNECTION_TIMEOUT, `no livekit_token reply within ${tokenTimeout / 1000} s`),
    );
    this.socket.emit("livekit_token", null);
    const [name, reply] = await tokenReply;
    if (name === "livekit_error") {
      throw new EstuaryError(ErrorCode.CONNECTION_FAILED, `the server refused LiveKit voice: ${reply.error ?? "(no reason)"}`);
    }
    this.tokenReceived = true;
    const { token, url, room: expected } = reply;
    if (typeof token !== "string" || typeof url !== "string" || typeof expected !== "string") {
      throw new EstuaryError(ErrorCode.CONNECTION_FAILED, "livekit_token without a string token, url and room");
    }
    await this.connect(tasks, url, token, connectTimeout);
    const joined = this.room.name;
    if (joined !== expected) {
      throw new EstuaryError(
        ErrorCode.CONNECTION_FAILED,
        `the LiveKit token joined room '${joined}' but the server named room '${expected}'`,
      );
    }
    await this.publish();
    const readyReply = tasks.waitFor(
      this.socket,
      ["livekit_ready", "livekit_error"],
      readyTimeout,
      () => new EstuaryError(ErrorCode.CONNECTION_TIMEOUT, `no livekit_ready within ${readyTimeout / 1000} s of livekit_join`),
    );
    this.socket.emit("livekit_join", { room: expected });
    const [answer, ready] = await readyReply;
    if (answer === "livekit_error") {
      throw new EstuaryError(ErrorCode.CONNECTION_FAILED, `the server refused LiveKit voice: ${ready.error ?? "(no reason)"}`);
    }
    if (ready.room !== expected) {
      throw new EstuaryError(
        ErrorCode.CONNECTION_FAILED,
        `livekit_ready named room '${ready.room}' but the client joined room '${expected}'`,
      );
    }
    this.roomName = expected;
    this.ready = true;
    return expected;
  }

  async connect(tasks, url, token, timeout) {
    const { Room, RoomEvent } = this.lk;
    const room = new Room({ adaptiveStream: false, dynacast: false });
    this.room = room;
    room.on(RoomEvent.TrackSubscribed, (track) => {
      if (track.kind === "audio") this.players.push(track.attach()); // the bot's voice, played
    });
    room.on(RoomEvent.Disconnected, () => this.ended());
    let cancelTimer = () => {};
    const timedOut = new Promise((_, reject) => {
      cancelTimer = tasks.timeout(
        () => reject(new EstuaryError(ErrorCode.CONNECTION_FAILED, `the LiveKit room did not answer within ${timeout / 1000} s`)),
        timeout,
      );
    });
    try {
      await Promise.race([
        room.connect(url, token, { autoSubscribe: true, websocketTimeout: timeout, peerConnectionTimeout: timeout }),
        timedOut,
      ]);
    } catch (error) {
      if (error instanceof EstuaryError) throw error;
      throw new EstuaryError(ErrorCode.CONNECTION_FAILED, `could not connect to the LiveKit room: ${reasonOf(error)}`, error);
    } finally {
      cancelTimer();
    }
  }

  async publish() {
    const { LocalAudioTrack, Track } = this.lk;
    this.track = new LocalAudioTrack(this.microphone.track, undefined, true);
    try {
      await this.room.localParticipant.publishTrack(this.track, { name: "microphone", source: Track.Source.Microphone });
    } catch (error) {
      throw new EstuaryError(ErrorCode.CONNECTION_FAILED, `could not publish the microphone: ${reasonOf(error)}`, error);
    }
  }

  async setMuted(muted) {
    if (!this.track) return;
    if (muted) await this.track.mute();
    else await this.track.unmute();
  }

  ended() {
    for (const player of this.players.splice(0)) player.remove();
    const wasReady = this.ready;
    this.ready = false;
    if (wasReady) this.onEnded();
  }

  /** Leave the room; `notify` also tells the server (livekit_leave). */
  async close(notify) {
    if (notify && this.tokenReceived) this.socket.emit("livekit_leave", null);
    if (this.room) await this.room.disconnect();
    this.ended();
  }
}
