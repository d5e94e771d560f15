"""The built book in headless Chromium: images load, internal links resolve, claims are shown.

Skipped unless `_build/html/index.html` exists (build it with `make book`) and Chromium,
chromedriver and selenium are installed (`make browser` installs Debian's chromium and
chromium-driver). Opens index.html and every page of _toc.yml, checks every local image
decoded (naturalWidth > 0) and has non-empty alt text, every local link points to an existing
file (and, for a link to a page with an anchor, to an existing id), that no parameters cell
(the notebook's or papermill's injected one) is shown, that each distillation chapter opens
with its "What we found" box above its first figure, that the summary page shows the claims
table, and saves a screenshot per page under `_build/screenshots/`. With ``KDLIB_REQUIRE_BROWSER=1``
(CI) it fails instead of skipping.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from kdlib.claims import FINDINGS_CLASS
from kdlib.experiments.chapters import SECTIONS as CHAPTERS

REPO = Path(__file__).resolve().parent.parent
HTML = REPO / "_build" / "html"
SHOTS = REPO / "_build" / "screenshots"
SUMMARY_STEM = "90_summary"
FINDINGS = f".{FINDINGS_CLASS}"  # each distillation chapter opens with this box
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def toc_pages() -> list[str]:
    """index.html plus the .html page of every file in _toc.yml (root, chapters, sections)."""
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries: list) -> None:
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("chapters", "sections", "parts"):
                walk(entry.get(key))

    walk(toc.get("chapters"))
    walk(toc.get("parts"))
    return ["index.html"] + [f"{Path(f).with_suffix('')}.html" for f in files]


def _why_skip() -> str | None:
    """The reason the browser test cannot run here, or None."""
    if not (HTML / "index.html").is_file():
        return f"no built book ({HTML / 'index.html'} is missing: run `make book`)"
    if not any(shutil.which(b) for b in BROWSERS):
        return "no Chromium (`make browser` installs Debian's chromium and chromium-driver)"
    if not shutil.which("chromedriver"):
        return "no chromedriver (`make browser` installs Debian's chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


# CI sets KDLIB_REQUIRE_BROWSER=1: there a missing book or browser is a failure, not a skip.
if _why_skip() is not None and os.environ.get("KDLIB_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"KDLIB_REQUIRE_BROWSER=1 but the browser test cannot run: {_why_skip()}")
pytestmark = pytest.mark.skipif(_why_skip() is not None, reason=str(_why_skip()))


@pytest.fixture(scope="module")
def driver():
    """One headless Chromium for all pages (offline: no downloads by Selenium Manager)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(b) for b in BROWSERS if shutil.which(b))
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1600", "--allow-file-access-from-files"):
        options.add_argument(arg)
    os.environ.setdefault("SE_AVOID_STATS", "true")
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


_IMAGES_JS = """
const done = arguments[arguments.length - 1];
const imgs = Array.from(document.images);
imgs.forEach(i => { i.loading = 'eager'; });
const settle = i => i.complete ? Promise.resolve() :
  new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); });
Promise.all(imgs.map(settle)).then(() => done(imgs.map(i => ({
  src: i.currentSrc || i.src, raw: i.getAttribute('src') || '', alt: i.alt,
  width: i.naturalWidth}))));
"""

_LINKS_JS = """
return Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'));
"""


def _ids(page: Path, cache: dict[Path, set[str]]) -> set[str]:
    """The id (and name) attributes of an HTML file, read once."""
    if page not in cache:
        text = page.read_text(encoding="utf-8", errors="replace")
        cache[page] = {html.unescape(m) for m in re.findall(r'\s(?:id|name)="([^"]*)"', text)}
    return cache[page]


def _local_link_problems(page: Path, hrefs: list[str], page_ids: set[str]) -> list[str]:
    """Local hrefs of `page` whose file is missing, or whose #anchor is not in the target."""
    problems, cache = [], {}
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or href.startswith("//"):
            continue  # http(s), mailto, javascript: not this test's business (offline)
        fragment = unquote(parts.fragment)
        if not parts.path:  # same-page anchor
            if fragment and fragment not in page_ids:
                problems.append(f"{href}: no id {fragment!r} on this page")
            continue
        target = (page.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"{href}: {target} does not exist")
        elif fragment and target.suffix == ".html" and fragment not in _ids(target, cache):
            problems.append(f"{href}: no id {fragment!r} in {target.name}")
    return problems


@pytest.mark.parametrize("name", toc_pages())
def test_page(driver, name):
    page = HTML / name
    assert page.is_file(), f"{name} is in _toc.yml but was not built"
    driver.get(page.as_uri())
    page = _follow_redirect(driver, page)
    SHOTS.mkdir(parents=True, exist_ok=True)

    images = driver.execute_async_script(_IMAGES_JS)
    broken = [i["raw"] for i in images if i["src"].startswith("file:") and i["width"] == 0]
    assert not broken, f"{name}: local images that did not load: {broken}"
    without_alt = [i["raw"][:80] for i in images if not i["alt"].strip()]
    assert not without_alt, f"{name}: images need alt text (and remote ones show it offline)"
    _check_no_parameters_cell(driver, name)
    if Path(name).stem in CHAPTERS:
        _check_findings_first(driver, name)

    page_ids = set(driver.execute_script(
        "return Array.from(document.querySelectorAll('[id],[name]'))"
        ".map(e => e.id || e.getAttribute('name'));"))
    problems = _local_link_problems(page, driver.execute_script(_LINKS_JS), page_ids)
    assert not problems, f"{name}: broken internal links:\n" + "\n".join(problems)

    if Path(name).stem == SUMMARY_STEM:
        _check_summary(driver)
    _screenshot(driver, SHOTS / (name.replace("/", "_").removesuffix(".html") + ".png"))


def _check_no_parameters_cell(driver, name: str) -> None:
    """Neither the parameters cell nor papermill's injected-parameters cell is on the page."""
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, ".tag_parameters, .tag_injected-parameters")
    assert not [c for c in cells if c.is_displayed()], f"{name}: a parameters cell is shown"
    text = driver.find_element(By.TAG_NAME, "main").text
    assert "Injected parameters" not in text and "papermill overrides these" not in text, (
        f"{name}: the parameters cells' code is visible")


def _check_findings_first(driver, name: str) -> None:
    """The chapter's findings box exists, under its "What we found" heading, above the first
    figure (a local image, not the Colab badge)."""
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, FINDINGS)
    assert len(boxes) == 1, f"{name}: expected one findings box ({FINDINGS}), got {len(boxes)}"
    assert driver.find_elements(By.ID, "what-we-found"), f"{name}: no #what-we-found anchor"
    figures = [img for img in driver.find_elements(By.CSS_SELECTOR, "main img")
               if (img.get_attribute("src") or "").startswith(("file:", "data:"))]
    assert figures, f"{name}: no figure on the page"
    box_y, figure_y = boxes[0].location["y"], figures[0].location["y"]
    assert box_y < figure_y, (f"{name}: the findings box (y={box_y}) is below the first "
                              f"figure (y={figure_y})")
    heading = driver.find_element(By.ID, "what-we-found").location["y"]
    assert heading <= box_y, f"{name}: the box is above its 'What we found' heading"


def _screenshot(driver, path: Path) -> None:
    """A screenshot of the whole page (the window grows to the page's height, at most 12k px)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(800, min(int(height), 12000)))
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1600)


def _follow_redirect(driver, page: Path) -> Path:
    """The file shown after a meta-refresh redirect (index.html -> the root page) settles."""
    from selenium.webdriver.support.ui import WebDriverWait

    if driver.find_elements("css selector", 'meta[http-equiv="refresh" i]'):
        WebDriverWait(driver, 10).until(lambda d: d.current_url != page.as_uri())
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
    shown = Path(unquote(urlsplit(driver.current_url).path))
    assert shown.is_file(), f"{page.name} leads to {driver.current_url}, which does not exist"
    return shown


def _check_summary(driver) -> None:
    """The summary page shows the claims table: every claim of a chapter in the book, measured
    or "not run" (a claim whose chapter is not in the toc yet need not be there)."""
    from selenium.webdriver.common.by import By

    from kdlib import book
    from kdlib.experiments import verdicts

    headers = [[th.text.strip().lower() for th in table.find_elements(By.CSS_SELECTOR, "th")]
               for table in driver.find_elements(By.TAG_NAME, "table")]
    claims_tables = [h for h in headers if "verdict" in h and "chapter" in h]
    assert claims_tables, f"no table with 'verdict' and 'chapter' headers: {headers}"
    cells = [td.text.strip() for td in driver.find_elements(By.CSS_SELECTOR, "td")]
    in_book = set(book.toc_stems())
    missing = [cid for cid, (_, _, chapter) in verdicts.STATEMENTS.items()
               if chapter in in_book and cid not in cells]
    assert not missing, f"claims not on the summary page: {missing}"
