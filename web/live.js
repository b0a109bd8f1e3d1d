// Live captions: the microphone's audio is transcribed again and again while you speak.
//
// Whisper reads a whole window at once; it has no streaming mode. So we keep a buffer of the
// audio since the last cut, and about once a second run the model on all of it. Each run gives a
// hypothesis that may still change at its end (the last word is often cut in the middle). The
// commit policy is LocalAgreement-2 (whisper_streaming, Machacek et al. 2023): a word is
// committed when two successive hypotheses agree on it and on everything before it. Committed
// words are never taken back; the rest is shown apart as the tentative tail.
//
// Three more rules keep it honest and fast:
// - an energy gate: the model only runs on a buffer that holds speech, so silence adds nothing;
// - an endpoint: after a pause the buffer is transcribed once more and all of it committed, then
//   dropped; the buffer is also cut at its quietest point when it grows past maxBufferSeconds,
//   so run time (which grows with the text) stays flat in a long session;
// - Whisper's own no-speech rule (no_speech_prob > 0.6 and avg_logprob < -1): a run that says
//   "nothing was said" gives an empty hypothesis, never invented words.
//
// Nothing here touches the page: live.html wires it to buttons and to the microphone.

export const SAMPLE_RATE = 16000;

// ---- calling the model -------------------------------------------------------------------------

// A session in worker.js, spoken to by messages: the page's own thread stays free.
export class ModelWorker {
  constructor(url = new URL('./worker.js', import.meta.url)) {
    this.worker = new Worker(url, { type: 'module' });
    this.pending = new Map();
    this.nextId = 1;
    this.worker.onmessage = ({ data }) => {
      const { resolve, reject } = this.pending.get(data.id);
      this.pending.delete(data.id);
      if (data.error) reject(new Error(data.error));
      else resolve(data);
    };
    this.worker.onerror = (event) => {
      for (const { reject } of this.pending.values()) reject(new Error(event.message || 'the worker failed'));
      this.pending.clear();
    };
  }

  request(message, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...message }, transfer);
    });
  }

  async load(url, { numThreads = 2, options = {} } = {}) {
    this.info = await this.request({ type: 'load', url, numThreads, options });
    this.inputs = new Map(this.info.inputs.map((m) => [m.name, m]));
    return this.info;
  }

  run(feeds) {
    return this.request({ type: 'run', feeds });
  }

  terminate() {
    this.worker.terminate();
  }
}

const INT_TYPES = new Set(['int64', 'int32', 'bool']);

function scalar(meta, value) {
  const type = meta?.type || (Number.isInteger(value) ? 'int64' : 'float32');
  const shape = Array.isArray(meta?.shape) && meta.shape.length === 1 ? [1] : [];
  if (type === 'int64') return { type, data: BigInt64Array.from([BigInt(value)]), dims: shape };
  if (type === 'int32') return { type, data: Int32Array.from([value]), dims: shape };
  if (type === 'bool') return { type, data: Uint8Array.from([value ? 1 : 0]), dims: shape };
  return { type: 'float32', data: Float32Array.from([value]), dims: shape };
}

// The model's inputs, filled by name. `audio` is the only one every version of the one-file model
// has; the others are given only when the file has them, so an older or newer file works as well:
//   language, task   token ids (the file's defaults otherwise: English, transcribe)
//   prompt           the text before this window, as tokens, int64 [n] (`previous` in older files)
//   timestamps, temperature, seed   0 = plain greedy decoding, reproducible
export function feedsFor(inputs, audio, { language, task, previous = [], timestamps = 0, temperature = 0, seed = 0 } = {}) {
  const feeds = { audio: { type: 'float32', data: audio, dims: [audio.length] } };
  const given = { language, task, timestamps, temperature, seed };
  for (const [name, value] of Object.entries(given)) {
    if (inputs.has(name) && value !== undefined && value !== null) feeds[name] = scalar(inputs.get(name), value);
  }
  for (const name of ['prompt', 'previous']) { // the prompt's name in the current file, and in older ones
    if (inputs.has(name)) feeds[name] = { type: 'int64', data: BigInt64Array.from(previous, BigInt), dims: [previous.length] };
  }
  return feeds;
}

// One run of the model on `audio`: the text and what the safeguards need, whatever outputs the file has.
export async function transcribeWindow(model, audio, options = {}) {
  const started = performance.now();
  const { outputs, seconds } = await model.run(feedsFor(model.inputs, audio, options));
  const first = (name) => (outputs[name] ? Number(outputs[name].data[0]) : null);
  return {
    text: outputs.text ? new TextDecoder('utf-8').decode(outputs.text.data) : '',
    tokens: outputs.tokens ? Array.from(outputs.tokens.data, Number) : [],
    tokenSeconds: outputs.token_seconds ? Array.from(outputs.token_seconds.data, Number) : null,
    noSpeechProb: first('no_speech_prob'),
    avgLogprob: first('avg_logprob'),
    seconds, // inside session.run
    wallSeconds: (performance.now() - started) / 1000, // with the trip to the worker and back
  };
}

// ---- the commit policy ---------------------------------------------------------------------------

// Words compare without case and punctuation: "country," and "country." are the same word.
export const wordKey = (word) => word.toLowerCase().replace(/[^\p{L}\p{N}']/gu, '');
export const splitWords = (text) => text.split(/\s+/).filter((w) => wordKey(w) !== '');

// LocalAgreement-2: how many leading words two hypotheses share.
export function agreedLength(a, b) {
  let n = 0;
  while (n < a.length && n < b.length && wordKey(a[n]) === wordKey(b[n])) n++;
  return n;
}

// ---- the voice-activity gate -----------------------------------------------------------------

// Energy in 30 ms frames against a noise floor that follows the quietest recent frames: speech is
// at least `margin` dB above the floor and above `minDbfs`. A steady hiss or hum raises the floor
// within seconds and is then no speech; a short `hangover` keeps word endings inside speech. The
// floor never goes below `lowestFloor` (no real microphone is quieter), so it need not climb far.
export class EnergyGate {
  constructor({ frameSeconds = 0.03, margin = 12, minDbfs = -50, riseDbPerSecond = 3, hangover = 0.3,
                lowestFloor = -70 } = {}) {  // prettier-ignore
    this.frame = Math.round(frameSeconds * SAMPLE_RATE);
    Object.assign(this, { margin, minDbfs, hangoverFrames: Math.ceil(hangover / frameSeconds) });
    this.rise = riseDbPerSecond * frameSeconds;
    this.lowestFloor = lowestFloor;
    this.floor = lowestFloor;
    this.pending = new Float32Array(0);
    this.samples = 0; // samples judged so far
    this.quietFrames = Infinity;
    this.firstSpeech = null; // sample index of the first speech frame
    this.lastSpeechEnd = -Infinity; // sample index where the latest speech (with hangover) ends
    this.frameDb = []; // per frame since the start, for finding quiet cut points
  }

  push(samples) {
    const all = new Float32Array(this.pending.length + samples.length);
    all.set(this.pending);
    all.set(samples, this.pending.length);
    let offset = 0;
    for (; offset + this.frame <= all.length; offset += this.frame) {
      let sum = 0;
      for (let i = offset; i < offset + this.frame; i++) sum += all[i] * all[i];
      const db = 10 * Math.log10(sum / this.frame + 1e-12);
      this.frameDb.push(db);
      // The floor falls at once to a quieter frame and rises slowly: speech is too short to lift it much.
      this.floor = Math.max(this.lowestFloor, db < this.floor ? db : Math.min(db, this.floor + this.rise));
      const speech = db > this.floor + this.margin && db > this.minDbfs;
      this.quietFrames = speech ? 0 : this.quietFrames + 1;
      const start = this.samples + offset;
      if (speech && this.firstSpeech === null) this.firstSpeech = start;
      if (this.quietFrames <= this.hangoverFrames) this.lastSpeechEnd = start + this.frame;
    }
    this.samples += offset;
    this.pending = all.slice(offset);
  }

  // The quietest frame's start between two sample indices (where cutting splits no word).
  quietestBetween(from, to) {
    let best = null;
    for (let f = Math.ceil(from / this.frame); (f + 1) * this.frame <= to && f < this.frameDb.length; f++) {
      if (best === null || this.frameDb[f] < this.frameDb[best]) best = f;
    }
    return best === null ? to : best * this.frame;
  }
}

// ---- the live transcriber -----------------------------------------------------------------------

export class LiveTranscriber {
  // transcribe(audio, {previous}) -> Promise<{text, tokens, noSpeechProb, avgLogprob}>: one model run.
  constructor(transcribe, { stepSeconds = 1, endpointSeconds = 0.8, maxBufferSeconds = 20, minCutSeconds = 5,
                            promptTokens = 224, textTokenLimit = Infinity, onUpdate = () => {}, gate } = {}) {  // prettier-ignore
    Object.assign(this, { transcribe, stepSeconds, endpointSeconds, maxBufferSeconds, minCutSeconds, promptTokens,
                          textTokenLimit, onUpdate });  // prettier-ignore
    this.gate = gate ?? new EnergyGate();
    this.chunks = [];
    this.bufferStart = 0; // sample index (since the start) of the buffer's first sample
    this.heard = 0; // samples received so far
    this.committedWords = [];
    this.bufferCommitted = []; // committed words that belong to the current buffer
    this.previousHypothesis = []; // the last run's words for the current buffer
    this.hypothesisWords = []; // its uncommitted tail, shown apart
    this.prompt = []; // tokens of the text before the buffer, for a model with a `previous` input
    this.commits = [];
    this.runs = [];
    this.firstShown = null; // {audioSeconds, wallSeconds} of the first words on screen
    this.lastRunAt = 0; // `heard` when the latest run started
    this.busy = false;
    this.stopped = false;
    this.startedAt = null; // performance.now() at the audio's time 0
  }

  get committed() {
    return this.committedWords.join(' ');
  }

  get hypothesis() {
    return this.hypothesisWords.join(' ');
  }

  now() {
    return (performance.now() - this.startedAt) / 1000;
  }

  // New microphone samples (16 kHz mono). Returns at once; model runs happen in the background.
  push(samples) {
    if (this.startedAt === null) this.startedAt = performance.now() - (samples.length / SAMPLE_RATE) * 1000;
    this.chunks.push(samples);
    this.heard += samples.length;
    this.gate.push(samples);
    this.schedule();
  }

  buffer(end = this.heard) {
    const out = new Float32Array(end - this.bufferStart);
    let offset = 0;
    for (const chunk of this.chunks) {
      const n = Math.min(chunk.length, out.length - offset);
      out.set(chunk.subarray(0, n), offset);
      offset += n;
      if (offset === out.length) break;
    }
    return out;
  }

  // Drop the buffer's audio before sample index `cut`.
  dropBefore(cut) {
    let drop = cut - this.bufferStart;
    while (drop > 0 && this.chunks.length) {
      if (this.chunks[0].length <= drop) {
        drop -= this.chunks[0].length;
        this.chunks.shift();
      } else {
        this.chunks[0] = this.chunks[0].subarray(drop);
        drop = 0;
      }
    }
    this.bufferStart = cut;
  }

  schedule() {
    if (this.busy || this.stopped) return;
    const { gate } = this;
    const hasSpeech = gate.lastSpeechEnd > this.bufferStart;
    if (!hasSpeech) {
      // Silence: nothing to transcribe. Keep the last half second, where the next word may begin.
      this.dropBefore(Math.max(this.bufferStart, this.heard - SAMPLE_RATE / 2));
      return;
    }
    const silence = (gate.samples - gate.lastSpeechEnd) / SAMPLE_RATE;
    const length = (this.heard - this.bufferStart) / SAMPLE_RATE;
    // The model reads one window: the buffer is cut before it outgrows maxBufferSeconds. When the
    // runs are slower than speech, audio piles up meanwhile; it is then cut in pieces, one per run.
    if (length > this.maxBufferSeconds) {
      const from = this.bufferStart + this.minCutSeconds * SAMPLE_RATE;
      const to = Math.min(this.heard - 2 * SAMPLE_RATE, this.bufferStart + this.maxBufferSeconds * SAMPLE_RATE);
      this.runInBackground(() => this.finish(gate.quietestBetween(from, to)));
    } else if (silence >= this.endpointSeconds) {
      this.runInBackground(() => this.finish(Math.min(gate.samples, gate.lastSpeechEnd + SAMPLE_RATE / 2)));
    } else if ((this.heard - this.lastRunAt) / SAMPLE_RATE >= this.stepSeconds) this.runInBackground(() => this.step());
  }

  runInBackground(job) {
    this.busy = true;
    job()
      .catch((error) => this.onUpdate(this, error))
      .finally(() => {
        this.busy = false;
        this.schedule();
      });
  }

  async hypothesize(end) {
    this.lastRunAt = end;
    const audioSeconds = end / SAMPLE_RATE;
    const result = await this.transcribe(this.buffer(end), { previous: this.prompt.slice(-this.promptTokens) });
    const silent = result.noSpeechProb !== null && result.noSpeechProb > 0.6 && result.avgLogprob < -1;
    const words = silent ? [] : splitWords(result.text);
    const span = { fromSeconds: this.bufferStart / SAMPLE_RATE, toSeconds: audioSeconds };
    this.runs.push({ ...span, bufferSeconds: span.toSeconds - span.fromSeconds, wallSeconds: this.now(),
                     seconds: result.seconds, words: words.length, silent });  // prettier-ignore
    return { words, tokens: silent ? [] : result.tokens, span };
  }

  // audioSeconds: how much audio had been heard at the commit; fromSeconds-toSeconds: the audio transcribed.
  commit(words, span) {
    if (!words.length) return;
    this.committedWords.push(...words);
    this.commits.push({ audioSeconds: this.heard / SAMPLE_RATE, wallSeconds: this.now(), text: words.join(' '), ...span });
  }

  show(words, span) {
    this.hypothesisWords = words.slice(this.bufferCommitted.length);
    if (this.firstShown === null && words.length) {
      this.firstShown = { audioSeconds: this.heard / SAMPLE_RATE, wallSeconds: this.now(), ...span };
    }
    this.onUpdate(this);
  }

  // A run on the growing buffer: commit what this hypothesis and the previous one agree on.
  async step() {
    const { words, span } = await this.hypothesize(this.heard);
    const agreed = agreedLength(this.previousHypothesis, words);
    if (agreed > this.bufferCommitted.length) {
      const fresh = words.slice(this.bufferCommitted.length, agreed);
      this.bufferCommitted.push(...fresh);
      this.commit(fresh, span);
    }
    this.previousHypothesis = words;
    this.show(words, span);
  }

  // The audio up to `cut` is complete (a pause follows, or the buffer is full): transcribe it once
  // more, commit all of it, and start the buffer there. Words already committed from beyond the
  // cut (the hypothesis had run further) stay committed for the new buffer, so none is repeated.
  async finish(cut) {
    const { words, tokens, span } = await this.hypothesize(cut);
    const fresh = words.slice(this.bufferCommitted.length);
    this.commit(fresh, span);
    this.bufferCommitted = this.bufferCommitted.slice(words.length);
    this.prompt = [...this.prompt, ...tokens.filter((t) => t < this.textTokenLimit)].slice(-this.promptTokens);
    this.previousHypothesis = [];
    this.dropBefore(cut);
    this.lastRunAt = cut;
    this.show(this.bufferCommitted, span);
  }

  // The microphone is off: what is left in the buffer is complete.
  async stop() {
    while (this.busy) await new Promise((resolve) => setTimeout(resolve, 50));
    this.busy = true;
    try {
      if (this.gate.lastSpeechEnd > this.bufferStart) await this.finish(this.heard);
    } finally {
      this.stopped = true;
      this.busy = false;
    }
    this.hypothesisWords = [];
    this.onUpdate(this);
  }

  // What the page exposes for measurement (window.whisperLab.live).
  snapshot() {
    return {
      committed: this.committed,
      hypothesis: this.hypothesis,
      commits: this.commits,
      runs: this.runs,
      firstShown: this.firstShown,
      firstSpeechSeconds: this.gate.firstSpeech === null ? null : this.gate.firstSpeech / SAMPLE_RATE,
      heardSeconds: this.heard / SAMPLE_RATE,
      bufferSeconds: (this.heard - this.bufferStart) / SAMPLE_RATE,
      busy: this.busy,
      stopped: this.stopped,
    };
  }
}

// ---- the microphone ------------------------------------------------------------------------------

// An AudioWorklet that hands every 128-sample block to the page; the AudioContext runs at 16 kHz,
// so the browser resamples the microphone for us (as decodeAudioData does for files in audio.js).
const CAPTURE_WORKLET = `
registerProcessor('lab-capture', class extends AudioWorkletProcessor {
  process(inputs) {
    const channels = inputs[0];
    if (channels.length) {
      const mono = new Float32Array(channels[0].length);
      for (const channel of channels) for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / channels.length;
      this.port.postMessage(mono, [mono.buffer]);
    }
    return true;
  }
});`;

export async function openMicrophone(onSamples) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const context = new AudioContext({ sampleRate: SAMPLE_RATE });
  const url = URL.createObjectURL(new Blob([CAPTURE_WORKLET], { type: 'text/javascript' }));
  await context.audioWorklet.addModule(url);
  URL.revokeObjectURL(url);
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, 'lab-capture', { numberOfOutputs: 0 });
  // Blocks of 128 samples (8 ms) are many messages; gather them to about 100 ms before handing them on.
  let pending = [];
  let count = 0;
  node.port.onmessage = ({ data }) => {
    pending.push(data);
    count += data.length;
    if (count >= SAMPLE_RATE / 10) {
      const samples = new Float32Array(count);
      let offset = 0;
      for (const block of pending) {
        samples.set(block, offset);
        offset += block.length;
      }
      pending = [];
      count = 0;
      onSamples(samples);
    }
  };
  source.connect(node);
  await context.resume();
  return {
    async close() {
      source.disconnect();
      node.disconnect();
      stream.getTracks().forEach((track) => track.stop());
      await context.close();
    },
  };
}
