"""Script 04's measured report: every way to run Whisper here, side by side (step 7 of the lab).

    backends       the five transcribers behind one interface, with stopwatches on encoder and decoder
    benchmark      the measuring rules: interleaved rounds, medians, WER passes, memory probes
    memory_probe   one backend's peak memory, alone in a fresh process
    wer            word error rate with Whisper's English normalizer, and a paired interval for a difference
    throughput     the machine's float32 and int8 product speed, and the encoder's work in operations
    comparison     the whole default run of 04, in order
    report         tables on stdout, report.md and the PNG plots
"""
