"""Audio to text: the decoding loops of scripts 02 and 03 --transcribe, and Whisper's safeguards.

    languages     language codes and names -> Whisper's language prompt token
    options       the decoding settings (fallback temperatures, thresholds, beams): one set of defaults
    logit_rules   which tokens may come next: suppression and timestamp rules, one function each
    safeguards    when a decoded window is a loop, a guess or silence, and the temperature fallback
    segments      a whole recording: seeking window by window, segments, skipped silence, prompts
    timing        word timestamps: the alignment heads' attention, dynamic time warping, words from tokens
    decoders      one window through the ONNX decoder: greedy, or sampled at a temperature
    beam_search   one window, keeping the N likeliest transcripts (--beam-size)
    onnx_whisper  the exported ONNX pair in numpy + ONNX Runtime, no PyTorch (03 --transcribe)
    hf_whisper    the reference: transformers' generate() on PyTorch, its own safeguards (02)
    cli           the flags and the output that 02 and 03 --transcribe share
    subtitles     the transcript as a file: txt, SubRip (.srt), WebVTT (.vtt), JSON with segments and words
    trial_audio   noise, hum, long real speech: the audio the safeguards are tested on
"""
