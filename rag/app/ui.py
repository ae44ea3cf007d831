"""The chat UI (Gradio). It only translates between people and the Assistant.

Ask a question and the answer streams in; under it, every citation is a button: clicking one shows the
source article with the cited span highlighted in its surrounding text. Disagreement between sources and
abstentions get a visible callout; the passages searched are listed with their relevance.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import threading
from pathlib import Path

from rag.config import MODES, Config
from rag.errors import BadQuestion, SettingsError
from rag.ingest.readers import SUPPORTED_SUFFIXES
from rag.models import weights
from rag.progress import Reporter
from rag.qa.answers import Answer
from rag.qa.assistant import Assistant
from rag.text import MARKER

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
CONTEXT_CHARS = 600
NO_CITATION = "Citations appear here after an answer. Click one, or a [n] in the answer, to see its source."
ALL_SECTIONS = "All sections"
# Headlines listed at a time in "Browse the archive".
BROWSE_PAGE = 100

CSS = """
.callout {border-radius: 8px; padding: 10px 14px; margin: 4px 0;}
.callout.conflict {background: #fff4e5; border: 1px solid #f0a030;}
.callout.abstain {background: #eef2f7; border: 1px solid #8aa0b8;}
.callout.unverified {background: #fffbe6; border: 1px solid #d4b106;}
.source-view {font-size: 15px; line-height: 1.55; white-space: pre-wrap;}
.source-view mark {background: #ffe066; padding: 1px 0;}
.source-meta {color: #555; font-size: 13px; margin-bottom: 6px;}
.source-meta .headline {color: #111; font-size: 17px;}
#chat a[href^="#cite-"] {text-decoration: none; font-weight: 600; cursor: pointer;}
"""


def safe_upload_name(name: str) -> str:
    """A file name that cannot leave the uploads folder: base name only, plain characters."""
    base = os.path.basename(name.replace("\\", "/"))
    stem, dot, suffix = base.rpartition(".")
    suffix = re.sub(r"[^A-Za-z0-9]+", "", suffix).lower() if dot else ""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem if dot else base).strip("._") or "upload"
    return f"{stem[:80]}.{suffix}" if suffix else stem[:80]


class ChatApp:
    """State shared by every session: one Assistant (models loaded once), the uploads folder."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.assistant = Assistant(config)
        self.uploads_dir = config.uploads_dir

    # --- answering ------------------------------------------------------------------------------------
    def respond(self, message: str, history: list[dict], mode: str, k: int, model: str, section: str | None = None):
        """Stream (history, callout, citation choices, viewer, sources, last answer) as the answer arrives."""
        import gradio as gr

        # Only the newest answer's markers open citations (the citation list is the newest answer's).
        history = [dict(m, content=plain_markers(m["content"])) if m["role"] == "assistant" else m
                   for m in (history or [])]
        previous = next((m["content"] for m in reversed(history) if m["role"] == "user"), None)
        history.append({"role": "user", "content": message})
        history.append({"role": "assistant", "content": "…"})
        empty_choices = gr.update(choices=[], value=None)
        section = _chosen(section)
        yield history, "", empty_choices, NO_CITATION, empty_choices, None
        draft = ""
        try:
            for event in self.assistant.stream(message, mode=mode, k=int(k), model=model or None, context=previous,
                                               section=section):
                if event.kind == "status":
                    draft = ""  # a rewrite streams a new draft
                    history[-1] = {"role": "assistant", "content": f"*{event.text}…*"}
                    yield history, "", empty_choices, NO_CITATION, empty_choices, None
                elif event.kind == "token":
                    draft += event.text
                    history[-1] = {"role": "assistant", "content": f"*draft, being checked:* {draft}"}
                    yield history, "", empty_choices, NO_CITATION, empty_choices, None
                elif event.answer is not None:
                    answer = event.answer
                    history[-1] = {"role": "assistant", "content": linked_markers(answer)}
                    choices = [(citation_label(c), c.n) for c in answer.citations]
                    reader = self.assistant.retriever.reader
                    searched = one_per_article(answer.searched)
                    state = dict(answer.to_dict(), searched=[_searched_dict(message, p, reader) for p in searched])
                    yield (history, callout_html(answer), gr.update(choices=choices, value=None),
                           NO_CITATION, gr.update(choices=source_choices(state["searched"]), value=None), state)
        except BadQuestion as exc:
            history[-1] = {"role": "assistant", "content": f"Sorry: {exc}."}
            yield history, "", empty_choices, NO_CITATION, empty_choices, None

    def show_source(self, index: int | None, state: dict | None) -> str:
        """The article a searched passage comes from, with the passage highlighted."""
        if index is None or not state or int(index) >= len(state.get("searched", [])):
            return NO_CITATION
        passage = state["searched"][int(index)]
        return self.article_html(passage["doc"], (passage["start"], passage["end"]))

    def article_html(self, doc: str, span: tuple[int, int] | None = None) -> str:
        reader = self.assistant.retriever.reader
        record = reader.document(doc)
        return source_html({"doc": doc, "title": record.title, "start": span[0] if span else 0,
                            "end": span[1] if span else 0, "section": record.section},
                           reader.document_text(doc), whole=span is None)

    def show_article(self, doc: str | None) -> str:
        if not doc:
            return NO_CITATION
        return self.article_html(doc)

    def sections(self) -> list[str]:
        try:
            return [ALL_SECTIONS, *self.assistant.retriever.reader.sections()]
        except Exception:  # no index yet: the first question says so
            return [ALL_SECTIONS]

    def articles_in(self, section: str | None, order: str = "headline", cursor: str | None = None,
                    shown: int = 0):
        """One page of a section's headlines (every article's for every section) for the article picker, read from
        where the last page ended: (picker, the next page's cursor, how many were shown before the next page,
        whether there is a next page)."""
        import gradio as gr

        reader = self.assistant.retriever.reader
        wanted = _chosen(section)
        total = reader.sections().get(wanted, 0) if wanted else reader.document_count()
        records, following = reader.page(wanted, "date" if order == "date" else "headline", cursor, BROWSE_PAGE)
        first, last = shown + 1, shown + len(records)
        where = f" in {wanted}" if wanted else ""
        label = f"Articles: {total:,}{where}" + (f", showing {first:,}-{last:,}" if total > len(records) else "")
        choices = [(f"{r.title} ({r.id})", r.id) for r in records]
        return (gr.update(choices=choices, value=None, label=label), following, last,
                gr.update(interactive=following is not None))

    def next_page(self, section: str | None, order: str, cursor: str | None, shown: int):
        return self.articles_in(section, order, cursor, shown) if cursor else self.articles_in(section, order)

    def show_citation(self, n: int | None, state: dict | None) -> str:
        if n is None or not state:
            return NO_CITATION
        citation = next((c for c in state["citations"] if c["n"] == int(n)), None)
        if citation is None:
            return NO_CITATION
        reader = self.assistant.retriever.reader
        return source_html(dict(citation, section=reader.document(citation["doc"]).section),
                           reader.document_text(citation["doc"]))

    def warm_up(self) -> None:
        try:
            self.assistant.ask("warm-up", mode="extractive")
            if self.config.mode == "generative":
                self.assistant.warm_up_generator()
        except Exception as exc:  # an empty or damaged index: the first question will say so
            print(f"warm-up skipped: {exc}", flush=True)

    def api_ask(self, question: str, mode: str = "extractive", k: int = 8) -> dict:
        """The same answer as JSON, for scripts (``gradio_client``): ``Answer.to_dict()``."""
        return self.assistant.ask(question, mode=mode, k=int(k)).to_dict()

    # --- adding articles -------------------------------------------------------------------------------
    def add_articles(self, files: list | None, progress=None) -> str:
        from rag.index.build import build_index

        if not files:
            return "Choose one or more files first."
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        accepted, problems = [], []
        for item in files:
            source = Path(getattr(item, "name", item))
            original = getattr(item, "orig_name", None) or source.name
            name = safe_upload_name(original)
            if not name.lower().endswith(SUPPORTED_SUFFIXES):
                problems.append(f"{original}: not an article file (allowed: {' '.join(SUPPORTED_SUFFIXES)})")
                continue
            size = source.stat().st_size
            if size > MAX_UPLOAD_BYTES:
                problems.append(f"{original}: {size / 2**20:.1f} MB, over the {MAX_UPLOAD_BYTES // 2**20} MB limit")
                continue
            target = self.uploads_dir / name
            shutil.copyfile(source, target)
            accepted.append(target)
        reporter = Reporter("off")
        if progress is not None:
            progress(0.0, desc="indexing")

            def tell(label: str, done: int, total: int | None) -> None:
                progress((done / total) if total else None, desc=f"{label}: {done} of {total}" if total else label)

            reporter = Reporter("off", listener=tell)
        if accepted:
            report = build_index(accepted, self.config, embedder=self.assistant.embedder,
                                 id_base=self.uploads_dir.parent, progress=reporter)
            problems += [str(problem) for problem in report.errors]
            for problem in report.errors:
                failed = Path(problem.path)
                if failed.parent == self.uploads_dir:
                    failed.unlink(missing_ok=True)
            summary = (f"Indexed {len(report.added) + len(report.updated)} new article(s), "
                       f"{len(report.unchanged)} already there; {report.documents} in the index.")
        else:
            summary = "Nothing was indexed."
        if progress is not None:
            progress(1.0, desc="done")
        return "\n".join([summary] + [f"- {p}" for p in problems])


def _chosen(section: str | None) -> str | None:
    """The section picked in a dropdown, or None for every section."""
    return None if section in (None, "", ALL_SECTIONS) else section


def one_per_article(searched) -> list:
    """Each article searched once, with its best passage (passages come best first); an identical copy under
    another file name, with the same headline, is the same article to a reader."""
    seen: set[str] = set()
    kept = []
    for passage in searched:
        if passage.doc in seen or passage.title in seen:
            continue
        seen.update((passage.doc, passage.title))
        kept.append(passage)
    return kept


def _searched_dict(question: str, passage, reader) -> dict:
    """A searched passage as the sources panel shows it: headline, rank, relevance and why."""
    from rag.qa.retrieval import explain

    why = explain(question, passage, reader)
    return {"doc": passage.doc, "title": passage.title, "start": passage.start, "end": passage.end,
            "relevance": why.relevance, "because": why.because}


def citation_label(citation) -> str:
    quote = " ".join(citation.quote.split())
    return f"[{citation.n}] {citation.title}: “{quote[:70]}{'…' if len(quote) > 70 else ''}”"


_MARKER = re.compile(MARKER.pattern + r"(?!\()")  # not one already linked
_LINKED = re.compile(r"\[\[(\d+)\]\]\(#cite-\d+\)")


def linked_markers(answer: Answer) -> str:
    """The answer with each ``[n]`` a link: clicking it opens citation n's span in its article (see CLICK_JS)."""
    cited = {c.n for c in answer.citations}
    return _MARKER.sub(lambda m: f"[[{m.group(1)}]](#cite-{m.group(1)})" if int(m.group(1)) in cited else m.group(0),
                       answer.answer)


def plain_markers(text: str) -> str:
    return _LINKED.sub(lambda m: f"[{m.group(1)}]", text)


def _what_was_found(answer: Answer) -> str:
    """What the checks found of an unverified answer, so that the mark says something: whether each sentence's
    values and names are in the passage it cites."""
    if answer.sentences and all(s.stated for s in answer.sentences):
        return ("Every value and name in it was found in the passage it cites; the checks cannot tell whether that "
                "passage answers your question.")
    if any(s.stated for s in answer.sentences):
        return ("Some sentences were found in the passages they cite (values and names alike); the others only "
                "probably say what the passage says.")
    return "The evidence probably states this, but the checks could not find it there value for value."


def callout_html(answer: Answer) -> str:
    if answer.abstained:
        return (f'<div class="callout abstain"><b>No passage found that states the answer.</b> '
                f"{html.escape(answer.reason)}. Searched {len(answer.searched)} passages (listed under Sources): "
                f"what was not verified may still be there.</div>")
    unverified = "" if answer.verified else (
        '<div class="callout unverified"><b>Not verified: read the cited passage.</b> ' + _what_was_found(answer)
        + "</div>")
    if not answer.conflicts:
        return unverified
    cited = {c.n: c for c in answer.citations}
    rows = []
    for conflict in answer.conflicts:
        for value in conflict.values:
            sources = ", ".join(f'<span title="{html.escape(cited[n].doc)}">{html.escape(cited[n].title)} [{n}]</span>'
                                for n in value.citations if n in cited)
            rows.append(f"<li>“{html.escape(value.value)}”: {sources}</li>")
    return ('<div class="callout conflict"><b>The sources disagree.</b><ul>' + "".join(rows) + "</ul></div>"
            + unverified)


def source_choices(searched: list[dict]) -> list[tuple[str, int]]:
    """One line per searched passage: rank, headline, relevance on 0–100 and what matched."""
    return [(f"{rank}. {p['title']} · relevance {p['relevance']}/100 · {p['because']}", rank - 1)
            for rank, p in enumerate(searched, start=1)]


def source_html(citation: dict, text: str, whole: bool = False) -> str:
    """The article around a span (or ``whole``), the span highlighted; headline first, file and section after."""
    start, end = citation["start"], citation["end"]
    before_start = 0 if whole else max(0, start - CONTEXT_CHARS)
    after_end = len(text) if whole else min(len(text), end + CONTEXT_CHARS)
    before = ("…" if before_start else "") + html.escape(text[before_start:start])
    after = html.escape(text[end:after_end]) + ("…" if after_end < len(text) else "")
    section = f"section {html.escape(citation['section'])} · " if citation.get("section") else ""
    where = "whole article" if whole else f"characters {start}–{end}"
    mark = "" if whole else f'<mark class="cited-span">{html.escape(text[start:end])}</mark>'
    return (f'<div class="source-meta"><b class="headline">{html.escape(citation["title"])}</b><br>'
            f'{section}file {html.escape(citation["doc"])}, {where}</div>'
            f'<div class="source-view">{before}{mark}{after}</div>')


# Clicking a [n] marker in the answer opens citation n: the marker is a link to #cite-n, and this handler
# (installed once when the page loads) turns the click into a click on citation n in the citations list.
CLICK_JS = """
() => {
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a[href^="#cite-"]');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    const n = link.getAttribute('href').slice(6);
    const label = [...document.querySelectorAll('#citations label')]
      .find((l) => l.innerText.trim().startsWith('[' + n + ']'));
    if (label) { label.click(); document.querySelector('#viewer').scrollIntoView({block: 'nearest'}); }
  }, true);
}
"""


def build(app: ChatApp):
    import gradio as gr

    installed = weights.installed()
    sections = app.sections()
    with gr.Blocks(title="News QA") as demo:
        gr.Markdown("## News QA\nAsk about the indexed articles. Every claim is cited: click a [n] in the answer, "
                    "or a citation under it, to see the exact sentence in its article.")
        last_answer = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Conversation", height=420, elem_id="chat")
                with gr.Row():
                    question = gr.Textbox(placeholder="Ask a question about the articles…", show_label=False,
                                          scale=5, elem_id="question")
                    section = gr.Dropdown(sections, value=ALL_SECTIONS, show_label=False, scale=2,
                                          elem_id="section", info="Search in")
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                callout = gr.HTML(elem_id="callout")
                citations = gr.Radio(label="Citations: click one to see its source", choices=[],
                                     elem_id="citations")
                viewer = gr.HTML(NO_CITATION, elem_id="viewer")
            with gr.Column(scale=2):
                with gr.Accordion("Sources searched: click one to read its article", open=True):
                    sources = gr.Radio(choices=[], show_label=False, elem_id="sources")
                with gr.Accordion("Browse the archive", open=False) as browse:
                    browse_section = gr.Dropdown(sections, value=ALL_SECTIONS, label="Section",
                                                 elem_id="browse-section")
                    browse_order = gr.Radio(["headline", "date"], value="headline", label="Order: headline A-Z "
                                            "or newest first", elem_id="browse-order")
                    article = gr.Dropdown([], label="Articles", elem_id="article", filterable=True)
                    next_page = gr.Button("Next page", elem_id="browse-next", interactive=False, size="sm")
                    browse_cursor, browse_shown = gr.State(None), gr.State(0)
                with gr.Accordion("Settings", open=False):
                    mode = gr.Radio(list(MODES), value=app.config.mode, label="Mode", elem_id="mode")
                    k = gr.Slider(1, 20, value=app.config.k, step=1, label="Passages to retrieve")
                    model = gr.Dropdown(installed, value=installed[0] if installed else None, label="Model")
                with gr.Accordion("Add articles", open=False):
                    files = gr.File(file_count="multiple", file_types=list(SUPPORTED_SUFFIXES),
                                    label=f"{' '.join(SUPPORTED_SUFFIXES)}, up to {MAX_UPLOAD_BYTES // 2**20} MB each",
                                    elem_id="upload")
                    add = gr.Button("Index these files", elem_id="add")
                    added = gr.Markdown(elem_id="added")
        outputs = [chat, callout, citations, viewer, sources, last_answer]
        for trigger in (question.submit, send.click):
            trigger(app.respond, [question, chat, mode, k, model, section], outputs, api_visibility="private").then(
                lambda: "", None, question, api_visibility="private")
        citations.change(app.show_citation, [citations, last_answer], viewer, api_visibility="private")
        sources.change(app.show_source, [sources, last_answer], viewer, api_visibility="private")
        # Listed a page at a time, when the panel is opened, not with every page load (an archive has thousands
        # of headlines, and a page is read from where the last ended: rag.index.catalog.IndexReader.page).
        paged = [article, browse_cursor, browse_shown, next_page]
        for changed in (browse_section.change, browse_order.change, browse.expand):
            changed(app.articles_in, [browse_section, browse_order], paged, api_visibility="private")
        next_page.click(app.next_page, [browse_section, browse_order, browse_cursor, browse_shown], paged,
                        api_visibility="private")
        article.change(app.show_article, article, viewer, api_visibility="private")

        def add_with_progress(files, progress=gr.Progress()):  # noqa: B008 (Gradio injects progress this way)
            return app.add_articles(files, progress)

        add.click(add_with_progress, files, added, api_visibility="private")
        api_question = gr.Textbox(visible=False)
        api_mode = gr.Textbox(visible=False)
        api_k = gr.Number(visible=False)
        api_out = gr.JSON(visible=False)
        gr.Button(visible=False).click(app.api_ask, [api_question, api_mode, api_k], api_out, api_name="ask")
    return demo


def serve(config: Config) -> None:
    """Serve the chat UI on ``config.host``:``config.port``; other interfaces than loopback need ``config.auth``."""
    host, port, auth = config.host, config.port, config.credentials
    if host not in {"127.0.0.1", "localhost", "::1"} and auth is None:
        raise SettingsError(f"refusing to serve on {host} without a username and password: set RAG_AUTH=user:password")
    app = ChatApp(config)
    demo = build(app)
    # Load the models while the page comes up, so the first question does not wait for them.
    threading.Thread(target=app.warm_up, daemon=True).start()
    demo.queue(default_concurrency_limit=4).launch(
        server_name=host, server_port=port, auth=auth, css=CSS, js=CLICK_JS, show_error=True, inbrowser=False,
        allowed_paths=[], footer_links=[],
    )
