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

// sourceRate: the file's own rate, read from its header (decodeAudioData only tells the rate it
// resampled to); null when the header is not one of those sourceSampleRate reads.
export async function decodeToMono16k(bytes) {
  const sourceRate = sourceSampleRate(new Uint8Array(bytes)); // before decodeAudioData detaches the bytes
  const context = new OfflineAudioContext({ numberOfChannels: 1, length: 1, sampleRate: SAMPLE_RATE });
  let decoded;
  try {
    decoded = await context.decodeAudioData(bytes);
  } catch (error) {
    throw new Error('this browser cannot read it as audio; choose a wav, flac, ogg, mp3 or webm file');
  }
  return { samples: mixToMono(decoded), sourceRate, channels: decoded.numberOfChannels };
}

// The sample rate a file was recorded at, from its header: WAV, FLAC, Ogg (Vorbis, Opus), MP3.
export function sourceSampleRate(b) {
  const ascii = (at, n) => String.fromCharCode(...b.subarray(at, at + n));
  const u32le = (at) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
  if (b.length < 12) return null;
  if (ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WAVE') { // chunks until 'fmt ': its rate at byte 4
    for (let at = 12; at + 16 <= b.length; at += 8 + u32le(at + 4) + (u32le(at + 4) & 1)) {
      if (ascii(at, 4) === 'fmt ') return u32le(at + 12);
    }
    return null;
  }
  if (ascii(0, 4) === 'fLaC' && b.length >= 21) return (b[18] << 12) | (b[19] << 4) | (b[20] >> 4); // STREAMINFO
  if (ascii(0, 4) === 'OggS') { // the first page's packet: a Vorbis or Opus identification header
    const body = 27 + b[26];
    if (ascii(body, 7) === '\x01vorbis') return u32le(body + 12);
    if (ascii(body, 8) === 'OpusHead') return u32le(body + 12) || 48000; // the input rate (0: unknown)
    return null;
  }
  let at = ascii(0, 3) === 'ID3' ? 10 + ((b[6] << 21) | (b[7] << 14) | (b[8] << 7) | b[9]) : 0;
  for (const end = Math.min(b.length - 4, at + 4096); at < end; at++) { // an MPEG audio frame header
    if (b[at] === 0xff && (b[at + 1] & 0xe0) === 0xe0) {
      const version = (b[at + 1] >> 3) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
      const index = (b[at + 2] >> 2) & 3;
      if (version !== 1 && index !== 3) return [44100, 48000, 32000][index] / (version === 3 ? 1 : version === 2 ? 2 : 4);
    }
  }
  return null;
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
