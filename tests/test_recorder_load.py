"""The recorder under load on 127.0.0.1: 20 clients uploading and saving for 60 s, hostile files included.

The work is in recorder_load.py (also a script that prints the same figures).
Here every one of its findings must hold: each request answered as expected,
the page answering throughout, the server's peak memory under the stated
bound, and not one file written outside --output and the private folder, which
is gone once the recorder stops.
"""

from __future__ import annotations

import shutil

import pytest
from recorder_load import SERVER_MEMORY_BOUND_MB, run_load

CLIENTS = 20
SECONDS = 60


@pytest.mark.slow
def test_twenty_clients_for_a_minute_every_request_answered_in_bounded_memory(tmp_path):
    if not shutil.which("strace"):
        pytest.fail("strace is not installed: apt-get install strace (bash .ci/install-browser.sh does it)",
                    pytrace=False)
    report = run_load(CLIENTS, SECONDS, tmp_path)
    print("\n" + report.summary())

    assert not report.failures, report.summary()
    kinds = {answer.action for answer in report.answers}
    assert len(kinds) == 10, f"every kind of request was sent: {sorted(kinds)}"
    assert len(report.answers) >= 2 * CLIENTS
    # The page answered throughout: a probe every half second, none lost (a lost one is a failure above).
    assert len(report.loaded_page_ms) >= SECONDS
    assert report.peak_rss_mb < SERVER_MEMORY_BOUND_MB, report.summary()
    assert report.output_file_ok, "speech.wav must be exactly one of the good recordings"
    assert report.writes and not report.outside, report.outside
    assert not report.left_in_temp and not report.left_in_output
