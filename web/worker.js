// The model's own thread: an onnxruntime-web session inside a Web Worker.
//
// session.run takes seconds; on the page's main thread it freezes the page for all that time (no
// button, no scrolling, no new microphone samples drawn). Here it blocks only this worker. The
// WebAssembly build still starts its own helper threads for the kernels (numThreads), which needs
// a cross-origin isolated page: the lab's server sends the two headers for every file, this one too.
//
// Messages in:  {id, type: 'load', url | bytes, numThreads, options} -> {id, inputs, outputs, seconds, numThreads, bytes}
//               {id, type: 'run', feeds: {name: {type, data, dims}}} -> {id, outputs: {name: {type, data, dims}}, seconds}
//               {id, type: 'end-profiling'}                      -> {id} (the profile goes to the console)
// Every reply to a failed request is {id, error}.

import * as ort from './ort/ort.wasm.min.mjs';

ort.env.wasm.wasmPaths = new URL('./ort/', self.location.href).href;
let session = null;

async function load({ url, bytes, numThreads, options }) {
  const started = performance.now();
  // Threads are set once, before the first session: the WebAssembly module is instantiated with them.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? numThreads : 1;
  if (!bytes) { // the file's bytes, or where to download them
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    bytes = new Uint8Array(await response.arrayBuffer());
  }
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
