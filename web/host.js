// The host loop of the one-file model: a whole recording, one 30 s window per run.
//
// The .onnx file decodes one window (front end, encoder, decoding loop, text); Whisper's
// transcribe() rules are this short loop around it, the same steps and names as Python's
// whisper_lab/end2end/host.py (and 03's transcribe/segments.py + safeguards.py):
//
//   temperature fallback  a window whose text compresses too well (a loop) or that the model was
//                         unsure of is decoded again, sampling at 0.2, 0.4, ... 1.0
//   no-speech skip        P(<|nospeech|>) > 0.6 and unsure: silence or noise, left out
//   dropped speech        after a loop was caught, an attempt with far fewer words than the
//                         window's speech (speech_seconds) is decoded again too
//   seeking               with timestamps, the tokens are cut into segments at timestamp pairs;
//                         the next window starts where the last complete segment ended
//   previous text         the kept tokens are the next window's prompt (not after a hot fallback)
//
// `run(feeds)` is the caller's: feeds are {name: {type, data, dims}} (what worker.js takes), it
// resolves to the outputs {name: {data}} (worker.js's reply, or an onnxruntime-web session's).

export const SAMPLE_RATE = 16000;
export const WINDOW = 480000; // 30 s: the model's window
export const TEMPERATURES = [0, 0.2, 0.4, 0.6, 0.8, 1];
export const COMPRESSION_RATIO_THRESHOLD = 2.4;
export const LOGPROB_THRESHOLD = -1;
export const NO_SPEECH_THRESHOLD = 0.6;
export const MIN_WORDS_PER_SPEECH_SECOND = 0.5;
export const MIN_SPEECH_SECONDS = 0.3;
const SAMPLES_PER_TIMESTAMP = 320; // one timestamp step is 20 ms
export const NO_SPEECH_NOTE = 'no speech detected in the audio (only silence, noise or other sounds); nothing to transcribe';
export const TOO_SHORT_NOTE = `the audio is too short to hold a word (under ${MIN_SPEECH_SECONDS} s); nothing to transcribe`;

const utf8 = new TextDecoder('utf-8');
const encoder = new TextEncoder();

// len(text) / len(zlib.compress(text)): ~1.5-2 for speech, far above 2.4 for a loop.
// CompressionStream('deflate') writes the zlib format, as Python's zlib.compress.
export async function compressionRatio(text) {
  const bytes = encoder.encode(text);
  if (bytes.length === 0) return 0;
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream('deflate'));
  const compressed = await new Response(stream).arrayBuffer();
  return bytes.length / compressed.byteLength;
}

export const wordCount = (text) => (text.match(/[\p{L}\p{N}_']+/gu) || []).length; // Python's [\w']+
export const hasWords = (text) => /[\p{L}\p{N}]/u.test(text);

// `[00:01.240 --> 00:04.980]  text`, as 03's --timestamps (and OpenAI's command line) prints a segment.
export function clock(seconds) {
  const minutes = Math.floor(seconds / 60);
  const rest = (seconds - 60 * minutes).toFixed(3).padStart(6, '0');
  const hours = Math.floor(minutes / 60);
  return (hours ? `${String(hours).padStart(2, '0')}:` : '') + `${String(minutes % 60).padStart(2, '0')}:${rest}`;
}
export const timestampLine = (segment) => `[${clock(segment.start)} --> ${clock(segment.end)}]  ${segment.text}`;

// Cut a window's tokens into segments at timestamp pairs; say how many samples to move on.
// Returns [{from, to, startStep, endStep}] (token index range and 20 ms steps), and the advance.
// A segment is <|t0|> text <|t1|>; two timestamps in a row close one segment and open the next.
// If the window ends inside a segment, that unfinished text is dropped and decoded again from
// the next window, which starts where the last complete segment ended (segments.split_segments).
export function splitSegments(tokens, timestampBegin, windowSamples) {
  const isTs = tokens.map((t) => t >= timestampBegin);
  const step = (i) => tokens[i] - timestampBegin;
  const pairEnds = [];
  for (let i = 1; i < tokens.length; i++) if (isTs[i - 1] && isTs[i]) pairEnds.push(i);
  const n = tokens.length;
  const speechEnded = n >= 2 && !isTs[n - 2] && isTs[n - 1]; // closed by a lone timestamp
  if (pairEnds.length === 0) { // one segment, or none: the whole window is used
    const stamps = tokens.filter((t) => t >= timestampBegin).map((t) => t - timestampBegin);
    const last = stamps[stamps.length - 1];
    const endStep = stamps.length && last > 0 ? last : Math.floor(windowSamples / SAMPLES_PER_TIMESTAMP);
    const pieces = n ? [{ from: 0, to: n, startStep: stamps.length ? stamps[0] : 0, endStep }] : [];
    return { pieces, advance: windowSamples };
  }
  const cuts = speechEnded ? [...pairEnds, n] : pairEnds;
  const pieces = [];
  let last = 0;
  for (const cut of cuts) {
    pieces.push({ from: last, to: cut, startStep: step(last), endStep: step(cut - 1) });
    last = cut;
  }
  if (speechEnded) return { pieces, advance: windowSamples };
  const advance = step(last - 1) * SAMPLES_PER_TIMESTAMP;
  return { pieces, advance: advance > 0 ? advance : windowSamples }; // no progress possible: keep it all
}

// ---- one run of the file, and the checks on its result -------------------------------------------

const scalar = {
  int64: (v) => ({ type: 'int64', data: BigInt64Array.from([BigInt(v)]), dims: [] }),
  float32: (v) => ({ type: 'float32', data: Float32Array.from([v]), dims: [] }),
  bool: (v) => ({ type: 'bool', data: Uint8Array.from([v ? 1 : 0]), dims: [] }),
};

export function feedsFor(window, { prompt = [], temperature = 0, timestamps = false, language, task }) {
  const feeds = {
    audio: { type: 'float32', data: window, dims: [window.length] },
    timestamps: scalar.bool(timestamps),
    temperature: scalar.float32(temperature),
  };
  feeds.prompt = { type: 'int64', data: BigInt64Array.from(prompt, BigInt), dims: [prompt.length] }; // may be empty
  if (language != null) feeds.language = scalar.int64(language); // English-only files have neither input
  if (task != null) feeds.task = scalar.int64(task);
  return feeds;
}

async function decodeWindow(run, window, options) {
  const out = await run(feedsFor(window, options));
  const tokens = Array.from(out.tokens.data, Number);
  const bytes = out.text.data;
  const textEnd = Array.from(out.text_end.data, Number);
  const text = utf8.decode(bytes).trim();
  const r = {
    tokens, bytes, textEnd, text,
    temperature: options.temperature,
    no_speech_prob: Number(out.no_speech_prob.data[0]),
    avg_logprob: Number(out.avg_logprob.data[0]),
    speech_seconds: Number(out.speech_seconds.data[0]),
    ratio: await compressionRatio(text),
  };
  r.silence = r.no_speech_prob > NO_SPEECH_THRESHOLD && r.avg_logprob < LOGPROB_THRESHOLD;
  r.failed = !r.silence && (r.ratio > COMPRESSION_RATIO_THRESHOLD || r.avg_logprob < LOGPROB_THRESHOLD);
  return r;
}

// Every temperature failed: the attempt the model found likeliest, preferring one that keeps the
// speech (after a loop), then one that is no loop (safeguards.best_failed_attempt).
function bestFailed(attempts) {
  const keptSpeech = attempts.filter((r) => !r.drops);
  const candidates = keptSpeech.length ? keptSpeech : attempts;
  const noLoops = candidates.filter((r) => r.ratio <= COMPRESSION_RATIO_THRESHOLD);
  return (noLoops.length ? noLoops : candidates).reduce((a, b) => (b.avg_logprob > a.avg_logprob ? b : a));
}

async function decodeWithFallback(run, window, options) {
  const attempts = [];
  for (const temperature of TEMPERATURES) {
    const r = await decodeWindow(run, window, { ...options, temperature });
    const loopCaught = (attempts[0] ?? r).ratio > COMPRESSION_RATIO_THRESHOLD;
    r.drops = loopCaught && wordCount(r.text) < MIN_WORDS_PER_SPEECH_SECOND * r.speech_seconds;
    attempts.push(r);
    if (!r.failed && !r.drops) return { r, attempts };
  }
  return { r: bestFailed(attempts), attempts };
}

// ---- the whole recording ---------------------------------------------------------------------------

// An async generator: yields {window, windows, seconds, total, segments} before each window
// (`windows` is an estimate: seeking may cut a window short), returns the transcript
// {text, segments: [{start, end, text}], windows, skipped, fallbacks, note, tokens, log}
// (tokens: those of the kept segments; log: each window's attempts, for the curious and the tests).
// options: timestamp_begin (required: from the file's metadata), timestamps, language, task.
export async function* transcribe(run, audio, { timestamp_begin, timestamps: asked = false, language, task } = {}) {
  const total = audio.length / SAMPLE_RATE;
  const result = { text: '', segments: [], windows: 0, skipped: 0, fallbacks: 0, note: null, log: [] };
  if (audio.length < MIN_SPEECH_SECONDS * SAMPLE_RATE) return { ...result, note: TOO_SHORT_NOTE };
  if (!Number.isInteger(timestamp_begin)) throw new Error('timestamp_begin (from the model\'s metadata) is needed');
  const timestamps = asked || audio.length > WINDOW;
  let seek = 0;
  const kept = []; // tokens of the kept segments, timestamps included
  const keptBytes = []; // their UTF-8 bytes, joined and decoded once at the end
  let promptFrom = 0;
  while (seek < audio.length) {
    yield { window: result.windows + 1, windows: result.windows + Math.ceil((audio.length - seek) / WINDOW),
            seconds: seek / SAMPLE_RATE, total, segments: result.segments };  // prettier-ignore
    const window = audio.slice(seek, seek + WINDOW); // a copy: only these samples travel to a worker
    const started = performance.now();
    const prompt = kept.slice(promptFrom);
    const { r, attempts } = await decodeWithFallback(run, window, { prompt, timestamps, language, task });
    result.windows += 1;
    result.fallbacks += attempts.length > 1 ? 1 : 0;
    result.log.push({ start: seek / SAMPLE_RATE, prompt: prompt.length, seconds: (performance.now() - started) / 1000,
                      attempts: attempts.map(({ temperature, ratio, avg_logprob, no_speech_prob, speech_seconds, text }) =>
                        ({ temperature, ratio, avg_logprob, no_speech_prob, speech_seconds, text })) });  // prettier-ignore
    if (r.silence) {
      result.skipped += 1;
      seek += window.length;
      continue;
    }
    const offset = seek / SAMPLE_RATE;
    const { pieces, advance } = timestamps
      ? splitSegments(r.tokens, timestamp_begin, window.length)
      : { pieces: [{ from: 0, to: r.tokens.length, startStep: 0, endStep: window.length / SAMPLES_PER_TIMESTAMP }], advance: window.length };
    for (const { from, to, startStep, endStep } of pieces) {
      const bytes = r.bytes.subarray(from > 0 ? r.textEnd[from - 1] : 0, to > 0 ? r.textEnd[to - 1] : 0);
      const text = utf8.decode(bytes).trim();
      if ((timestamps && startStep === endStep) || !text) continue; // instantaneous or empty: no text
      result.segments.push({ start: offset + startStep * 0.02, end: offset + endStep * 0.02, text });
      kept.push(...r.tokens.slice(from, to));
      keptBytes.push(bytes);
    }
    // a high-temperature result may have gone astray: do not let it steer the next window
    if (r.temperature > 0.5) promptFrom = kept.length;
    seek += advance;
  }
  result.text = utf8.decode(new Uint8Array(await new Blob(keptBytes).arrayBuffer())).trim();
  if (!hasWords(result.text)) return { ...result, text: '', segments: [], note: NO_SPEECH_NOTE };
  return { ...result, tokens: kept };
}
