// estuary-browser-shim's microphone and speaker, installed before any page script runs.
// getUserMedia hands out a track of a WebAudio MediaStream that `say` feeds (silence otherwise),
// so a client publishes real audio; every sound the page plays also reaches an analyser.
(() => {
  const RATE = 48000;
  let context = null;
  let microphone = null;
  let playhead = 0;
  let unavailable = false;
  const analysers = new Map(); // AudioContext → AnalyserNode
  const speaker = { peakRms: 0, loudMs: 0 };
  const LOUD = 0.01; // RMS above this counts as sound (speech-like bot audio is ~0.1)

  function ours() {
    if (context === null) {
      context = new AudioContext({ sampleRate: RATE });
      microphone = context.createMediaStreamDestination();
    }
    return context;
  }

  function analyserOf(ctx) {
    let analyser = analysers.get(ctx);
    if (!analyser) {
      analyser = ctx.createAnalyser();
      analyser.fftSize = 2048;
      const silent = ctx.createGain();
      silent.gain.value = 0;
      connect.call(analyser, silent);
      connect.call(silent, ctx.destination);
      analysers.set(ctx, analyser);
    }
    return analyser;
  }

  // Whatever a page connects to a context's speakers is measured too.
  const connect = AudioNode.prototype.connect;
  AudioNode.prototype.connect = function (target, ...rest) {
    const result = connect.call(this, target, ...rest);
    if (target instanceof AudioDestinationNode && this.context !== context) {
      connect.call(this, analyserOf(this.context));
    }
    return result;
  };

  // A MediaStream played by an <audio> element (livekit-client's track.attach()) is measured.
  const srcObject = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "srcObject");
  Object.defineProperty(HTMLMediaElement.prototype, "srcObject", {
    configurable: true,
    get() {
      return srcObject.get.call(this);
    },
    set(stream) {
      srcObject.set.call(this, stream);
      if (stream instanceof MediaStream && stream.getAudioTracks().length > 0) {
        const ctx = ours();
        connect.call(ctx.createMediaStreamSource(stream), analyserOf(ctx));
      }
    },
  });

  const samples = new Float32Array(2048);
  setInterval(() => {
    let loudest = 0;
    for (const analyser of analysers.values()) {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const value of samples) sum += value * value;
      loudest = Math.max(loudest, Math.sqrt(sum / samples.length));
    }
    speaker.peakRms = Math.max(speaker.peakRms, loudest);
    if (loudest > LOUD) speaker.loudMs += 50;
  }, 50);

  const original = navigator.mediaDevices?.getUserMedia?.bind(navigator.mediaDevices);
  if (navigator.mediaDevices) {
    navigator.mediaDevices.getUserMedia = async (constraints = {}) => {
      if (!constraints.audio) {
        if (original) return original(constraints);
        throw new DOMException("estuary-browser-shim has no camera", "NotFoundError");
      }
      if (unavailable) {
        throw new DOMException(
          'Permission denied (estuary-browser-shim: settings.microphone is "unavailable")',
          "NotAllowedError",
        );
      }
      const ctx = ours();
      await ctx.resume();
      return new MediaStream([microphone.stream.getAudioTracks()[0].clone()]);
    };
  }

  window.__estuaryMedia = {
    setUnavailable(value) {
      unavailable = Boolean(value);
    },
    /** Queue base64 PCM16 (mono, little-endian) on the microphone, after what is still playing. */
    say(base64, rate) {
      const ctx = ours();
      const raw = atob(base64);
      const count = Math.floor(raw.length / 2);
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        let value = raw.charCodeAt(2 * i) | (raw.charCodeAt(2 * i + 1) << 8);
        if (value >= 0x8000) value -= 0x10000;
        data[i] = value / 0x8000;
      }
      if (count === 0) return 0;
      const buffer = ctx.createBuffer(1, count, rate);
      buffer.copyToChannel(data, 0);
      const source = ctx.createBufferSource();
      source.buffer = buffer;
      connect.call(source, microphone);
      playhead = Math.max(playhead, ctx.currentTime);
      source.start(playhead);
      playhead += buffer.duration;
      return buffer.duration;
    },
    speaker() {
      return { peak_rms: speaker.peakRms, loud_seconds: speaker.loudMs / 1000 };
    },
  };
})();
