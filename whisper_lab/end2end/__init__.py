"""Script 05: Whisper as one ONNX file, 16 kHz audio in, text out, for any ONNX runtime (the browser's too).

    nodes        a small helper that writes ONNX nodes with readable, scoped names
    front_end    the log-mel front end as ONNX nodes (framing by reshape + slices, two MatMuls); the padding switch
    decoding_loop  one window's decoding loop as an ONNX Loop around the exported one-step decoder:
                 Whisper's token rules (timestamps included), greedy or sampled at a temperature
    byte_table   tokens to UTF-8 bytes in the graph: a padded byte table, Gather, Compress, CumSum
    speech_amount  seconds of speech in a window, in the graph (the dropped-speech check)
    assemble     the whole file: front end + encoder + prompt + Loop + byte table, interface and metadata
    session      run the file with plain onnxruntime: one window per run (EndToEnd.window)
    host         the host loop: any length, window by window, with Whisper's safeguards
    pipeline     the job of 05: pair first, build per precision, up-to-date checks, check on the sample
    web_server   05 --serve: the static page of web/ and the models, GET only, cross-origin isolated
    benchmark    05 --benchmark: the one file vs the two-graph greedy path, side by side
"""
