"""Script 04's measured report: every way to run Whisper here, side by side (step 7 of the lab).

    backends       the five transcribers behind one interface, with stopwatches on encoder and decoder
    benchmark      the measuring rules: interleaved rounds, medians, WER passes, memory probes
    memory_probe   one backend's peak memory, alone in a fresh process
    wer            word error rate with Whisper's English normalizer
    comparison     the whole default run of 04, in order
    report         tables on stdout, report.md and the PNG plots
"""
