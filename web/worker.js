// The model's own thread: an onnxruntime-web session inside a Web Worker.
//
// session.run takes seconds; on the page's main thread it freezes the page for all that time (no
// button, no scrolling, no new microphone samples drawn). Here it blocks only this worker. The
// WebAssembly build still starts its own helper threads for the kernels (numThreads), which needs
// a cross-origin isolated page: the lab's server sends the two headers for every file, this one too.
//
// Messages in:  {id, type: 'load', url | bytes, numThreads, options, required} -> {id, inputs, outputs, seconds, numThreads, bytes}
//               (required: inputs with a default in the file that the caller will feed; see withoutDefaults)
//               {id, type: 'run', feeds: {name: {type, data, dims}}} -> {id, outputs: {name: {type, data, dims}}, seconds}
//               {id, type: 'end-profiling'}                      -> {id} (the profile goes to the console)
// Every reply to a failed request is {id, error}.

import * as ort from './ort/ort.wasm.min.mjs';

ort.env.wasm.wasmPaths = new URL('./ort/', self.location.href).href;
let session = null;

// onnxruntime-web lists only a session's required inputs and refuses a feed of any other name, so an
// input with a default in the file (an initializer of the same name) cannot be given from here. The
// inputs named in `required` lose their defaults: the file's protobuf is copied without those
// initializers (ModelProto field 7 = graph; GraphProto field 5 = initializer; TensorProto field 8 = name).
function varint(b, at) {
  let value = 0;
  for (let scale = 1; ; scale *= 128) {
    const byte = b[at++];
    value += (byte & 0x7f) * scale;
    if (!(byte & 0x80)) return [value, at];
  }
}

function* fieldsOf(b, start, end) {
  for (let at = start; at < end;) {
    const [tag, valueAt] = varint(b, at);
    const [field, wire] = [Math.floor(tag / 8), tag % 8];
    let next = valueAt, length = 0;
    if (wire === 0) next = varint(b, valueAt)[1];
    else if (wire === 1) next = valueAt + 8;
    else if (wire === 5) next = valueAt + 4;
    else if (wire === 2) [length, next] = varint(b, valueAt), next += length;
    else throw new Error(`not an ONNX file (protobuf wire type ${wire})`);
    yield { field, wire, at, body: next - length, end: next };
    at = next;
  }
}

function encodeVarint(n) {
  const out = [];
  for (; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return Uint8Array.from(out);
}

export function withoutDefaults(bytes, required) {
  const graph = [...fieldsOf(bytes, 0, bytes.length)].find((f) => f.field === 7 && f.wire === 2);
  if (!graph || !required.length) return bytes;
  const kept = [];
  let dropped = 0;
  for (const f of fieldsOf(bytes, graph.body, graph.end)) {
    if (f.field === 5 && f.wire === 2) {
      const name = [...fieldsOf(bytes, f.body, f.end)].find((t) => t.field === 8 && t.wire === 2);
      if (name && required.includes(new TextDecoder().decode(bytes.subarray(name.body, name.end)))) {
        dropped++;
        continue;
      }
    }
    kept.push(bytes.subarray(f.at, f.end));
  }
  if (!dropped) return bytes;
  const body = kept.reduce((n, part) => n + part.length, 0);
  const head = [bytes.subarray(0, graph.at), Uint8Array.of(7 * 8 + 2), encodeVarint(body)];
  const parts = [...head, ...kept, bytes.subarray(graph.end)];
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) out.set(part, at), (at += part.length);
  return out;
}

async function load({ url, bytes, numThreads, options, required = [] }) {
  const started = performance.now();
  // Threads are set once, before the first session: the WebAssembly module is instantiated with them.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? numThreads : 1;
  if (!bytes) { // the file's bytes, or where to download them
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    bytes = new Uint8Array(await response.arrayBuffer());
  }
  bytes = withoutDefaults(bytes, required);
  if (session) await session.release();
  session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], logSeverityLevel: 3, ...options });
  // Which inputs the file has, with their element types: the caller fills them by name.
  const meta = (list) => list.map((m) => ({ name: m.name, type: m.type ?? null, shape: m.shape ?? null }));
  return {
    inputs: meta(session.inputMetadata ?? session.inputNames.map((name) => ({ name }))),
    outputs: meta(session.outputMetadata ?? session.outputNames.map((name) => ({ name }))),
    seconds: (performance.now() - started) / 1000,
    numThreads: ort.env.wasm.numThreads,
    bytes: bytes.length,
  };
}

async function run({ feeds }) {
  const tensors = {};
  for (const [name, { type, data, dims }] of Object.entries(feeds)) tensors[name] = new ort.Tensor(type, data, dims);
  const started = performance.now();
  const out = await session.run(tensors);
  const seconds = (performance.now() - started) / 1000;
  const outputs = {};
  const transfer = [];
  for (const [name, tensor] of Object.entries(out)) {
    outputs[name] = { type: tensor.type, data: tensor.data, dims: tensor.dims };
    if (tensor.data.buffer instanceof ArrayBuffer) transfer.push(tensor.data.buffer);
  }
  return [{ outputs, seconds }, transfer];
}

self.onmessage = async ({ data }) => {
  const { id, type } = data;
  try {
    if (type === 'load') self.postMessage({ id, ...(await load(data)) });
    else if (type === 'run') {
      if (!session) throw new Error('no model loaded');
      const [reply, transfer] = await run(data);
      self.postMessage({ id, ...reply }, transfer);
    } else if (type === 'end-profiling') {
      session.endProfiling();
      self.postMessage({ id });
    } else throw new Error(`unknown request ${type}`);
  } catch (error) {
    self.postMessage({ id, error: String(error?.message ?? error) });
  }
};
