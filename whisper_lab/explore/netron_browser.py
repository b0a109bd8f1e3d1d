"""Netron's page in a headless Chromium: open a model, wait for the graph, search it, photograph a region.

This is how the lab checks what it tells students to look at (the tests) and
how it draws the README's pictures (04 --pictures): the same web app the
student opens, served by netron_server, driven by Playwright in Debian's
Chromium (Playwright's own browser download needs hosts a lab VM cannot reach).

What the page needs to run unattended and offline:

* Netron replaces `window.eval` with a function that throws; Playwright
  evaluates its scripts through eval, so an init script keeps the original.
* On first use Netron asks for consent to usage reports after a geo lookup;
  we set the `consent` cookie it would set, and block every request that
  leaves the local server (the lookup, Google Analytics): nothing leaves the VM.
* Rendered means `body.default` with graph nodes in `#canvas`. Past 2.5 s
  of layout Netron shows a "large graph" notice: that is not an error, it
  goes away when the layout is done. An error shows `body.alert`, or the
  welcome screen with a message.
"""

from __future__ import annotations

import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import LabError
from .netron_server import ServedModel, start_server

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu",  # root in a container, no display or GPU
    # a closed network: without these Chromium keeps trying to reach Google
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
RENDER_TIMEOUT_S = 180  # graphs of 1,000-8,000 nodes take 2-9 s alone; the machine is shared
INSTALL_HINT = "bash install.sh --test (Playwright, Debian's Chromium and a font for Netron's brackets)"

# Keep the page's own eval for Playwright. The setter swallows Netron's assignment
# quietly (a read-only property would make its strict-mode code throw instead).
_KEEP_EVAL = """(() => {
    const original = window.eval;
    Object.defineProperty(window, 'eval', { get: () => original, set: () => {}, configurable: true });
})();"""

# One poll of the page's state: 'rendered', 'failed: <message>', 'expired: <message>' or 'loading'.
_STATE = """() => {
    const body = document.body, message = document.getElementById('message-text');
    const text = message ? message.innerText.trim() : '';
    if (body.classList.contains('alert') || (body.classList.contains('welcome') && body.classList.contains('message')))
        return 'failed: ' + (text || body.className);
    if (/update to the newest version/i.test(text) && body.classList.contains('notification'))
        return 'expired: ' + text;
    if (body.classList.contains('default') && document.querySelector('#canvas g.graph-node'))
        return 'rendered';
    return 'loading';
}"""

# The page elements of graph nodes, inputs and outputs, from (kind, name) pairs.
_ELEMENTS = """(items) => items.map(([kind, name]) => {
    if (kind === 'output') {
        const label = Array.from(document.querySelectorAll('#canvas .graph-item-output text'))
            .find((text) => text.textContent === name || text.textContent === name.split('/').pop());
        return label ? label.closest('g.node') : null;
    }
    return document.getElementById(`${kind}-name-${name}`);
})"""

_BOX = f"""(items) => {{
    const elements = ({_ELEMENTS})(items);
    const missing = items.filter((item, i) => !elements[i]).map(([kind, name]) => `${{kind}} ${{name}}`);
    const rects = elements.filter(Boolean).map((e) => e.getBoundingClientRect());
    if (rects.length === 0) return {{ missing }};
    return {{
        missing,
        left: Math.min(...rects.map((r) => r.left)), top: Math.min(...rects.map((r) => r.top)),
        right: Math.max(...rects.map((r) => r.right)), bottom: Math.max(...rects.map((r) => r.bottom)),
    }};
}}"""


class NetronRenderError(LabError):
    """Netron's page did not show the graph (an error, the expiry notice, or a timeout)."""


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    raise LabError(f"Chromium is not installed; run {INSTALL_HINT}")


@dataclass(frozen=True)
class FindHit:
    kind: str  # 'node', 'connection' or 'weight': the icon Netron shows next to the hit
    text: str  # what the hit list shows: a node's name, a value's name, a weight's name


class NetronPage:
    """One model in Netron's page, rendered; close() ends its browser context and its server."""

    def __init__(self, context, page, server: ServedModel, model: Path):
        self.context, self.page, self.server, self.model = context, page, server, model

    def wait_rendered(self, timeout_s: float = RENDER_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while (state := self.page.evaluate(_STATE)) == "loading":
            if time.monotonic() > deadline:
                raise NetronRenderError(f"{self.model.name}: Netron did not show the graph within {timeout_s:.0f} s")
            time.sleep(0.2)
        if state != "rendered":
            raise NetronRenderError(f"{self.model.name}: Netron shows no graph ({state})")

    def body_state(self) -> str:
        """The page's state as _STATE reports it: 'rendered', 'expired: ...', 'failed: ...', 'loading'."""
        return self.page.evaluate(_STATE)

    def op_counts(self) -> Counter:
        """How many nodes of each op type the drawn graph shows (the type is a node's title)."""
        types = self.page.evaluate(
            "() => Array.from(document.querySelectorAll('#canvas g.node.graph-node'))"
            ".map((node) => node.querySelector('.node-item-type text').textContent)")  # fmt: skip
        return Counter(types)

    def find(self, term: str) -> list[FindHit]:
        """Netron's Find (Ctrl+F): type `term`, read the hit list."""
        search = self.page.locator("#search")
        if not search.is_visible():
            self.page.locator("#target").focus()
            self.page.keyboard.press("Control+f")
            search.wait_for(state="visible")
        search.fill(term)  # Find updates its list on each input event
        hits = self.page.evaluate(
            "() => Array.from(document.querySelectorAll('.sidebar-find-content li'))"
            ".map((li) => [li.querySelector('use').getAttribute('href').replace('#sidebar-icon-', ''), li.textContent])")  # fmt: skip
        return [FindHit(kind, text) for kind, text in hits]

    def click_hit(self, text: str) -> None:
        """Click a hit of the open Find list, as a student does; Netron selects the node and scrolls to it."""
        exactly = re.compile(f"^{re.escape(text)}$")  # not a longer name that contains it
        self.page.locator(".sidebar-find-content li", has_text=exactly).first.click()

    def in_view(self, node_name: str, timeout_s: float = 30) -> bool:
        """Is the node selected and inside the visible graph area? Waits for Netron's smooth scroll to get there."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function("""(id) => {
                const node = document.getElementById(id), target = document.getElementById('target');
                if (!node || !node.classList.contains('select')) return false;
                const r = node.getBoundingClientRect(), t = target.getBoundingClientRect();
                return r.left >= t.left && r.right <= t.right && r.top >= t.top && r.bottom <= t.bottom;
            }""", arg=f"node-name-{node_name}", timeout=timeout_s * 1000)  # fmt: skip
            return True
        except PlaywrightTimeout:
            return False

    def show_attributes(self, show: bool) -> None:
        """Netron's View > Show Attributes (e.g. a Cast's `to = float16`); draws the graph again if it changes."""
        if self.page.evaluate("() => window.__view__.options.attributes") != show:
            self.page.evaluate("() => window.__view__.toggle('attributes')")
            self.wait_rendered()

    def screenshot_region(self, items: list[tuple[str, str]], max_size=(1600, 1300), margin=60) -> tuple[bytes, float]:
        """A PNG of the part of the graph holding `items` ((kind, name): kind node/input/output), and its zoom.

        Zooms out (Netron's own zoom, as Shift+Down does) only as far as needed to fit
        max_size, and scrolls the region into the corner of the window.
        """
        self.page.evaluate("() => { window.__view__._target.zoom = 1; }")  # measure at full size
        box = self.page.evaluate(_BOX, items)
        if box["missing"]:
            raise LabError(f"{self.model.name}: Netron's drawing has no {', '.join(box['missing'])}")
        width, height = box["right"] - box["left"], box["bottom"] - box["top"]
        zoom = min(1.0, max_size[0] / width, max_size[1] / height)
        self.page.set_viewport_size({"width": max_size[0] + 2 * margin + 20, "height": max_size[1] + 2 * margin + 20})
        # Netron keeps its zoom within limits of its own; read back what it took
        zoom = self.page.evaluate("(zoom) => { window.__view__._target.zoom = zoom; return window.__view__._target.zoom; }", zoom)
        box = self.page.evaluate(_BOX, items)
        self.page.evaluate("""([dx, dy]) => {
            const target = document.getElementById('target');
            target.scrollLeft += dx; target.scrollTop += dy;
        }""", [box["left"] - margin, box["top"] - margin])  # fmt: skip
        self._settle_scroll()
        box = self.page.evaluate(_BOX, items)
        viewport = self.page.viewport_size
        left, top = max(0, box["left"] - margin), max(0, box["top"] - margin)
        clip = {"x": left, "y": top,
                "width": min(viewport["width"], box["right"] + margin) - left,
                "height": min(viewport["height"], box["bottom"] + margin) - top}  # fmt: skip
        # the zoom buttons and the menu button float over the graph: not part of the picture
        png = self.page.screenshot(clip=clip, type="png", style="#toolbar, #menu-button { visibility: hidden; }")
        return png, zoom

    def _settle_scroll(self) -> None:
        """Wait until #target's scroll position holds still."""
        last = None
        for _ in range(100):
            now = self.page.evaluate("() => { const t = document.getElementById('target'); return [t.scrollLeft, t.scrollTop]; }")
            if now == last:
                return
            last = now
            self.page.wait_for_timeout(100)

    def close(self) -> None:
        try:
            self.context.close()
        finally:
            self.server.stop()

    def __enter__(self) -> NetronPage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NetronBrowser:
    """A headless Chromium for Netron pages; use as a context manager."""

    def __init__(self, viewport=(1400, 900)):
        self.viewport = viewport
        self._playwright = self._browser = None

    def __enter__(self) -> NetronBrowser:
        chromium = find_chromium()
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            raise LabError(f"Playwright is not installed; run {INSTALL_HINT}") from exc
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        except Exception:
            self._playwright.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._browser.close()
        finally:
            self._playwright.stop()

    @property
    def version(self) -> str:
        return self._browser.version

    def side_by_side(self, panels: list[tuple[str, bytes]]) -> bytes:
        """One PNG of several PNGs in a row, each under its caption (two browser windows, in one picture)."""
        import base64
        from html import escape

        figures = "".join(
            f'<figure><figcaption>{escape(caption)}</figcaption>'
            f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'
            for caption, png in panels)  # fmt: skip
        context = self._browser.new_context(viewport={"width": 400, "height": 300})
        try:
            page = context.new_page()
            page.set_content(
                "<style>body { margin: 0; display: inline-flex; gap: 0; background: #fff; font: 15px sans-serif; }"
                "figure { margin: 0; padding: 10px 16px; border-left: 2px solid #ccc; }"
                "figure:first-child { border-left: 0; } figcaption { padding: 4px 0 10px; font-weight: bold; white-space: nowrap; }"
                "img { display: block; }</style>" + figures)  # fmt: skip
            page.wait_for_function("() => Array.from(document.images).every((img) => img.complete)")
            return page.locator("body").screenshot(type="png")
        finally:
            context.close()

    def open(self, model: Path, clock: datetime | None = None, keep_build_date: bool = False,
             wait: bool = True) -> NetronPage:  # fmt: skip
        """Serve `model` and open it in a fresh context (own cookies, own clock).

        `clock`: the browser's date (Playwright's clock API), to see the page as it will be
        then; `keep_build_date`: serve index.html with its build date, as Netron's own
        server does (to show what the lab avoids).
        """
        model = Path(model)
        server = start_server(model, "127.0.0.1", 0, keep_build_date=keep_build_date)
        origin = f"http://127.0.0.1:{server.port}"
        context = self._browser.new_context(viewport={"width": self.viewport[0], "height": self.viewport[1]})
        try:
            if clock is not None:
                context.clock.install(time=clock)
            context.add_init_script(_KEEP_EVAL)
            now_ms = int((clock or datetime.now()).timestamp() * 1000)
            context.add_cookies([{"name": "consent", "value": str(now_ms), "url": origin}])
            # Nothing leaves the machine: the geo lookup and the usage reports are refused.
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(origin + "/")
                          else route.abort("blockedbyclient"))  # fmt: skip
            page = context.new_page()
            page.goto(origin + "/")
            netron_page = NetronPage(context, page, server, model)
            if wait:
                netron_page.wait_rendered()
            return netron_page
        except BaseException:
            context.close()
            server.stop()
            raise
