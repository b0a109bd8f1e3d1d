// The page of step 9: Whisper as one ONNX file, run by onnxruntime-web in this browser.
//
// Everything happens here: the audio is decoded to 16 kHz mono (audio.js), the samples go into
// the model's `audio` input, and the model returns the transcript as UTF-8 bytes in `text`.
// The log-mel front end, the decoding loop and the byte table are all inside the .onnx file.

import * as ort from './ort/ort.wasm.min.mjs';
import { WINDOW_SAMPLES, SAMPLE_RATE, decodeToMono16k, problemWith } from './audio.js';

ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
// Several threads need a cross-origin isolated page (the server sends the two headers for it).
ort.env.wasm.numThreads = crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

const $ = (id) => document.getElementById(id);
// For the browser console, and for the lab's tests: the last samples fed to the model, and its outputs.
window.whisperLab = { ready: false, busy: false, model: null, pcm: null, result: null, error: null };
let session = null;
let recorder = null;

function setStatus(message, isError = false) {
  $('status').textContent = message;
  $('status').classList.toggle('error', isError);
  if (isError) window.whisperLab.error = message;
}

function enableInputs(enabled) {
  $('record').disabled = !enabled || !navigator.mediaDevices;
  $('file').disabled = !enabled;
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

async function loadModel(name) {
  enableInputs(false);
  window.whisperLab.ready = false;
  setStatus(`Loading ${name} ...`);
  const started = performance.now();
  const bytes = await download(`models/${name}`, (fraction) => {
    $('model-progress').value = fraction;
    $('model-status').textContent = `${Math.round(fraction * 100)} %`;
  });
  $('model-status').textContent = 'preparing ...';
  if (session) await session.release();
  // logSeverityLevel 3: errors only, not the notice that `language` and `task` are overridable defaults
  session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], logSeverityLevel: 3 });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  $('model-status').textContent = `${(bytes.length / 1e6).toFixed(0)} MB, ready in ${seconds} s, ` +
    `${ort.env.wasm.numThreads} thread(s)`;
  window.whisperLab.model = name;
  window.whisperLab.ready = true;
  setStatus('Ready: record, or choose an audio file.');
  enableInputs(true);
}

async function transcribe(bytes, label) {
  window.whisperLab.busy = true;
  enableInputs(false);
  $('transcript').hidden = true;
  $('details').hidden = true;
  try {
    setStatus(`Decoding ${label} ...`);
    const { samples, sourceRate, channels } = await decodeToMono16k(bytes);
    const problem = problemWith(samples);
    if (problem) throw new Error(problem);
    const pcm = samples.length > WINDOW_SAMPLES ? samples.subarray(0, WINDOW_SAMPLES) : samples;
    window.whisperLab.pcm = pcm;
    setStatus(`Transcribing ${(pcm.length / SAMPLE_RATE).toFixed(1)} s of audio ...`);
    const started = performance.now();
    const out = await session.run({ audio: new ort.Tensor('float32', pcm, [pcm.length]) });
    const seconds = (performance.now() - started) / 1000;
    const result = {
      text: new TextDecoder('utf-8').decode(out.text.data),
      tokens: Array.from(out.tokens.data, Number),
      noSpeechProb: out.no_speech_prob.data[0],
      avgLogprob: out.avg_logprob.data[0],
      seconds,
    };
    window.whisperLab.result = result;
    $('transcript').textContent = result.text;
    $('transcript').hidden = false;
    showDetails([
      ['audio', `${label}: ${(samples.length / SAMPLE_RATE).toFixed(1)} s, ${sourceRate} Hz, ${channels} channel(s)` +
        (samples.length > WINDOW_SAMPLES ? ' (the first 30 s transcribed)' : '')],
      ['time', `${seconds.toFixed(1)} s in this browser`],
      ['tokens', `${result.tokens.length}`],
      ['no_speech_prob', result.noSpeechProb.toFixed(3)],
      ['avg_logprob', result.avgLogprob.toFixed(3)],
    ]);
    setStatus('Done.');
  } catch (error) {
    setStatus(`Not transcribed: ${error.message}`, true);
  } finally {
    window.whisperLab.busy = false;
    enableInputs(true);
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
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    setStatus(`No microphone: ${error.message}. Open the page as http://localhost:PORT (a forwarded port).`, true);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((track) => track.stop());
    const blob = new Blob(chunks, { type: recorder.mimeType });
    await transcribe(await blob.arrayBuffer(), 'your recording');
  };
  recorder.start();
  $('record').disabled = true;
  $('stop').disabled = false;
  $('file').disabled = true;
  setStatus('Recording ... click Stop when you are done.');
}

function stopRecording() {
  $('stop').disabled = true;
  recorder.stop();
}

async function main() {
  if (!navigator.mediaDevices) {
    $('record').title = 'The microphone needs https or http://localhost';
  }
  $('record').addEventListener('click', startRecording);
  $('stop').addEventListener('click', stopRecording);
  $('file').addEventListener('change', async () => {
    const file = $('file').files[0];
    if (file) await transcribe(await file.arrayBuffer(), file.name);
    $('file').value = '';
  });
  const config = await (await fetch('config.json')).json();
  const wanted = new URLSearchParams(location.search).get('model') || config.default;
  for (const name of config.models) $('model-choice').add(new Option(name, name, false, name === wanted));
  $('model-choice').addEventListener('change', () => loadModel($('model-choice').value).catch(fail));
  if (!config.models.includes(wanted)) throw new Error(`no model ${wanted} on this server`);
  await loadModel(wanted);
}

function fail(error) {
  setStatus(`The model could not be loaded: ${error.message}`, true);
}

main().catch(fail);
