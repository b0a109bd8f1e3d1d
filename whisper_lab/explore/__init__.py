"""Script 04's tools for looking inside the exported graphs (steps 5 and 8 of the lab).

    graph_diff      two ONNX graphs side by side: ops matched by name, bytes by type, attention per layer
    netron_server   Netron's own web app and one model, served without the page's 180-day expiry
    netron_view     Netron served from the VM, with port-forwarding advice (04 --netron)
    netron_browser  Netron's page in headless Chromium: wait for the graph, Find, count ops, photograph
    pictures        the README's pictures: graph regions named by their nodes, drawn by Netron (04 --pictures)
    attention_picture  where the decoder listens: alignment heads over the log-mel, DTW path (04 --attention)
"""
