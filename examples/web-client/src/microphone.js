// The microphone: getUserMedia, as every browser app opens it. Failing to open it is
// MICROPHONE_DENIED (ERR-4) with the browser's reason.

import { ErrorCode, EstuaryError, reasonOf } from "./errors.js";

export class Microphone {
  constructor(stream) {
    this.stream = stream;
    this.track = stream.getAudioTracks()[0];
  }

  static async open() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (error) {
      throw new EstuaryError(ErrorCode.MICROPHONE_DENIED, `the microphone cannot be opened: ${reasonOf(error)}`, error);
    }
    if (stream.getAudioTracks().length === 0) {
      throw new EstuaryError(ErrorCode.MICROPHONE_DENIED, "the microphone gave no audio track");
    }
    return new Microphone(stream);
  }

  get isOpen() {
    return this.track.readyState === "live";
  }

  close() {
    for (const track of this.stream.getTracks()) track.stop();
  }
}
