"""Script 03: Whisper cut into an encoder and a one-step decoder, exported to ONNX and checked.

    modules      the two PyTorch modules we export: encoder + cross K/V, one decoder step with caches
    onnx_export  torch.onnx (dynamo) export of both, with readable node names and metadata
    precision    fp16 and dynamic int8 copies made from the fp32 files (int8: per column, one shared token table)
    sensitivity  where int8 hurts: all but one layer group quantized, compared with fp32 (04 --sensitivity)
    validate     ONNX Runtime against PyTorch on real speech: the largest difference
    graph_stats  op counts and weight bytes by type: what each precision changed
    pipeline     the whole job of 03: export, convert, validate, the summary table
"""
