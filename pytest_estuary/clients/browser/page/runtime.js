// estuary-browser-shim's side in the page: loads the user's adapter module, runs the line
// protocol's ops on it and posts every reply, event and log line through one binding, in order.
const send = (message) => window.__estuarySend(JSON.stringify(message));
const OPS = ["connect", "start_voice", "stop_voice", "toggle_mute", "send_text", "state", "disconnect"];

let module = null;
let adapter = null;

function describe(error) {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  try {
    return `a thrown ${typeof error}: ${JSON.stringify(error)}`;
  } catch {
    return `a thrown ${typeof error}`;
  }
}

/** An error the adapter threw as the reply's `error` (its `code` only when it is a string). */
function failure(error) {
  const cause = error?.cause;
  return {
    code: typeof error?.code === "string" ? error.code : null,
    message: String(error?.message ?? error) || String(error?.name ?? "error"),
    raw: (error?.name && error.name !== "Error" ? error.name : error?.constructor?.name) || typeof error,
    cause: cause === undefined || cause === null ? null : describe(cause),
  };
}

window.__estuaryShim = {
  get adapter() {
    return adapter;
  },

  /** Import the bundle; the adapter's info, or throws saying what is wrong with the module. */
  async load(url) {
    module = await import(url);
    if (typeof module.create !== "function") {
      const found = Object.keys(module).join(", ") || "nothing";
      throw new Error(`it does not export the adapter: expected a function create(settings, hooks); it exports ${found}`);
    }
    const info = module.info ?? {};
    return {
      name: typeof info.name === "string" ? info.name : null,
      version: typeof info.version === "string" ? info.version : null,
      capabilities: Array.isArray(info.capabilities) ? info.capabilities.map(String) : [],
    };
  },

  run(id, op, request) {
    this.perform(op, request).then(
      (result) => send({ id, ok: true, result: result === undefined ? null : result }),
      (error) => {
        if (error?.fatal) send({ fatal: { id, op, error: error.fatal } });
        else if (typeof error?.unsupported === "string") send({ id, ok: false, unsupported: error.unsupported });
        else send({ id, ok: false, error: failure(error) });
      },
    );
  },

  async perform(op, request) {
    if (op === "create") return this.create(request.settings);
    if (op === "say") return void window.__estuaryMedia.say(request.pcm16, request.sample_rate);
    if (adapter === null) throw new Error(`'${op}' before 'create': the shim has no client yet`);
    if (!OPS.includes(op) || typeof adapter[op] !== "function") {
      throw { unsupported: `the adapter has no op '${op}'` };
    }
    const result = await adapter[op](request);
    if (op === "state") return { ...result, speaker: window.__estuaryMedia.speaker() };
    return result;
  },

  async create(settings) {
    if (adapter !== null) throw new Error("'create' twice: one page serves one client");
    window.__estuaryMedia.setUnavailable(settings.microphone === "unavailable");
    const hooks = {
      emit: (name, payload) => send({ event: String(name), payload: payload ?? {} }),
      log: (level, message) => send({ log: { level: String(level), message: String(message) } }),
    };
    let made;
    try {
      made = await module.create(settings, hooks);
    } catch (error) {
      if (typeof error?.code === "string" || typeof error?.unsupported === "string") throw error;
      throw { fatal: `create() threw ${describe(error)}${error?.stack ? `\n${error.stack}` : ""}` };
    }
    if (made === null || typeof made !== "object") {
      throw { fatal: `create() returned ${made === null ? "null" : typeof made}; expected an object with the ops` };
    }
    adapter = made;
    return null;
  },
};
