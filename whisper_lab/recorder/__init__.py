"""Script 01: a web page on the VM that records speech in the student's browser and saves speech.wav.

    app               the Gradio page: record or upload, save, show Whisper's input
    recording         browser audio in any shape -> the 16 kHz mono 16-bit speech.wav
    upload_reading    an uploaded file judged by its header, then decoded in bounded memory
    mel_figure        the 80 x 3000 log-mel picture the encoder sees, drawn for the page
    web_access        reaching the page with the microphone allowed: https, share link, advice
    self_signed_cert  a certificate made on the fly for --https
    private_temp      the 0700 folder for Gradio's copies of recordings, removed when the recorder stops
"""
