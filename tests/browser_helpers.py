"""Helpers of the real-browser tests (test_browser.py): screenshots, Streamlit and plotly locators,
selection by click and box, page navigation. The scenario's current step is kept in CURRENT so the
failure hook in conftest.py names its screenshot after it."""
from __future__ import annotations

import time
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"
CURRENT = {"step": "start"}


def step(name: str) -> None:
    """Name the scenario's step now running (the failure screenshot is failure-<test>-<step>.png)."""
    CURRENT["step"] = name


def shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def metric(page, label: str):
    return page.locator('[data-testid="stMetric"]').filter(has_text=label).locator('[data-testid="stMetricValue"]')


def chart(page):
    """The front chart (the first plotly figure on the page)."""
    return page.locator(".js-plotly-plot").first


# Every drawn marker with its point id (the trace's customdata) and its centre on screen.
MARKERS_JS = """gd => {
  const out = [];
  gd.querySelectorAll('.scatterlayer .trace').forEach(tr => {
    const cd = tr.__data__;
    const trace = cd && cd[0] && cd[0].trace;
    if (!trace || !trace.customdata) return;
    tr.querySelectorAll('.points path.point').forEach(p => {
      const d = p.__data__;
      const r = p.getBoundingClientRect();
      if (!d || r.width === 0 || r.height === 0) return;
      out.push({id: String(trace.customdata[d.i]), x: r.x + r.width / 2, y: r.y + r.height / 2});
    });
  });
  return out;
}"""

# Point ids in the figure the app sent, and which the app rings as selected (width 3) or new (width 2).
FIGURE_JS = """gd => {
  const ids = [], selected = [], fresh = [];
  (gd.data || []).forEach(t => {
    if (!t.customdata) return;
    const w = (t.marker && t.marker.line && t.marker.line.width) || [];
    Array.from(t.customdata).forEach((id, i) => {
      ids.push(String(id));
      if (w[i] === 3) selected.push(String(id));
      if (w[i] === 2) fresh.push(String(id));
    });
  });
  return {ids, selected, fresh};
}"""


def markers(page) -> list[dict]:
    return chart(page).evaluate(MARKERS_JS)


def figure(page) -> dict:
    return chart(page).evaluate(FIGURE_JS)


def wait_for_chart(page, min_points: int = 2) -> None:
    from playwright.sync_api import Error as PlaywrightError
    for attempt in range(5):  # a rerun of the app may replace the chart's element while we look at it
        try:
            chart(page).wait_for(state="visible", timeout=60_000)
            page.locator(".js-plotly-plot .scatterlayer .point").first.wait_for(state="visible", timeout=60_000)
            chart(page).scroll_into_view_if_needed(timeout=10_000)
            break
        except PlaywrightError:
            if attempt == 4:
                raise
            page.wait_for_timeout(500)
    deadline = time.time() + 30
    while len(markers(page)) < min_points:
        assert time.time() < deadline, f"the front chart shows fewer than {min_points} markers"
        page.wait_for_timeout(250)


def wait_selected(page, ids: set[str], timeout: float = 30) -> None:
    """Until the figure the app re-rendered rings exactly these ids as selected."""
    deadline = time.time() + timeout
    while True:
        got = set(figure(page)["selected"])
        if got == ids:
            return
        assert time.time() < deadline, f"the chart rings {sorted(got)} as selected, expected {sorted(ids)}"
        page.wait_for_timeout(250)


def drag_modes(page) -> list[str]:
    return chart(page).evaluate("gd => [gd._fullLayout.clickmode, gd._fullLayout.dragmode]")


def use_box_select(page) -> None:
    """Pick the chart toolbar's Box Select tool, unless it is already the drag mode."""
    if drag_modes(page)[1] == "select":
        return
    chart(page).hover()
    page.locator('.modebar-btn[data-attr="dragmode"][data-val="select"]').first.click()
    deadline = time.time() + 10
    while drag_modes(page)[1] != "select":
        assert time.time() < deadline, f"the Box Select tool did not switch the chart's drag mode: {drag_modes(page)}"
        page.wait_for_timeout(100)


def click_target(points: list[dict]) -> dict:
    """An adapter's marker with no other marker drawn on or near it, so a click can only mean that one."""
    def room(p):
        return min((abs(p["x"] - q["x"]) + abs(p["y"] - q["y"]) for q in points if q is not p), default=1e9)
    return max(points, key=lambda p: (p["id"] != "base", min(room(p), 40)))


def two_point_box(points: list[dict], plot: dict, pad: float = 8) -> tuple[list[dict], tuple]:
    """Two markers and a rectangle (x0, y0, x1, y1) inside the plot area holding their centres and no other."""
    lo_x, lo_y = plot["x"] + 2, plot["y"] + 2
    hi_x, hi_y = plot["x"] + plot["width"] - 2, plot["y"] + plot["height"] - 2
    best = None
    for i, a in enumerate(points):
        for b in points[i + 1:]:
            if a["id"] == b["id"]:
                continue
            box = (max(lo_x, min(a["x"], b["x"]) - pad), max(lo_y, min(a["y"], b["y"]) - pad),
                   min(hi_x, max(a["x"], b["x"]) + pad), min(hi_y, max(a["y"], b["y"]) + pad))
            if box[2] - box[0] < 24 or box[3] - box[1] < 24:
                continue  # plotly takes a tiny drag for a click, and a thin box on a crowded front can miss

            def inside(p, m=3, box=box):  # with a margin, so no marker sits on the border
                return box[0] - m <= p["x"] <= box[2] + m and box[1] - m <= p["y"] <= box[3] + m
            if not (inside(a, -1) and inside(b, -1)):
                continue
            if any(inside(p) for p in points if p is not a and p is not b):
                continue
            # smallest box first, but two markers drawn apart beat two drawn on top of each other
            key = (abs(a["x"] - b["x"]) + abs(a["y"] - b["y"]) < 6, (box[2] - box[0]) * (box[3] - box[1]))
            if best is None or key < best[0]:
                best = (key, [a, b], box)
    assert best, f"no rectangle on the chart holds exactly two of its {len(points)} markers"
    return best[1], best[2]


def drag_box(page, box: tuple) -> None:
    x0, y0, x1, y1 = box
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(1, 11):  # several moves, as a hand would, so plotly draws the box as it goes
        page.mouse.move(x0 + (x1 - x0) * k / 10, y0 + (y1 - y0) * k / 10)
    page.mouse.up()


def nav(page, title: str, heading: str, tries: int = 3) -> None:
    """Follow the sidebar's page link (keeps the streamlit session, and with it the selection), until the
    page's heading shows. Retried: a page switch that lands while the app reruns itself can be lost."""
    for attempt in range(tries):
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
        try:
            page.get_by_role("heading", name=heading).wait_for(timeout=30_000)
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; retried, then reported below
            if attempt == tries - 1:
                raise AssertionError(f"the sidebar link {title!r} did not open the page {heading!r} "
                                     f"after {tries} clicks (url {page.url})") from None


def response_columns(page) -> list[dict]:
    """The compare page's columns: header (adapter id), response text and its caption line."""
    return page.evaluate("""() => {
      const out = [];
      document.querySelectorAll('[data-testid="stColumn"]').forEach(c => {
        const head = c.querySelector('[data-testid="stMarkdownContainer"] strong');
        const text = c.querySelector('[data-testid="stText"]');
        if (!head) return;
        const captions = Array.from(c.querySelectorAll('[data-testid="stCaptionContainer"]')).map(e => e.innerText);
        out.push({id: head.innerText.trim(), text: text ? text.innerText : null, captions});
      });
      return out;
    }""")




# ---- a streamlit server of the app, started and stopped by a test ----------------------------------

def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
            return r.read().decode().strip() == "ok"
    except OSError:
        return False


def start_app(root: Path, log_path: Path, port: int | None = None, timeout: float = 60):
    """A streamlit server of dashboard/app.py over the checkpoints root, as test_browser's app_url fixture
    starts it (its own process group, so the group can be killed): (process, url), once it answers
    /_stcore/health. The server's output goes to log_path."""
    import os
    import subprocess
    import sys

    import pytest
    repo = Path(__file__).resolve().parent.parent
    port = port or free_port()
    env = {**os.environ, "MODPO_CHECKPOINTS": str(root), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while not healthy(url):
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n" + log_path.read_text(errors="replace")[-3000:])
        if time.time() > deadline:
            stop_app(proc)
            pytest.fail(f"streamlit did not answer /_stcore/health within {timeout:.0f} s:\n"
                        + log_path.read_text(errors="replace")[-3000:])
        time.sleep(0.5)
    return proc, url


def stop_app(proc, sig=None) -> None:
    """Send sig (default SIGTERM, SIGKILL after 20 s) to the server's process group and reap it."""
    import os
    import signal
    import subprocess
    try:
        os.killpg(proc.pid, sig or signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# ---- votes on the Compare page -------------------------------------------------------------------

def plain_text(text: str) -> str:
    """Text as shown, without the zero-width spaces common.literal puts into would-be links."""
    return text.replace("\u200b", "")


def estimate_caption(page, timeout: float = 60, votes: int | None = None) -> str:
    """The Compare page's "Your weighting from N vote(s): ..." line (waiting until it says N votes)."""
    want = "Your weighting from" + (f" {votes} vote(s)" if votes is not None else "")
    line = page.locator('[data-testid="stCaptionContainer"]').filter(has_text=want).first
    line.wait_for(state="visible", timeout=timeout * 1000)
    return plain_text(line.inner_text()).strip()


def estimate_weights(caption: str) -> str:
    """'positivity 0.41 ± 0.18 · brevity 0.59 ± 0.18' from the estimate line (no vote count, no nearest point)."""
    return caption.split(":", 1)[1].split(";")[0].strip()


def open_suggested_pair(page, timeout: float = 60) -> tuple[str, str]:
    """Press the Front page's "Compare the most informative pair next: A vs B" button; returns (A, B) once
    the Compare page shows. Retried if the page switch is lost in a rerun."""
    import re
    button = page.get_by_role("button", name=re.compile("Compare the most informative pair next"))
    button.wait_for(state="visible", timeout=timeout * 1000)
    label = plain_text(button.inner_text())
    found = re.search(r"next: (\S+) vs (\S+) \(", label)
    assert found, f"the suggested-pair button reads {label!r}"
    for attempt in range(3):
        button.scroll_into_view_if_needed()
        button.click()
        try:
            page.get_by_role("heading", name="Compare generations").wait_for(timeout=timeout * 1000)
            return found.group(1), found.group(2)
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; retried, then reported below
            if attempt == 2 or page.get_by_role("heading", name="Pareto front").count() == 0:
                raise AssertionError(f"the suggested-pair button did not open the Compare page (url {page.url})") \
                    from None
    raise AssertionError("unreachable")


def switch_on_blind(page, timeout: float = 60) -> None:
    toggle = page.get_by_role("switch", name="Blind vote")
    toggle.wait_for(state="attached", timeout=timeout * 1000)
    if not toggle.is_checked():
        page.get_by_text("Blind vote", exact=True).click()
    wait_blind_answers(page, timeout)


def blind_answers(page) -> dict:
    """{"Answer A": text, "Answer B": text} as the blind vote shows them."""
    return {c["id"]: c["text"] for c in response_columns(page) if c["id"] in ("Answer A", "Answer B")}


def wait_blind_answers(page, timeout: float = 60) -> dict:
    """Until the page shows the blind vote's two answers, and no other answer column (a rerun draws
    its elements one by one, and the previous run's stay on screen until it ends)."""
    deadline = time.time() + timeout
    while True:
        cols = response_columns(page)
        if [c["id"] for c in cols] == ["Answer A", "Answer B"] and all(c["text"] for c in cols):
            wait_settled(page, max(1.0, deadline - time.time()))
            cols = response_columns(page)
            if [c["id"] for c in cols] == ["Answer A", "Answer B"] and all(c["text"] for c in cols):
                return blind_answers(page)
        assert time.time() < deadline, f"the blind vote's two answers do not show: {cols}"
        page.wait_for_timeout(250)


RUNNING = ('[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"], '
           '[data-testid="stElementContainer"][data-stale="true"]')


def wait_settled(page, timeout: float = 60, calm: int = 3) -> None:
    """Until the app's run has ended: no running indicator and no stale element (the previous run's,
    which stay on screen, doubling buttons and columns, until the new run ends), for `calm` looks in a
    row 200 ms apart."""
    deadline, quiet = time.time() + timeout, 0
    while quiet < calm:
        quiet = quiet + 1 if page.locator(RUNNING).count() == 0 else 0
        assert time.time() < deadline, f"the app is still running after {timeout:.0f} s"
        page.wait_for_timeout(200)


def cast_vote(page, button: str, count: int, timeout: float = 60) -> str:
    """Press a vote button (once the page has settled) and wait for the app's "Saved vote <count> (...)."
    (count: the lines the votes file holds after this vote) and the end of the run; returns that message."""
    wait_settled(page, timeout)
    page.get_by_role("button", name=button, exact=True).click()
    saved = page.locator('[data-testid="stAlert"]').filter(has_text=f"Saved vote {count} (").first
    saved.wait_for(state="visible", timeout=timeout * 1000)
    wait_settled(page, timeout)
    return plain_text(saved.inner_text()).strip()
