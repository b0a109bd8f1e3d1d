"""Netron's own page, in a real headless Chromium, on each of the six exported files.

Steps 5 and 8 of the README tell students what to look for in Netron, and which
names to type into its Find box (the tables headed "Ctrl+F"). Here the same
page they open (served by 04 --netron's server, driven by Playwright in
Debian's Chromium) must draw every file, show the op types onnx counts, and
find every README term. Nothing leaves the machine: the page's geo lookup and
usage reports are blocked.

Needs Chromium: `bash install.sh --test` (.ci/install-browser.sh, .ci/install-fonts.sh).
Set WHISPER_LAB_SKIP_BROWSER=1 to skip these tests on a machine without it.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import onnx
import pytest
from conftest import REPO

from whisper_lab.errors import LabError
from whisper_lab.onnx_files import PRECISIONS, onnx_pair

pytestmark = pytest.mark.browser

PARTS = ("encoder", "decoder")
FILES = [(precision, part) for precision in PRECISIONS for part in PARTS]
# the ops the README's steps talk about; Netron must show as many of each as the file holds
KEY_OPS = ("Conv", "MatMul", "Softmax", "LayerNormalization", "Concat", "Gather",
           "MatMulInteger", "DynamicQuantizeLinear", "Cast")  # fmt: skip


def readme_search_terms() -> list[tuple[str, set[tuple[str, str]]]]:
    """The README's Ctrl+F tables: each term with the (precision, part) files it names.

    The file cell names "encoder" and/or "decoder", and the precisions it is about
    ("int8 encoder and decoder"); no precision means all three.
    """
    terms, in_table = [], False
    for line in (REPO / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else []
        if not cells:
            in_table = False
        elif cells[0] == "Ctrl+F":
            in_table = True
        elif in_table and not set(cells[0]) <= set("-: "):
            term = re.fullmatch(r"`([^`]+)`", cells[0]).group(1)
            parts = [part for part in PARTS if part in cells[1]]
            precisions = [p for p in PRECISIONS if p in cells[1]] or list(PRECISIONS)
            terms.append((term, {(p, part) for p in precisions for part in parts}))
    return terms


@pytest.fixture(scope="module")
def exported(exported_run):
    return exported_run[0]


@pytest.fixture(scope="module")
def browser():
    if os.environ.get("WHISPER_LAB_SKIP_BROWSER") == "1":
        pytest.skip("WHISPER_LAB_SKIP_BROWSER=1")
    from whisper_lab.explore.netron_browser import NetronBrowser

    netron_browser = NetronBrowser()
    try:
        netron_browser.__enter__()
    except LabError as exc:  # Chromium or Playwright missing: say how to install them
        pytest.fail(str(exc), pytrace=False)
    yield netron_browser
    netron_browser.__exit__(None, None, None)


def test_readme_names_search_terms_for_every_file():
    terms = readme_search_terms()
    named = set().union(*(files for _, files in terms))
    assert named == set(FILES), f"files without a Ctrl+F term in the README: {set(FILES) - named}"
    assert {"/cross_kv.3", "/layers.2/cross_attn", "DynamicQuantizeLinear", "Cast"} <= {t for t, _ in terms}


@pytest.mark.parametrize(("precision", "part"), FILES, ids=[f"{p}-{part}" for p, part in FILES])
def test_netron_draws_the_file_and_finds_the_readme_terms(browser, exported, precision, part):
    path = getattr(onnx_pair(exported, "whisper-base", precision), part)
    nodes = onnx.load(str(path), load_external_data=False).graph.node
    in_onnx = Counter(node.op_type for node in nodes)
    started = time.monotonic()
    with browser.open(path) as page:  # waits for body.default with graph nodes; raises on an error or the expiry
        seconds = time.monotonic() - started
        assert page.body_state() == "rendered" and page.page.locator("body.alert").count() == 0
        shown = page.op_counts()
        for op in KEY_OPS:
            assert shown[op] == in_onnx[op], f"{path.name}: Netron shows {shown[op]} {op}, onnx counts {in_onnx[op]}"
        # Netron folds Constant nodes into the arrows; every other node is drawn
        assert sum(shown.values()) == len(nodes) - in_onnx["Constant"]

        terms = [term for term, files in readme_search_terms() if (precision, part) in files]
        found = {}
        for term in terms:
            hits = page.find(term)
            assert hits, f"Netron's Find has nothing for the README's {term!r} in {path.name}"
            if term in in_onnx:  # an op type: Find lists every node of that type
                assert sum(hit.kind == "node" for hit in hits) >= in_onnx[term], (term, len(hits))
            else:  # a name: the hits carry it
                assert all(term.lower() in hit.text.lower() for hit in hits), (term, hits)
            node_hits = [hit for hit in hits if hit.kind == "node"]
            if node_hits:  # clicking a hit selects the node and scrolls it into view, as students will do
                page.click_hit(node_hits[0].text)
                assert page.in_view(node_hits[0].text), (term, node_hits[0].text)
            found[term] = len(hits)
        assert page.find("no_such_node_anywhere") == []  # Find filters: the checks above can fail
    print(f"\n{path.name}: drawn in {seconds:.1f} s, {sum(shown.values())} nodes; Find hits {found}")


def test_netron_reports_a_file_it_cannot_draw(browser, exported, tmp_path):
    """The check above fails when Netron fails: a truncated copy of a real file ends in Netron's error."""
    from whisper_lab.explore.netron_browser import NetronRenderError

    whole = onnx_pair(exported, "whisper-base", "int8").encoder.read_bytes()
    broken = tmp_path / "truncated.onnx"
    broken.write_bytes(whole[: len(whole) // 10])
    with pytest.raises(NetronRenderError, match="truncated.onnx: Netron shows no graph"):
        browser.open(broken).close()


def test_netron_page_still_works_a_year_from_now(browser, exported):
    """Netron's page refuses models 180 days after its build date; the lab's server keeps it working."""
    from whisper_lab.explore.netron_server import NetronApp

    app = NetronApp.installed()
    later = max(datetime.now(UTC), app.built) + timedelta(days=365)
    model = onnx_pair(exported, "whisper-base", "int8").encoder

    # as Netron's own server serves it (with the build date): the page gives up
    with browser.open(model, clock=later, keep_build_date=True, wait=False) as page:
        assert page.page.evaluate("() => new Date().getFullYear()") == later.year  # the clock really moved
        deadline = time.monotonic() + 60
        while (state := page.body_state()) == "loading" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state == "expired: Please update to the newest version.", state

    # as the lab serves it: the graph, a year later
    with browser.open(model, clock=later) as page:
        assert page.page.evaluate("() => new Date().getFullYear()") == later.year
        assert page.body_state() == "rendered" and page.op_counts()["MatMulInteger"] > 0
