"""Script 05: Whisper as one ONNX file, 16 kHz audio in, text out, for any ONNX runtime (the browser's too).

    nodes        a small helper that writes ONNX nodes with readable, scoped names
    front_end    the log-mel front end as ONNX nodes (framing by reshape + slices, two MatMuls); the padding switch
    greedy_loop  the greedy decoding loop as an ONNX Loop around the exported one-step decoder
    byte_table   tokens to UTF-8 bytes in the graph: a padded byte table, Gather and Compress
    assemble     the whole file: front end + encoder + Loop + byte table, interface and metadata
    session      run the file with plain onnxruntime: audio in, a transcript out
    pipeline     the job of 05: pair first, build per precision, up-to-date checks, check on the sample
    web_server   05 --serve: the static page of web/ and the models, GET only, cross-origin isolated
    benchmark    05 --benchmark: the one file vs the two-graph greedy path, side by side
"""
