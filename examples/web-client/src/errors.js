// The client's one error type: a code from protocol.md §7 beside the reason, and the original
// error kept as `cause` (ERR-5).

export const ErrorCode = Object.freeze({
  LIVEKIT_UNAVAILABLE: "LIVEKIT_UNAVAILABLE",
  CONNECTION_TIMEOUT: "CONNECTION_TIMEOUT",
  CONNECTION_FAILED: "CONNECTION_FAILED",
  MICROPHONE_DENIED: "MICROPHONE_DENIED",
  VOICE_NOT_SUPPORTED: "VOICE_NOT_SUPPORTED",
  AUTH_FAILED: "AUTH_FAILED",
  NOT_CONNECTED: "NOT_CONNECTED",
  VOICE_ALREADY_ACTIVE: "VOICE_ALREADY_ACTIVE",
  VOICE_NOT_ACTIVE: "VOICE_NOT_ACTIVE",
});

export class EstuaryError extends Error {
  constructor(code, message, cause) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "EstuaryError";
    this.code = code;
  }
}

/** The reason an error carries, for messages: its text plus an HTTP status when it has one. */
export function reasonOf(error) {
  if (!(error instanceof Error)) return String(error);
  const status = typeof error.status === "number" ? ` (HTTP ${error.status})` : "";
  return `${error.message || error.name}${status}`;
}
