"""The chat UI as a person uses it: the real app in a real headless Chromium, and through gradio_client."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from server_helpers import free_port, wait_until_up
from shared_data import BBC

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
# The browser tests answer extractively to keep the suite fast; UI_TEST_MODE=generative runs them with the
# default model (as for the README screenshot: UPDATE_SCREENSHOTS=1 UI_TEST_MODE=generative).
UI_MODE = os.environ.get("UI_TEST_MODE", "extractive")
CONFLICT_QUESTION = "How did the United States classify the Cartel de los Soles?"
NEW_ARTICLE = (
    "Lighthouse Keeper Retires After Forty Years\n\n"
    "Margit Halvorsen, the keeper of the Skarvik lighthouse, retired on Friday after forty years of service, "
    "the coastal authority said.\n\n"
    "The lighthouse will be run automatically from a control room in Bergen from next month, officials said.\n"
)


def _serving(index_dir: Path, workdir: Path, **env_overrides: str):
    """`rag serve` over ``index_dir`` on a free loopback port: (process, url)."""
    port = free_port()
    env = dict(os.environ, RAG_UPLOADS_DIR=str(workdir / "uploads"), GRADIO_ANALYTICS_ENABLED="False",
               **env_overrides)
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.app.cli", "serve", "--index-dir", str(index_dir), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(bundled_index, tmp_path_factory):
    """`rag serve` on a free loopback port over a copy of the bundled index, answering extractively."""
    workdir = tmp_path_factory.mktemp("ui")
    index_dir = workdir / "index"
    shutil.copytree(bundled_index.index_dir, index_dir)
    process, url = _serving(index_dir, workdir, RAG_MODE=UI_MODE)
    try:
        wait_until_up(url, process)
        yield {"url": url, "workdir": workdir}
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make test does)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def ask(page, question: str) -> None:
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_function(
        "() => document.querySelectorAll('#citations label').length > 0 || "
        "document.querySelector('#callout .abstain') !== null", timeout=300_000)


def test_a_citation_click_shows_the_exact_cited_span_in_its_article(server, browser):
    from gradio_client import Client

    expected = Client(server["url"], verbose=False).predict(CONFLICT_QUESTION, UI_MODE, 8, api_name="/ask")
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(server["url"])
    ask(page, CONFLICT_QUESTION)
    labels = page.locator("#citations label")
    assert labels.count() == len(expected["citations"]) >= 2
    labels.nth(1).click()
    page.wait_for_selector("#viewer mark.cited-span")
    assert page.inner_text("#viewer mark.cited-span") == expected["citations"][1]["quote"]
    assert expected["citations"][1]["doc"] in page.inner_text("#viewer")
    assert page.inner_text("#viewer .headline") == expected["citations"][1]["title"]
    callout = page.inner_text("#callout")
    assert "disagree" in callout
    for value in ("foreign terrorist organization", "international terrorist organization"):
        assert value in callout
    page.screenshot(path=str(server["workdir"] / "answer.png"), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copyfile(server["workdir"] / "answer.png", ROOT / "docs" / "screenshot.png")


def test_an_unanswerable_question_is_declined_plainly_with_what_was_searched(server, browser):
    page = browser.new_page()
    page.goto(server["url"])
    ask(page, "Who won the 2022 football World Cup final?")
    callout = page.inner_text("#callout")
    assert "No passage found that states the answer" in callout
    assert "may still be there" in callout, "an abstention never claims the articles lack the answer"
    assert page.locator("#sources label").count() > 0


def test_an_answer_the_checks_could_not_confirm_is_marked_not_verified(server, browser):
    page = browser.new_page()
    page.goto(server["url"])
    # Extractive mode has no model to check with: its answers are shown, and marked.
    ask(page, "Who brokered the call between Trump and Maduro?")
    assert "Not verified: read the cited passage" in page.inner_text("#callout")


def upload(page, server, path: Path, until: str) -> None:
    """Open the page, add ``path`` through the upload panel, and wait until the result line says ``until``."""
    page.goto(server["url"])
    page.click("text=Add articles")
    page.set_input_files("#upload input[type=file]", str(path))
    page.wait_for_timeout(1000)
    page.click("#add")
    page.wait_for_function(f"() => document.querySelector('#added').innerText.includes({until!r})", timeout=120_000)


def test_an_uploaded_article_is_indexed_and_answerable_at_once(server, browser, tmp_path):
    article = tmp_path / "lighthouse keeper.txt"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    upload(page, server, article, until="Indexed")
    assert "Indexed 1 new article" in page.inner_text("#added")
    ask(page, "Who retired as keeper of the Skarvik lighthouse?")
    page.locator("#citations label").first.click()
    page.wait_for_selector("#viewer mark.cited-span")
    assert "uploads/lighthouse_keeper.txt" in page.inner_text("#viewer")
    assert "Halvorsen" in page.inner_text("#viewer mark.cited-span")


def test_a_bad_upload_gets_a_clear_message_and_does_not_harm_the_index(server, browser, tmp_path):
    bad = tmp_path / "payload.txt"
    bad.write_bytes(b"\x00\x01binary\x00" * 100)
    page = browser.new_page()
    upload(page, server, bad, until="binary")
    assert not (server["workdir"] / "uploads" / "payload.txt").exists()
    ask(page, CONFLICT_QUESTION)
    assert page.locator("#citations label").count() >= 2


def test_the_app_answers_scripts_through_gradio_client(server):
    from gradio_client import Client

    result = Client(server["url"], verbose=False).predict("Where is the US naval build-up?", "extractive", 5,
                                                          api_name="/ask")
    assert set(result) == {"id", "question", "answer", "abstained", "citations", "conflicts", "timings", "model",
                           "mode", "verified", "sentences", "checked"}
    assert "caribbean" in result["answer"].lower()


def test_serving_beyond_loopback_requires_a_password(bundled_index):
    completed = subprocess.run(
        [sys.executable, "-m", "rag.app.cli", "serve", "--index-dir", str(bundled_index.index_dir), "--host", "0.0.0.0",
         "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ, RAG_AUTH=""),
    )
    assert completed.returncode != 0
    assert "RAG_AUTH" in completed.stderr


# --- an archive of a few hundred real news articles --------------------------------------------------------

ARCHIVE_QUESTION = "Which company is Britain's only producer of feta cheese?"
ARCHIVE_SOURCE = "business_135.txt"


@pytest.fixture(scope="module")
def archive_server(tmp_path_factory):
    """`rag serve` over ~300 BBC articles from five sections (every 7th file, and the one the question is about;
    UI_ARCHIVE_EVERY=1 takes all 2,225, as for the README's screenshot)."""
    if not BBC.is_dir():
        pytest.skip(f"needs the BBC archive at {BBC}")
    workdir = tmp_path_factory.mktemp("archive")
    corpus = workdir / "bbc"
    corpus.mkdir()
    names = sorted(p.name for p in BBC.glob("*.txt"))
    for name in {*names[:: int(os.environ.get("UI_ARCHIVE_EVERY", "7"))], ARCHIVE_SOURCE}:
        shutil.copyfile(BBC / name, corpus / name)
    index_dir = workdir / "index"
    built = subprocess.run([sys.executable, "-m", "rag.app.cli", "index", str(corpus), "--index-dir", str(index_dir)],
                           cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr
    port = free_port()
    env = dict(os.environ, RAG_MODE="extractive", RAG_UPLOADS_DIR=str(workdir / "uploads"),
               GRADIO_ANALYTICS_ENABLED="False")
    process = subprocess.Popen(
        [sys.executable, "app.py", "--index-dir", str(index_dir), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield {"url": url, "workdir": workdir, "documents": len(list(corpus.iterdir()))}
    finally:
        process.terminate()
        process.wait(timeout=30)


def choose(page, dropdown: str, option: str) -> None:
    """Pick ``option`` in a Gradio dropdown, as a person does: open it, click the option."""
    page.click(f"{dropdown} input")
    page.get_by_role("option", name=option, exact=True).first.click()


def test_in_an_archive_sources_are_headlines_with_a_relevance_a_person_reads(archive_server, browser):
    assert archive_server["documents"] >= 300
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(archive_server["url"])
    choose(page, "#section", "business")
    ask(page, ARCHIVE_QUESTION)
    sources = [t.strip() for t in page.locator("#sources label").all_inner_texts()]
    assert sources and all(".txt" not in s for s in sources)  # headlines, not file names
    headlines = [s.split(" · ")[0].split(". ", 1)[1] for s in sources]
    assert len(headlines) == len(set(headlines)), "each article once, with its best passage"
    assert sources[0].startswith("1. ") and "relevance" in sources[0] and "/100" in sources[0]
    assert "matched" in sources[0] and "feta" in sources[0].lower()
    # Every source is from the section asked about: opening one shows its article, its section and file.
    page.locator("#sources label").first.click()
    page.wait_for_selector("#viewer .source-meta")
    assert "section business" in page.inner_text("#viewer .source-meta")


def test_a_citation_marker_in_the_answer_opens_the_cited_span(archive_server, browser):
    from gradio_client import Client

    expected = Client(archive_server["url"], verbose=False).predict(ARCHIVE_QUESTION, "extractive", 8,
                                                                    api_name="/ask")
    assert expected["citations"], expected["answer"]
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(archive_server["url"])
    ask(page, ARCHIVE_QUESTION)
    marker = page.locator('#chat a[href="#cite-1"]')
    assert marker.count() >= 1
    marker.first.click()
    page.wait_for_selector("#viewer mark.cited-span")
    assert page.inner_text("#viewer mark.cited-span") == expected["citations"][0]["quote"]
    assert page.inner_text("#viewer .headline") == expected["citations"][0]["title"]
    assert expected["citations"][0]["doc"] in page.inner_text("#viewer .source-meta")
    label = page.locator("#citations label").first.inner_text()
    assert expected["citations"][0]["title"] in label and ".txt" not in label
    page.screenshot(path=str(archive_server["workdir"] / "archive.png"), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copyfile(archive_server["workdir"] / "archive.png", ROOT / "docs" / "archive.png")


def test_the_archive_can_be_browsed_by_section_and_any_article_opened(archive_server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(archive_server["url"])
    page.get_by_text("Browse the archive").click()
    choose(page, "#browse-section", "sport")
    page.wait_for_function("() => document.querySelector('#article').innerText.includes('in sport')")
    page.click("#article input")
    options = page.locator("#article").get_by_role("option")
    assert options.count() > 50
    first = options.first.inner_text()
    options.first.click()
    page.wait_for_selector("#viewer .headline")
    assert page.inner_text("#viewer .headline") in first
    meta = page.inner_text("#viewer .source-meta")
    assert "section sport" in meta and "whole article" in meta


def test_the_whole_archive_is_browsed_a_page_at_a_time_from_where_the_last_page_ended(archive_server, browser):
    from rag.app.ui import BROWSE_PAGE

    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(archive_server["url"])
    page.get_by_text("Browse the archive").click()
    page.wait_for_function("() => document.querySelector('#article').innerText.includes('showing 1-')")
    label = page.inner_text("#article")
    total = int(re.search(r"Articles: ([\d,]+)", label).group(1).replace(",", ""))
    assert total > BROWSE_PAGE and f"showing 1-{BROWSE_PAGE}" in label

    def listed() -> list[str]:
        page.click("#article input")
        names = page.locator("#article").get_by_role("option").all_inner_texts()
        page.keyboard.press("Escape")
        return names

    first = listed()
    assert len(first) == BROWSE_PAGE and first == sorted(first, key=str.casefold)
    page.click("#browse-next")
    page.wait_for_function(f"() => document.querySelector('#article').innerText.includes('showing {BROWSE_PAGE + 1}-')")
    second = listed()
    assert second and not set(first) & set(second), "the next page starts where the first ended"
    assert first[-1].casefold() <= second[0].casefold()


# --- generative mode and the password ----------------------------------------------------------------------------

@pytest.mark.slow
def test_in_generative_mode_the_draft_streams_then_the_checked_answer_replaces_it(server, browser):
    page = browser.new_page()
    page.goto(server["url"])
    page.click("text=Settings")
    page.click("#mode label:has-text('generative')")
    page.fill("#question textarea", "In which region is the US naval build-up?")
    page.click("#ask")
    # The default model's draft appears word by word, marked as being checked, before the answer replaces it.
    page.wait_for_function("() => document.querySelector('#chat').innerText.includes('draft, being checked')",
                           timeout=300_000)
    page.wait_for_function("() => document.querySelectorAll('#citations label').length > 0", timeout=300_000)
    chat = page.inner_text("#chat")
    assert "draft, being checked" not in chat
    assert "Caribbean" in chat


def test_with_a_password_set_the_page_asks_for_it_and_refuses_a_wrong_one(bundled_index, browser, tmp_path):
    process, url = _serving(bundled_index.index_dir, tmp_path, RAG_AUTH="editor:harbour-lights", RAG_MODE="extractive")
    try:
        wait_until_up(url, process)
        page = browser.new_page()
        page.goto(url)
        assert page.locator("#question textarea").count() == 0, "nothing of the app before logging in"
        page.fill("input[type=text]", "editor")
        page.fill("input[type=password]", "wrong")
        page.click("button:has-text('Login')")
        page.wait_for_selector("text=Incorrect", timeout=30_000)
        assert page.locator("#question textarea").count() == 0
        page.fill("input[type=text]", "editor")
        page.fill("input[type=password]", "harbour-lights")
        page.click("button:has-text('Login')")
        page.wait_for_selector("#question textarea", timeout=60_000)
        ask(page, "In which region is the US naval build-up?")
        assert "Caribbean" in page.inner_text("#chat")
    finally:
        process.terminate()
        process.wait(timeout=30)
