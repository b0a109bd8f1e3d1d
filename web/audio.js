// Audio in the shape Whisper was trained on: 16 kHz, mono, float32 in [-1, 1].
//
// Browsers record at 44.1 or 48 kHz, files come at any rate and in stereo. The Web Audio API
// decodes every format the browser can play, and decodeAudioData resamples to the rate of
// the context it belongs to: an OfflineAudioContext at 16 kHz hands us 16 kHz samples.
// Channels are then averaged into one, as the lab's Python loader does.

export const SAMPLE_RATE = 16000;
export const WINDOW_SAMPLES = 30 * SAMPLE_RATE; // the model reads at most 30 s
const SILENCE_DBFS = -50; // as the Python loader: quieter than this everywhere is silence
const MIN_SECONDS = 0.1;

export async function decodeToMono16k(bytes) {
  const context = new OfflineAudioContext({ numberOfChannels: 1, length: 1, sampleRate: SAMPLE_RATE });
  let decoded;
  try {
    decoded = await context.decodeAudioData(bytes);
  } catch (error) {
    throw new Error('this browser cannot read it as audio; choose a wav, flac, ogg, mp3 or webm file');
  }
  return { samples: mixToMono(decoded), sourceRate: decoded.sampleRate, channels: decoded.numberOfChannels };
}

export function mixToMono(buffer) {
  const mono = new Float32Array(buffer.length);
  for (let channel = 0; channel < buffer.numberOfChannels; channel++) {
    const data = buffer.getChannelData(channel);
    for (let i = 0; i < mono.length; i++) mono[i] += data[i];
  }
  if (buffer.numberOfChannels > 1) for (let i = 0; i < mono.length; i++) mono[i] /= buffer.numberOfChannels;
  return mono;
}

// Refuse what would only make Whisper invent text, with the same limits as the Python side.
export function problemWith(samples) {
  if (samples.length < MIN_SECONDS * SAMPLE_RATE) return `the audio is empty (shorter than ${MIN_SECONDS} s)`;
  let peak = 0;
  for (let i = 0; i < samples.length; i++) peak = Math.max(peak, Math.abs(samples[i]));
  const dbfs = peak > 0 ? 20 * Math.log10(peak) : -Infinity;
  if (dbfs < SILENCE_DBFS) return `the audio is silent (peak ${dbfs.toFixed(0)} dBFS); check the microphone`;
  return null;
}
