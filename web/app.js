// The page of step 9: Whisper as one ONNX file, run by onnxruntime-web in this browser.
//
// Everything happens here: the audio is decoded to 16 kHz mono (audio.js), and host.js runs the
// model on it window by window, with Whisper's safeguards (host.js says which). Each run of the
// .onnx file decodes one 30 s window: log-mel front end, encoder, decoding loop and byte table
// are all inside it. The model runs in a Web Worker (worker.js), so the page stays responsive.

import { SAMPLE_RATE, decodeToMono16k, problemWith } from './audio.js';
import { timestampLine, transcribe } from './host.js';

const END2END_VERSION = '3'; // the one-window interface host.js speaks
const THREADS = Math.min(4, navigator.hardwareConcurrency || 1);
// Several threads need SharedArrayBuffer, which browsers give only a cross-origin isolated page.
const THREADS_AVAILABLE = self.crossOriginIsolated && typeof SharedArrayBuffer !== 'undefined';

const $ = (id) => document.getElementById(id);
// For the browser console, and for the lab's tests: the samples of the last clip, and its transcript.
window.whisperLab = { ready: false, busy: false, model: null, pcm: null, result: null, error: null, progress: null,
                      config: null };  // prettier-ignore
let config = null;
let model = null; // the loaded Model
let recorder = null;

// One model in its own worker (worker.js): load it, run it, end it (which frees its memory).
class Model {
  constructor(name) {
    this.name = name;
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.pending = new Map();
    this.nextId = 1;
    this.worker.onmessage = ({ data }) => {
      const { resolve, reject } = this.pending.get(data.id);
      this.pending.delete(data.id);
      if (data.error) reject(new Error(data.error));
      else resolve(data);
    };
    this.worker.onerror = (event) => {
      for (const { reject } of this.pending.values()) reject(new Error(event.message || 'the model\'s worker failed'));
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

  async load(bytes) {
    this.info = await this.request({ type: 'load', bytes, numThreads: THREADS, options: {} }, [bytes.buffer]);
    return this.info;
  }

  // host.js's `run`: feeds in, the outputs out
  run = async (feeds) => (await this.request({ type: 'run', feeds })).outputs;

  end() {
    this.worker.terminate();
    for (const { reject } of this.pending.values()) reject(new Error('the model was closed'));
    this.pending.clear();
  }
}

function setStatus(message, isError = false) {
  $('status').textContent = message;
  $('status').classList.toggle('error', isError);
  if (isError) window.whisperLab.error = message;
}

// Controls: usable when a model is loaded and nothing runs; while recording only Stop is.
function enableInputs(enabled) {
  $('record').disabled = !enabled || !navigator.mediaDevices;
  $('file').disabled = !enabled;
  $('timestamps').disabled = !enabled;
  $('model-choice').disabled = !enabled;
}

async function download(url, progress) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get('Content-Length')) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    progress(total ? received / total : 0);
  }
  return new Uint8Array(await new Blob(chunks).arrayBuffer());
}

// What the host loop needs from the file (config.json has it from the file's metadata), or why not.
function metadataProblem(name) {
  const meta = config.metadata?.[name];
  if (!meta) return `config.json says nothing of ${name}`;
  if (meta.end2end_version !== END2END_VERSION) {
    return `${name} was built by another version of this lab (version ${meta.end2end_version ?? 'unknown'}, ` +
      `this page needs ${END2END_VERSION}); build it again: python 05-export-end-to-end.py --force`;
  }
  if (!Number.isInteger(meta.timestamp_begin)) return `${name} has no timestamp_begin in its metadata`;
  return null;
}

// The new model is loaded before the old one is closed: if it fails, the old one stays in use.
async function loadModel(name) {
  enableInputs(false);
  window.whisperLab.ready = false;
  window.whisperLab.error = null;
  setStatus(`Loading ${name} ...`);
  const started = performance.now();
  let candidate = null;
  try {
    const problem = metadataProblem(name);
    if (problem) throw new Error(problem);
    const bytes = await download(`models/${name}`, (fraction) => {
      $('model-progress').value = fraction;
      $('model-status').textContent = `${Math.round(fraction * 100)} %`;
    });
    const size = bytes.length;
    $('model-status').textContent = 'preparing ...';
    candidate = new Model(name);
    const info = await candidate.load(bytes);
    model?.end();
    model = candidate;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    $('model-status').textContent = `${(size / 1e6).toFixed(0)} MB, ready in ${seconds} s, ${info.numThreads} thread(s)` +
      (THREADS_AVAILABLE ? '' : ' (WebAssembly threads are unavailable: the page is not cross-origin isolated, ' +
        'so the model runs on one thread, several times slower; open it as 05 --serve serves it)');
    window.whisperLab.model = name;
    setStatus('Ready: record, or choose an audio file.');
  } catch (error) {
    candidate?.end();
    const kept = model ? `; still using ${model.name}` : '';
    setStatus(`The model ${name} could not be loaded: ${error.message}${kept}`, true);
    $('model-status').textContent = model ? `${model.name} (kept)` : 'no model';
    if (model) $('model-choice').value = model.name;
  } finally {
    window.whisperLab.ready = model !== null;
    enableInputs(model !== null);
  }
}

const minutes = (seconds) => `${Math.floor(seconds / 60)}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`;

function showProgress({ window: index, windows, seconds, total, segments }) {
  $('progress').hidden = false;
  $('progress').value = total ? seconds / total : 0;
  $('progress-line').textContent = `window ${index} of ${windows}, ${minutes(seconds)} of ${minutes(total)}`;
  window.whisperLab.progress = { window: index, windows, seconds, total };
  if (segments.length) showTranscript(segments, true);
}

function showTranscript(segments, timed, note = null) {
  const box = $('transcript');
  box.classList.toggle('empty', note !== null);
  box.classList.toggle('timed', timed);
  if (note !== null) box.textContent = note;
  else if (timed) box.textContent = segments.map(timestampLine).join('\n');
  else box.textContent = segments.map((s) => s.text).join(' ');
  box.hidden = false;
}

async function transcribeAudio(bytes, label, recordedRate = null) {
  window.whisperLab.busy = true;
  enableInputs(false);
  $('transcript').hidden = true;
  $('details').hidden = true;
  try {
    setStatus(`Decoding ${label} ...`);
    const { samples, sourceRate, channels } = await decodeToMono16k(bytes);
    const problem = problemWith(samples);
    if (problem) throw new Error(problem);
    window.whisperLab.pcm = samples;
    const total = samples.length / SAMPLE_RATE;
    setStatus(`Transcribing ${minutes(total)} of audio ...`);
    const started = performance.now();
    const asked = $('timestamps').checked;
    const meta = config.metadata[model.name];
    const loop = transcribe(model.run, samples, { timestamp_begin: meta.timestamp_begin, timestamps: asked });
    let step;
    while (!(step = await loop.next()).done) showProgress(step.value);
    const seconds = (performance.now() - started) / 1000;
    const result = { ...step.value, seconds };
    window.whisperLab.result = result;
    $('progress').value = 1;
    $('progress-line').textContent = `${result.windows} window(s), ${minutes(total)} of ${minutes(total)}`;
    // times where they tell something: asked for, or a recording of more than one window
    showTranscript(result.segments, asked || result.windows > 1, result.note);
    const rate = sourceRate ?? recordedRate;
    showDetails([
      ['audio', `${label}: ${total.toFixed(1)} s, ${rate ? `${rate} Hz` : 'sample rate unknown'}, ` +
        `${channels} channel(s), heard as 16 kHz mono`],
      ['time', `${seconds.toFixed(1)} s in this browser (${(total / seconds).toFixed(1)} x real time)`],
      ['windows', `${result.windows} of up to 30 s; ${result.skipped} skipped as no speech, ` +
        `${result.fallbacks} decoded again at a higher temperature`],
      ['segments', `${result.segments.length}`],
    ]);
    setStatus(result.note ? 'Done: nothing to transcribe.' : 'Done.');
  } catch (error) {
    setStatus(`Not transcribed: ${error.message}`, true);
  } finally {
    window.whisperLab.busy = false;
    enableInputs(model !== null);
  }
}

function showDetails(rows) {
  $('details').replaceChildren(...rows.flatMap(([term, value]) => {
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = term;
    dd.textContent = value;
    return [dt, dd];
  }));
  $('details').hidden = false;
}

async function startRecording() {
  enableInputs(false); // the model stays as it is while recording, from the first click on
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    enableInputs(true);
    setStatus(`No microphone: ${error.message}. Open the page as http://localhost:PORT (a forwarded port).`, true);
    return;
  }
  const rate = stream.getAudioTracks()[0]?.getSettings().sampleRate ?? null;
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((track) => track.stop());
    const blob = new Blob(chunks, { type: recorder.mimeType });
    await transcribeAudio(await blob.arrayBuffer(), 'your recording', rate);
  };
  recorder.start();
  $('stop').disabled = false;
  setStatus('Recording ... click Stop when you are done.');
}

function stopRecording() {
  $('stop').disabled = true;
  recorder.stop();
}

async function fetchConfig() {
  let response;
  try {
    response = await fetch('config.json');
  } catch (error) {
    throw new Error(`config.json could not be fetched (${error.message}); is the server still running?`);
  }
  if (!response.ok) {
    throw new Error(`config.json: HTTP ${response.status}; serve this page with python 05-export-end-to-end.py --serve`);
  }
  let parsed;
  try {
    parsed = await response.json();
  } catch {
    throw new Error('config.json is not JSON; serve this page with python 05-export-end-to-end.py --serve');
  }
  if (!Array.isArray(parsed.models) || parsed.models.length === 0) throw new Error('config.json lists no model');
  return parsed;
}

async function main() {
  if (!navigator.mediaDevices) {
    $('record').title = 'The microphone needs https or http://localhost';
  }
  $('record').addEventListener('click', startRecording);
  $('stop').addEventListener('click', stopRecording);
  $('file').addEventListener('change', async () => {
    const file = $('file').files[0];
    if (file) await transcribeAudio(await file.arrayBuffer(), file.name);
    $('file').value = '';
  });
  config = await fetchConfig();
  window.whisperLab.config = config;
  const wanted = new URLSearchParams(location.search).get('model') || config.default;
  for (const name of config.models) $('model-choice').add(new Option(name, name, false, name === wanted));
  $('model-choice').addEventListener('change', () => loadModel($('model-choice').value));
  if (!config.models.includes(wanted)) throw new Error(`no model ${wanted} on this server`);
  await loadModel(wanted);
}

main().catch((error) => setStatus(`The page could not start: ${error.message}`, true));
