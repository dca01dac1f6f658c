// The adapter estuary-browser-shim loads: the line protocol's ops on this project's web client.
//   estuary-conformance --estuary-client "cmd:estuary-browser-shim --module examples/web-client/adapter.mjs"

import { EstuaryClient } from "./src/index.js";

export const info = {
  name: "estuary-web-client",
  version: "0.1.0",
  capabilities: ["livekit_library", "unavailable_microphone", "observable_transport", "task_count", "reconnect_setting"],
};

const EVENTS = [
  "connected",
  "disconnected",
  "stt_response",
  "bot_response",
  "livekit_connected",
  "livekit_disconnected",
  "voice_timeout",
  "session_timeout",
];

/** One client from the harness's settings; its app events and warnings go to `hooks`. */
export function create(settings, hooks) {
  const client = new EstuaryClient({
    serverUrl: settings.server_url,
    apiKey: settings.api_key,
    characterId: settings.character_id,
    playerId: settings.player_id,
    voiceTransport: settings.voice_transport,
    tokenTimeout: settings.token_timeout,
    readyTimeout: settings.ready_timeout,
    connectTimeout: settings.connect_timeout,
    reconnect: settings.reconnect,
    logger: {
      info: (message) => hooks.log("INFO", message),
      warn: (message) => hooks.log("WARNING", message),
      error: (message) => hooks.log("ERROR", message),
    },
  });
  for (const name of EVENTS) client.on(name, (payload) => hooks.emit(name, payload));
  return {
    connect: () => client.connect(),
    start_voice: () => client.startVoice(),
    stop_voice: () => client.stopVoice(),
    toggle_mute: () => client.toggleMute(),
    send_text: ({ text }) => client.sendText(text),
    state: () => ({
      transport: client.transport,
      room: client.room,
      voice_active: client.isVoiceActive,
      muted: client.isMuted,
      input_open: client.inputOpen,
      tasks: client.taskCount,
    }),
    disconnect: () => client.disconnect(),
  };
}
