"""End-to-end: the real dashboard in a real browser (Debian's Chromium driven by Playwright).

One test walks the whole path a user takes: pick points on the Front page (a click, then a box),
compare what the selected adapters say (fresh generation, not the saved samples), train a new
weighting on the Train page and see its point appear on the front.

The checkpoints root is a temp folder holding "demo" (a copy of the shipped checkpoints/demo, or of
$MODPO_BROWSER_DEMO_SOURCE), "tiny" (the conftest family; trained into, so the real checkpoints are
never written) and "hostile" (tiny, with HTML and markdown in every saved response).
Screenshots go to test-artifacts/browser/.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NEW_ID = "w-0.60-0.40"
# Model output that would run script, draw elements or make a link if it were rendered as HTML or markdown.
HOSTILE = ('<script>window.__pwned = 1</script><b id="injected-bold">bold</b> '
           '<img src="x" onerror="window.__pwned = 2"> [click me](https://example.com/phish) **not bold**')

# Names from a family folder and the URL: each would make a link or an element if rendered as markup.
HOSTILE_ADAPTER = '<a id="adapter-link" href="https:evil.example">x<b>[md-link](https:evil.example)'
HOSTILE_FAMILY = '<b id="family-bold">fam<b>[fam-link](https:evil.example)'
HOSTILE_QUERY = "[click-me](https://evil.example/a)"

pytestmark = pytest.mark.slow

from browser_helpers import (  # noqa: E402 (after the constants the helpers do not need)
    ARTIFACTS,
    CURRENT,
    cast_vote,
    chart,
    click_target,
    drag_box,
    drag_modes,
    estimate_caption,
    estimate_weights,
    figure,
    markers,
    metric,
    nav,
    open_suggested_pair,
    plain_text,
    response_columns,
    shot,
    start_app,
    step,
    stop_app,
    switch_on_blind,
    two_point_box,
    use_box_select,
    wait_blind_answers,
    wait_for_chart,
    wait_selected,
    wait_settled,
)


def _require_browser():
    """A missing browser is a failure, never a skip: CI must notice it."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        pytest.fail(f"the playwright python package is missing ({e}): pip install playwright")


# ---- the app under test ---------------------------------------------------------------------------

def _demo_source() -> Path | None:
    """The family the walk calls "demo": the shipped checkpoints/demo (SmolLM2-135M, so the Compare
    step generates with the real model), or the folder in $MODPO_BROWSER_DEMO_SOURCE, or, with
    MODPO_BROWSER_DEMO_SOURCE=tiny, a copy of the tiny test family (a quick run). Which one ran is
    written to test-artifacts/browser/family-under-test.txt.
    """
    wanted = os.environ.get("MODPO_BROWSER_DEMO_SOURCE", str(REPO / "checkpoints" / "demo"))
    if wanted == "tiny":
        return None
    source = Path(wanted)
    evaluated = sorted(p.parent.name for p in source.glob("adapters/*/eval.json"))
    if not (source / "family.json").is_file() or len(evaluated) < 2:
        pytest.fail(f"{source} is not an evaluated family (need family.json and >= 2 evaluated adapters); "
                    "build it with `python -m modpo demo` or set MODPO_BROWSER_DEMO_SOURCE=tiny")
    return source


@pytest.fixture(scope="module")
def browser_root(request, tmp_path_factory) -> Path:
    _require_browser()
    source = _demo_source()
    tiny_checkpoints = request.getfixturevalue("tiny_checkpoints")  # after the cheap checks: it trains
    root = tmp_path_factory.mktemp("browser_checkpoints")
    skip = shutil.ignore_patterns("trainer", "*.partial", ".*.partial", ".*.old", ".lock")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if source is None:
        # the stand-in must carry the name "demo" (selection state is keyed by the folder name)
        shutil.copytree(tiny_checkpoints / "tiny", root / "demo", ignore=skip)
        (ARTIFACTS / "family-under-test.txt").write_text("demo = a copy of the tiny family "
                                                         "(MODPO_BROWSER_DEMO_SOURCE=tiny)\n")
    else:
        shutil.copytree(source, root / "demo", ignore=skip)
        (ARTIFACTS / "family-under-test.txt").write_text(f"demo = {source}\n")
    shutil.copytree(tiny_checkpoints / "tiny", root / "tiny", ignore=skip)
    shutil.copytree(tiny_checkpoints / "tiny", root / "hostile", ignore=skip)
    for path in (root / "hostile").glob("**/eval.json"):  # every saved response is an attack
        record = json.loads(path.read_text())
        for sample in record["samples"]:
            sample["response"] = HOSTILE
        path.write_text(json.dumps(record))
    # names are attacks too: an adapter folder and a family folder named with HTML and markdown
    some_adapter = next((root / "hostile" / "adapters").iterdir())
    shutil.copytree(some_adapter, root / "hostile" / "adapters" / HOSTILE_ADAPTER)
    shutil.copytree(root / "tiny", root / HOSTILE_FAMILY, ignore=skip)
    return root


def _stop_jobs(root: Path) -> None:
    """Training runs launched by the app live in their own session: stop any still running."""
    for status in root.glob("*/jobs/*/status.json"):
        try:
            job = json.loads(status.read_text())
        except (OSError, ValueError):
            continue
        launch = status.parent / "launch.json"
        pid = job.get("pid") or (json.loads(launch.read_text()).get("pid") if launch.exists() else None)
        if job.get("state") in ("queued", "running") and pid:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if status.parent.name.encode() in cmdline:  # still our job, not a recycled pid
                    os.killpg(pid, signal.SIGTERM)
            except (OSError, ProcessLookupError):
                pass


@pytest.fixture(scope="module")
def app_url(browser_root):
    proc, url = start_app(browser_root, ARTIFACTS / "streamlit.log")
    try:
        yield url
    finally:
        stop_app(proc)
        _stop_jobs(browser_root)


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})  # a laptop screen
            pg = context.new_page()
            pg.set_default_timeout(30_000)
            yield pg
            context.close()
        finally:
            browser.close()


# ---- the test -------------------------------------------------------------------------------------

def test_select_compare_and_train_in_a_real_browser(page, app_url, browser_root):
    walk_through(page, app_url, browser_root)


def walk_through(page, app_url: str, browser_root: Path) -> None:
    from playwright.sync_api import expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    # 1. Front page of the demo family: one click selects one point
    step("front")
    page.goto(f"{app_url}/?family=demo")
    wait_for_chart(page)
    expect(metric(page, "Selected")).to_have_text("0", timeout=30_000)
    points = markers(page)
    fig = figure(page)
    assert set(p["id"] for p in points) <= set(fig["ids"]) and len(fig["ids"]) >= 3, fig
    shot(page, "01-front-demo")


    step("click")
    target = click_target(points)
    modes = drag_modes(page)
    page.mouse.click(target["x"], target["y"])
    try:
        expect(metric(page, "Selected")).to_have_text("1", timeout=30_000)
    except AssertionError:
        raise AssertionError(
            f"clicking the marker of {target['id']} selected nothing (chart clickmode/dragmode {modes}). "
            "Streamlit forces clickmode='event' while dragmode is 'select' or 'lasso' and then ignores clicks "
            "on scatter points, so a figure that starts in box-select mode cannot be clicked to select: "
            "leave dragmode unset (Streamlit's default, pan, selects on click)") from None
    wait_for_chart(page)
    wait_selected(page, {target["id"]})
    page.mouse.move(5, 5)  # away from the chart, so no hover label hides the picture
    page.wait_for_timeout(300)
    shot(page, "02-front-click-selects-one")

    # 2. a box over exactly two markers selects those two
    step("box")
    wait_settled(page)  # the click's reruns have ended: a box drawn on a chart about to be replaced is lost
    use_box_select(page)
    points = markers(page)
    plot = chart(page).locator(".nsewdrag").first.bounding_box()
    pair, box = two_point_box(points, plot)
    drag_box(page, box)
    expect(metric(page, "Selected")).to_have_text("2", timeout=30_000)
    wait_for_chart(page)
    pair_ids = {p["id"] for p in pair}
    wait_selected(page, pair_ids)
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)
    shot(page, "03-front-box-selects-two")

    step("table fits")  # every column of the front table shows at 1440 px, no sideways scrolling
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    widths = grid.evaluate("""el => { const s = el.querySelector('.dvn-scroller');
        return s ? [s.scrollWidth, s.clientWidth] : null; }""")
    assert widths is not None and widths[0] <= widths[1] + 1, f"the front table scrolls sideways: {widths}"
    shot(page, "03b-front-table-fits")

    # 3. Compare: the two selected adapters (and the base model) answer, freshly sampled
    step("compare")
    nav(page, "Compare", "Compare generations")
    page.get_by_role("button", name="Generate").wait_for(timeout=60_000)
    chosen = page.locator('[data-testid="stMultiSelect"]').first
    for i in pair_ids:
        expect(chosen).to_contain_text(i)
    page.locator('[data-testid="stRadio"]').filter(has_text="Decoding").get_by_text("sample", exact=True).click()
    # sampled settings differ from the evaluation's: the saved samples must disappear
    expect(page.get_by_text("not generated yet").first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Generate").click()
    deadline = time.time() + 300
    while True:
        cols = response_columns(page)
        done = [c for c in cols if c["id"] in pair_ids and c["text"] is not None
                and not any("saved at evaluation" in cap for cap in c["captions"])]
        if len(done) >= 2 and page.get_by_text("not generated yet").count() == 0:
            break
        assert time.time() < deadline, f"generation did not finish within 300 s: {cols}"
        page.wait_for_timeout(1000)
    ids = [c["id"] for c in cols]
    assert pair_ids <= set(ids) and "base" in ids, ids
    assert ids.index("base") == 0, f"the base model comes first: {ids}"
    for c in done:
        assert c["text"].strip(), f"{c['id']} answered with empty text: {cols}"
        assert any(" · " in cap or any(ch.isdigit() for ch in cap) for cap in c["captions"]), c
    shot(page, "04-compare-generated")

    # 4. Train a new weighting on the tiny family; its point appears on the front, marked new
    step("train")
    page.goto(f"{app_url}/train?family=tiny")
    page.get_by_role("heading", name="Train a new weighting").wait_for(timeout=60_000)
    for label, value in (("w positivity", "0.6"), ("w brevity", "0.4"), ("Steps", "3")):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text("Started job").first).to_be_visible(timeout=30_000)  # no other job runs
    shot(page, "05-train-queued")
    job = page.locator('[data-testid="stExpander"] summary').filter(has_text=NEW_ID)
    expect(job.first).to_be_visible(timeout=60_000)
    deadline = time.time() + 240
    while True:
        label = job.first.inner_text()
        if "· done" in label:
            break
        assert "failed" not in label and "cancelled" not in label, \
            f"the job ended as {label!r}:\n" + _job_logs(browser_root)
        assert time.time() < deadline, f"the job is still {label!r} after 240 s:\n" + _job_logs(browser_root)
        page.wait_for_timeout(1000)
    shot(page, "06-train-done")

    step("front-after-train")
    # a finished job makes the Train page rerun itself (which clears the "Started job" note): let it
    # settle first, so the page switch below does not race it
    try:
        page.get_by_text("Started job").first.wait_for(state="hidden", timeout=15_000)
    except Exception:  # noqa: BLE001 - only a courtesy wait; nav() retries anyway
        pass
    nav(page, "Front", "Pareto front")
    wait_for_chart(page)
    deadline = time.time() + 30
    while NEW_ID not in figure(page)["ids"]:
        assert time.time() < deadline, f"{NEW_ID} is not on the front chart: {figure(page)}"
        page.wait_for_timeout(500)
    fig = figure(page)
    assert fig["fresh"] == [NEW_ID], f"only the new point is ringed as new: {fig}"
    assert NEW_ID in {p["id"] for p in markers(page)}, "the new point is drawn"
    expect(metric(page, "Points")).to_have_text(str(len(fig["ids"])))
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)
    shot(page, "07-front-new-point")


def test_shift_click_adds_a_point_and_a_plain_click_replaces_in_a_real_browser(page, app_url, browser_root):
    """Shift held while clicking a marker adds it to the selection (the page's script turns "Clicks add to the
    selection" on for that click); the next click without Shift replaces the selection and turns it off."""
    from playwright.sync_api import expect
    toggle = page.locator('.st-key-click_adds input[type="checkbox"]')
    step("shift-click")
    page.goto(f"{app_url}/?family=demo")
    wait_for_chart(page)
    first = click_target([p for p in markers(page) if p["id"] != "base"])
    page.mouse.click(first["x"], first["y"])
    expect(metric(page, "Selected")).to_have_text("1", timeout=30_000)
    wait_settled(page)  # the selection's rerun redraws the chart: read its markers once it is drawn again
    wait_for_chart(page)
    second = click_target([p for p in markers(page) if p["id"] not in ("base", first["id"])])
    page.keyboard.down("Shift")  # as a hand does it: Shift, a click, Shift up at once
    page.mouse.click(second["x"], second["y"])
    page.keyboard.up("Shift")
    expect(metric(page, "Selected")).to_have_text("2", timeout=30_000)
    wait_selected(page, {first["id"], second["id"]})
    assert toggle.is_checked(), "the Shift-click turned 'Clicks add to the selection' on"
    shot(page, "08a-front-shift-click-adds")
    third = click_target([p for p in markers(page) if p["id"] not in ("base", first["id"], second["id"])])
    page.mouse.click(third["x"], third["y"])
    expect(metric(page, "Selected")).to_have_text("1", timeout=30_000)
    wait_selected(page, {third["id"]})
    expect(toggle).not_to_be_checked(timeout=10_000)


def test_reset_reference_resets_the_boxes_and_axes_never_repeat_in_a_real_browser(page, app_url, browser_root):
    """Reset reference puts the boxes themselves back to the default, so the next edit of another box does not
    bring a stale typed value back; the y axis never offers the x axis's objective."""
    from playwright.sync_api import expect
    step("reset-reference")
    page.goto(f"{app_url}/?family=tiny")
    wait_for_chart(page)
    hypervolume = metric(page, "Hypervolume")
    box = page.locator(".st-key-ref_brevity input").first
    default, default_hv = box.input_value(), hypervolume.inner_text()
    box.fill("1000")
    box.press("Enter")
    expect(hypervolume).to_have_text("0", timeout=30_000)
    page.get_by_role("button", name="Reset reference").click()
    expect(box).to_have_value(default, timeout=30_000)
    expect(hypervolume).to_have_text(default_hv, timeout=30_000)
    other = page.locator(".st-key-ref_positivity input").first
    other.fill(f"{float(other.input_value()) - 0.5:.4f}")
    other.press("Enter")
    wait_settled(page)
    expect(box).to_have_value(default, timeout=30_000)
    assert hypervolume.inner_text() != "0", "the stale 1000 came back"
    if _demo_source() is None:
        return
    page.goto(f"{app_url}/?family=demo")
    wait_for_chart(page)
    page.locator(".st-key-axis_x").first.click()
    page.get_by_role("option", name="brevity", exact=True).click()
    deadline = time.time() + 30
    while True:  # the y axis's options change with the rerun the x choice starts: read them until it has run
        wait_settled(page)
        page.locator(".st-key-axis_y").first.click()
        options = [o.inner_text() for o in page.get_by_role("option").all()]
        page.keyboard.press("Escape")
        if "brevity" not in options or time.time() > deadline:
            break
        page.wait_for_timeout(500)
    assert "brevity" not in options and "relevance" in options, options
    assert not page.locator('[data-testid="stException"]').count(), "the page shows an exception"


def test_a_click_on_the_triangle_picks_the_weighting_in_a_real_browser(page, app_url, browser_root):
    """On the demo (three objectives and a conditioned adapter) the Compare page's Any weighting is a
    triangle: a click on one of its dots makes that weighting a column and moves the star onto it."""
    from browser_helpers import MARKERS_JS

    from dashboard.any_weighting import TRIANGLE_STEP, any_id
    from modpo.pareto import weight_grid
    from modpo.plots import simplex_xy
    if _demo_source() is None:
        pytest.skip("MODPO_BROWSER_DEMO_SOURCE=tiny: the stand-in has two objectives, no triangle")
    assert (browser_root / "demo" / "conditioned" / "conditioned").is_dir(), "the demo has no conditioned adapter"
    choices = [list(w) for w in weight_grid(3, TRIANGLE_STEP, interior=False) if w[0] >= 0.05 - 1e-9]
    wanted = [0.7, 0.1, 0.2]
    step("triangle")
    page.goto(f"{app_url}/?family=demo")
    wait_for_chart(page)
    nav(page, "Compare", "Compare generations")
    wait_settled(page)
    assert not [c for c in response_columns(page) if "-any-" in c["id"]], "a closed panel adds no column"
    page.locator('[data-testid="stExpander"] summary').filter(has_text="Any weighting").first.click()
    triangle = page.locator(".st-key-any_triangle .js-plotly-plot").first
    triangle.wait_for(state="visible", timeout=60_000)
    triangle.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    dots = triangle.evaluate(MARKERS_JS)
    assert len(dots) == len(choices), f"{len(dots)} dots drawn for {len(choices)} weightings"
    target = next(d for d in dots if d["id"] == str(choices.index(wanted)))
    page.mouse.click(target["x"], target["y"])
    column = any_id("conditioned", wanted)
    deadline = time.time() + 60
    while column not in [c["id"] for c in response_columns(page)]:
        assert time.time() < deadline, f"no column {column} after the click: {response_columns(page)}"
        page.wait_for_timeout(500)
    triangle = page.locator(".st-key-any_triangle .js-plotly-plot").first
    star = triangle.evaluate("gd => { const t = gd.data.find(t => t.name === 'chosen'); return [t.x[0], t.y[0]]; }")
    assert star == pytest.approx(list(simplex_xy(wanted))), "the star sits on the clicked weighting"
    shot(page, "15-compare-triangle-pick")
    # a control above it changes the page's layout (a prompt box appears): the picker stays open
    page.locator(".st-key-prompt_source label").filter(has_text="type your own").first.click()
    page.locator(".st-key-own_prompt textarea").first.wait_for(state="visible", timeout=30_000)
    wait_settled(page)
    page.locator(".st-key-any_triangle .js-plotly-plot").first.wait_for(state="visible", timeout=30_000)


def test_model_output_is_shown_inert_in_a_real_browser(page, app_url, browser_root):
    """HTML, script and markdown links in model output stay literal text on the Compare page."""
    from playwright.sync_api import expect
    page.goto(f"{app_url}/?family=hostile")
    wait_for_chart(page)
    target = click_target(markers(page))
    page.mouse.click(target["x"], target["y"])
    expect(metric(page, "Selected")).to_have_text("1", timeout=30_000)
    nav(page, "Compare", "Compare generations")
    deadline = time.time() + 60
    while True:
        cols = [c for c in response_columns(page) if c["text"]]
        if {c["id"] for c in cols} >= {"base", target["id"]}:
            break
        assert time.time() < deadline, f"the saved samples did not show: {response_columns(page)}"
        page.wait_for_timeout(500)
    shot(page, "08-hostile-output-inert")
    for c in cols:
        assert c["text"].strip() == HOSTILE, f"{c['id']} shows {c['text']!r}, not the literal text"
    assert page.evaluate("() => window.__pwned === undefined"), "model output ran script"
    assert page.locator("#injected-bold").count() == 0, "model output drew an HTML element"
    assert page.locator('img[src="x"]').count() == 0, "model output drew an image"
    assert page.locator('a[href="https://example.com/phish"]').count() == 0, "model output made a link"


def test_names_from_families_and_urls_are_shown_as_text_in_a_real_browser(page, app_url, browser_root):
    """Markup in a ?family= parameter, an adapter folder's name and a family's name shows literally:
    no link, no element, no absolute server path."""
    from urllib.parse import quote

    from playwright.sync_api import expect

    def no_markup():
        links = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => [new URL(a.href).hostname, "
                              "a.outerHTML.slice(0, 300)])")
        assert not [link for link in links if "evil" in link[0]], f"a name became a link: {links}"
        assert page.locator("#adapter-link, #family-bold").count() == 0, "a name became an HTML element"

    page.goto(f"{app_url}/?family={quote(HOSTILE_QUERY)}")
    step("hostile-query")
    warning = page.locator('[data-testid="stAlert"]').filter(has_text="click-me").first
    expect(warning).to_be_visible(timeout=60_000)
    shown = warning.inner_text().replace("\u200b", "")  # literal() breaks would-be autolinks with zero-width spaces
    assert HOSTILE_QUERY in shown, shown
    assert str(browser_root) not in shown, "the server's checkpoints path was shown"
    no_markup()
    assert page.get_by_role("button", name="Deploy").count() == 0, "a local tool shows no Deploy button"
    shot(page, "09-hostile-query")
    page.goto(f"{app_url}/?family=hostile")
    wait_for_chart(page)
    expect(page.locator('[data-testid="stAlert"]').filter(has_text="md-link").first).to_contain_text(
        HOSTILE_ADAPTER, timeout=30_000)
    no_markup()
    shot(page, "10-hostile-adapter-name")
    page.goto(f"{app_url}/?family={quote(HOSTILE_FAMILY)}")
    wait_for_chart(page)
    expect(chart(page).locator(".gtitle")).to_contain_text(HOSTILE_FAMILY, timeout=30_000)
    no_markup()
    shot(page, "11-hostile-family-name")
    step("front-url")
    page.goto(f"{app_url}/front?family=tiny")  # a typed page URL works like the link to it
    page.get_by_role("heading", name="Pareto front").wait_for(timeout=60_000)
    assert page.get_by_text("Page not found").count() == 0


# What each point of the "votes" family says (about a prompt's topic): the more weight on positivity,
# the warmer and the longer, so every pair of answers trades positivity against brevity.
TRADE_OFF_ANSWERS = {
    "base": "This is about {topic}.",
    "w-0.30-0.70": "{topic} are nice.",
    "w-0.70-0.30": "I like {topic}, they are good and fun.",
    "w-1.00-0.00": "I love {topic}! They are wonderful, great, happy and lovely in every way, a true joy.",
}


@pytest.fixture(scope="module")
def votes_family(browser_root, tiny_checkpoints) -> Path:
    """browser_root/votes: the tiny family with its saved answers rewritten to trade one objective for the
    other (TRADE_OFF_ANSWERS, scored by the family's own scorers, means and errors recomputed).

    The tiny model's own answers are two texts ("It is a terrible idea..." and a longer one) that are
    worse on both objectives together, so after standardization every pair's score difference is the
    same on both objectives and no vote can move the estimated weighting off 0.50 / 0.50."""
    from modpo.evaluate import mean_stderr
    from modpo.family import load_family
    from modpo.scorers import score
    root = browser_root / "votes"
    shutil.copytree(tiny_checkpoints / "tiny", root,
                    ignore=shutil.ignore_patterns("trainer", "*.partial", ".*.partial", ".*.old", ".lock"))
    family = load_family(root)
    scorer_of = {o.name: o.scorer for o in family.spec.objectives}
    for path in root.glob("**/eval.json"):
        record = json.loads(path.read_text())
        template = TRADE_OFF_ANSWERS[record["id"]]
        texts = [template.format(topic=s["prompt"].removeprefix("tell me about ")) for s in record["samples"]]
        texts = [t[0].upper() + t[1:] for t in texts]
        prompts = [s["prompt"] for s in record["samples"]]
        scores = {name: [round(float(x), 4) for x in score(scorer, prompts, texts)]
                  for name, scorer in scorer_of.items()}
        for i, sample in enumerate(record["samples"]):
            sample.update(response=texts[i], capped=False, scores={name: v[i] for name, v in scores.items()})
        record["objectives"] = {name: mean_stderr(v) for name, v in scores.items()}
        path.write_text(json.dumps(record))
    return root


def _family_ids(root: Path) -> set[str]:
    from modpo.family import load_family
    return {p.id for p in load_family(root).points}


def _adapter_ids(root: Path) -> set[str]:
    """The family's points that are not the base model (whose id, "base", could be a word of any answer)."""
    from modpo.family import load_family
    return {p.id for p in load_family(root).points if p.kind != "base"}


def _no_id_in_blind_vote(page, ids: set[str]) -> None:
    """Blind mode: no answer column is headed by an id, and neither the answers nor the rest of the page's
    main area (but the estimate line's nearest point and a reveal of an earlier vote) name an adapter."""
    cols = response_columns(page)
    assert [c["id"] for c in cols] == ["Answer A", "Answer B"], f"blind mode shows other columns: {cols}"
    for c in cols:
        assert not [i for i in ids if i in (c["text"] or "")], f"{c['id']} names an adapter: {c}"
    main = plain_text(page.locator('[data-testid="stMain"]').first.evaluate("""el => {
        const copy = el.cloneNode(true);
        copy.querySelectorAll('[data-testid="stAlert"], [data-testid="stMultiSelect"]').forEach(e => e.remove());
        copy.querySelectorAll('[data-testid="stCaptionContainer"]').forEach(e => {
          if (e.innerText.includes('Your weighting from')) e.remove(); });
        return copy.innerText; }"""))
    shown = sorted(i for i in ids if i in main)
    assert not shown, f"blind mode shows the id(s) {shown} on the Compare page:\n{main[:3000]}"


def test_blind_votes_move_the_estimate_in_a_real_browser(page, app_url, votes_family):
    """From the Front page's suggested pair to three blind votes on the Compare page: no adapter id shows
    until a vote is cast, each vote is saved at once (blind, from one browser session), the page moves on
    to a pair not yet asked, and the estimated weighting moves with the votes."""
    from playwright.sync_api import expect

    from modpo.family import read_votes, votes_file
    root = votes_family
    known, adapters = _family_ids(root), _adapter_ids(root)
    before, problems = read_votes(root, known_ids=known)  # the module's other tests may share this family
    assert problems == [], problems
    step("votes-front")
    page.goto(f"{app_url}/?family=votes")
    page.get_by_role("heading", name="Pareto front").wait_for(timeout=60_000)
    first_pair = open_suggested_pair(page)
    assert set(first_pair) <= known, first_pair

    step("votes-compare")  # the pair's saved answers show at once, in the named columns
    deadline = time.time() + 60
    while not set(first_pair) <= {c["id"] for c in response_columns(page) if c["text"]}:
        assert time.time() < deadline, f"the suggested pair {first_pair} does not show: {response_columns(page)}"
        page.wait_for_timeout(500)
    shot(page, "12-compare-suggested-pair")

    step("votes-blind")
    switch_on_blind(page)
    _no_id_in_blind_vote(page, adapters)
    shot(page, "13-compare-blind")

    estimates, shown = [], []
    for k in range(1, 4):
        step(f"votes-vote-{k}")
        answers = wait_blind_answers(page)
        message = cast_vote(page, "A better", len(before) + k)
        estimates.append(estimate_caption(page, votes=len(before) + k))
        shown.append((answers, message))
        if k == 1:
            assert f"A was {first_pair[0]}, B was {first_pair[1]}" in message \
                or f"A was {first_pair[1]}, B was {first_pair[0]}" in message, \
                f"the first blind vote is not on the suggested pair {first_pair}: {message!r}"
        # the next pair is ready, and blind again
        expect(page.get_by_role("button", name="A better", exact=True)).to_be_visible(timeout=60_000)
        wait_blind_answers(page)
        _no_id_in_blind_vote(page, adapters)
    shot(page, "14-compare-after-three-blind-votes")

    step("votes-estimate")
    weights = [estimate_weights(e) for e in estimates]
    assert len(set(weights)) > 1, f"three votes left the estimate where it was: {estimates}"
    assert all(f"from {len(before) + k} vote(s)" in e for k, e in enumerate(estimates, 1)), estimates

    step("votes-file")
    votes, problems = read_votes(root, known_ids=known)
    assert problems == [], problems
    assert votes_file(root).read_bytes().endswith(b"\n")
    new = votes[len(before):]
    assert len(new) == 3, f"{len(new)} votes saved for the 3 cast: {new}"
    assert [v["blind"] for v in new] == [True] * 3 and [v["label"] for v in new] == ["left"] * 3, new
    assert len({v["session"] for v in new}) == 1, f"one browser session, one session id: {[v['session'] for v in new]}"
    pairs = [(v["prompt"], frozenset(p["id"] for p in v["points"])) for v in new]
    assert len(set(pairs)) == 3, f"a blind vote moved on to a pair already asked: {pairs}"
    for v, (answers, message) in zip(new, shown):
        ids = [p["id"] for p in v["points"]]
        assert f"A was {ids[0]}, B was {ids[1]}" in message, (message, ids)
        assert [" ".join(r.split()) for r in v["responses"]] == \
            [" ".join(answers[k].split()) for k in ("Answer A", "Answer B")], "the vote saved other answers than shown"


def test_votes_survive_a_sigkill_of_the_server(page, browser_root, tiny_checkpoints, tmp_path):
    """Votes are on disk the moment the app says they are saved: SIGKILL the server (no shutdown of any
    kind) after two blind votes, and the votes file holds both, every line valid; a new server on the same
    root shows the weighting from those 2 votes."""
    import signal

    from modpo.family import read_votes, votes_file
    root = tmp_path / "checkpoints"  # a private root: this test's server is the only writer
    shutil.copytree(tiny_checkpoints / "tiny", root / "tiny",
                    ignore=shutil.ignore_patterns("trainer", "*.partial", ".*.partial", ".*.old", ".lock"))
    family = root / "tiny"
    known = _family_ids(family)
    assert not votes_file(family).exists()
    context = page.context.browser.new_context(viewport={"width": 1440, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    procs = []
    try:
        step("sigkill-start")
        proc, url = start_app(root, ARTIFACTS / "streamlit-votes-1.log")
        procs.append(proc)
        pg.goto(f"{url}/?family=tiny")
        pg.get_by_role("heading", name="Pareto front").wait_for(timeout=60_000)
        pg.locator('[data-testid="stCaptionContainer"]').filter(has_text="No votes yet").first.wait_for(timeout=60_000)
        open_suggested_pair(pg)
        switch_on_blind(pg)
        step("sigkill-vote")
        messages = [cast_vote(pg, "A better", 1)]
        estimate_caption(pg, votes=1)
        wait_blind_answers(pg)
        messages.append(cast_vote(pg, "B better", 2))
        estimate_caption(pg, votes=2)
        shot(pg, "15-votes-before-sigkill")

        step("sigkill-kill")
        stop_app(proc, signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL, f"the server ended with {proc.returncode}, not by SIGKILL"
        context.close()  # its page only shows the lost connection now
        votes, problems = read_votes(family, known_ids=known)
        assert problems == [], f"the votes file has bad lines after the kill: {problems}"
        lines = votes_file(family).read_bytes().split(b"\n")
        assert lines[-1] == b"" and len(lines) == 3, f"two whole lines, each ended: {lines}"
        for line in lines[:-1]:
            json.loads(line)
        assert [v["label"] for v in votes] == ["left", "right"] and all(v["blind"] for v in votes), votes
        for v, message in zip(votes, messages):
            assert f"A was {v['points'][0]['id']}, B was {v['points'][1]['id']}" in message, (message, v["points"])
        assert not [p.name for p in (family / "data").iterdir() if p.name not in ("votes.jsonl", ".votes.lock")
                    and "votes" in p.name], f"temp files left: {sorted(p.name for p in (family / 'data').iterdir())}"

        step("sigkill-restart")
        proc, url = start_app(root, ARTIFACTS / "streamlit-votes-2.log")
        procs.append(proc)
        context = page.context.browser.new_context(viewport={"width": 1440, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        pg.goto(f"{url}/?family=tiny")
        pg.get_by_role("heading", name="Pareto front").wait_for(timeout=60_000)
        front_line = pg.locator('[data-testid="stCaptionContainer"]').filter(has_text="From 2 vote(s)").first
        front_line.wait_for(timeout=60_000)
        front_text = plain_text(front_line.inner_text())
        shot(pg, "16-front-after-restart")
        open_suggested_pair(pg)
        caption = estimate_caption(pg, votes=2)
        assert estimate_weights(caption) in front_text, f"the two pages disagree: {caption!r} vs {front_text!r}"
        shot(pg, "17-compare-after-restart")
    except Exception:
        try:
            shot(pg, f"failure-sigkill-{CURRENT['step']}")
        except Exception:  # noqa: BLE001 - the test's own failure is what matters
            pass
        raise
    finally:
        try:
            context.close()
        except Exception:  # noqa: BLE001 - closed already
            pass
        for proc in procs:
            if proc.poll() is None:
                stop_app(proc)


def _job_logs(root: Path) -> str:
    return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in root.glob("tiny/jobs/*/log.txt"))
