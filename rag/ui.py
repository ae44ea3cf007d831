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

from rag import models
from rag.answers import Answer
from rag.config import Config
from rag.pipeline import MODES, Assistant, BadQuestion

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".htm", ".json", ".jsonl")
CONTEXT_CHARS = 600
NO_CITATION = "Citations appear here after an answer. Click one to see its source."

CSS = """
.callout {border-radius: 8px; padding: 10px 14px; margin: 4px 0;}
.callout.conflict {background: #fff4e5; border: 1px solid #f0a030;}
.callout.abstain {background: #eef2f7; border: 1px solid #8aa0b8;}
.source-view {font-size: 15px; line-height: 1.55; white-space: pre-wrap;}
.source-view mark {background: #ffe066; padding: 1px 0;}
.source-meta {color: #555; font-size: 13px; margin-bottom: 6px;}
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
    def respond(self, message: str, history: list[dict], mode: str, k: int, model: str):
        """Stream (history, callout, citation choices, viewer, sources, last answer) as the answer arrives."""
        import gradio as gr

        history = list(history or [])
        previous = next((m["content"] for m in reversed(history) if m["role"] == "user"), None)
        history.append({"role": "user", "content": message})
        history.append({"role": "assistant", "content": "…"})
        empty_choices = gr.update(choices=[], value=None)
        yield history, "", empty_choices, NO_CITATION, "", None
        draft = ""
        try:
            for event in self.assistant.stream(message, mode=mode, k=int(k), model=model or None, context=previous):
                if event.kind == "status":
                    history[-1] = {"role": "assistant", "content": f"*{event.text}…*"}
                    yield history, "", empty_choices, NO_CITATION, "", None
                elif event.kind == "token":
                    draft += event.text
                    history[-1] = {"role": "assistant", "content": f"*draft, being checked:* {draft}"}
                    yield history, "", empty_choices, NO_CITATION, "", None
                elif event.answer is not None:
                    answer = event.answer
                    history[-1] = {"role": "assistant", "content": answer.answer}
                    choices = [(citation_label(c), c.n) for c in answer.citations]
                    yield (history, callout_html(answer), gr.update(choices=choices, value=None),
                           NO_CITATION, sources_html(answer), answer.to_dict())
        except BadQuestion as exc:
            history[-1] = {"role": "assistant", "content": f"Sorry: {exc}."}
            yield history, "", empty_choices, NO_CITATION, "", None

    def show_citation(self, n: int | None, state: dict | None) -> str:
        if n is None or not state:
            return NO_CITATION
        citation = next((c for c in state["citations"] if c["n"] == int(n)), None)
        if citation is None:
            return NO_CITATION
        text = self.assistant.retriever.reader.document_text(citation["doc"])
        return source_html(citation, text)

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
        from rag.indexing import build_index

        if not files:
            return "Choose one or more files first."
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        accepted, problems = [], []
        for item in files:
            source = Path(getattr(item, "name", item))
            original = getattr(item, "orig_name", None) or source.name
            name = safe_upload_name(original)
            if not name.lower().endswith(UPLOAD_SUFFIXES):
                problems.append(f"{original}: not an article file (allowed: {' '.join(UPLOAD_SUFFIXES)})")
                continue
            size = source.stat().st_size
            if size > MAX_UPLOAD_BYTES:
                problems.append(f"{original}: {size / 2**20:.1f} MB, over the {MAX_UPLOAD_BYTES // 2**20} MB limit")
                continue
            target = self.uploads_dir / name
            shutil.copyfile(source, target)
            accepted.append(target)
        if progress is not None:
            progress(0.2, desc="indexing")
        if accepted:
            report = build_index(accepted, self.config, embedder=self.assistant.embedder,
                                 id_base=self.uploads_dir.parent)
            problems += report.errors
            for line in report.errors:
                failed = Path(line.split(":", 1)[0])
                if failed.parent == self.uploads_dir:
                    failed.unlink(missing_ok=True)
            summary = (f"Indexed {len(report.added) + len(report.updated)} new article(s), "
                       f"{len(report.unchanged)} already there; {report.documents} in the index.")
        else:
            summary = "Nothing was indexed."
        if progress is not None:
            progress(1.0, desc="done")
        return "\n".join([summary] + [f"- {p}" for p in problems])


def citation_label(citation) -> str:
    quote = " ".join(citation.quote.split())
    return f"[{citation.n}] {citation.doc}: “{quote[:70]}{'…' if len(quote) > 70 else ''}”"


def callout_html(answer: Answer) -> str:
    if answer.abstained:
        return (f'<div class="callout abstain"><b>Not in the articles.</b> {html.escape(answer.reason)}. '
                f"Searched {len(answer.searched)} passages (listed under Sources).</div>")
    if not answer.conflicts:
        return ""
    docs = {c.n: c.doc for c in answer.citations}
    rows = []
    for conflict in answer.conflicts:
        for value in conflict.values:
            sources = ", ".join(f"{docs[n]} [{n}]" for n in value.citations if n in docs)
            rows.append(f"<li>“{html.escape(value.value)}”: {html.escape(sources)}</li>")
    return ('<div class="callout conflict"><b>The sources disagree.</b><ul>' + "".join(rows) + "</ul></div>")


def sources_html(answer: Answer) -> str:
    if not answer.searched:
        return ""
    rows = []
    for passage in answer.searched:
        text = html.escape(" ".join(passage.text.split())[:240])
        rows.append(f"<li><b>{html.escape(passage.doc)}</b> [{passage.start}:{passage.end}] "
                    f"relevance {passage.score:.3f}<br><small>{text}…</small></li>")
    return "<ol>" + "".join(rows) + "</ol>"


def source_html(citation: dict, text: str) -> str:
    start, end = citation["start"], citation["end"]
    before_start = max(0, start - CONTEXT_CHARS)
    after_end = min(len(text), end + CONTEXT_CHARS)
    before = ("…" if before_start else "") + html.escape(text[before_start:start])
    after = html.escape(text[end:after_end]) + ("…" if after_end < len(text) else "")
    return (f'<div class="source-meta"><b>{html.escape(citation["title"])}</b><br>'
            f'file {html.escape(citation["doc"])}, characters {start}–{end}</div>'
            f'<div class="source-view">{before}<mark class="cited-span">{html.escape(text[start:end])}</mark>'
            f"{after}</div>")


def build(app: ChatApp):
    import gradio as gr

    installed = models.installed()
    with gr.Blocks(title="News QA") as demo:
        gr.Markdown("## News QA\nAsk about the indexed articles. Every claim is cited; click a citation "
                    "to see the exact sentence in its article.")
        last_answer = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Conversation", height=420, elem_id="chat")
                with gr.Row():
                    question = gr.Textbox(placeholder="Ask a question about the articles…", show_label=False,
                                          scale=5, elem_id="question")
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                callout = gr.HTML(elem_id="callout")
                citations = gr.Radio(label="Citations: click one to see its source", choices=[],
                                     elem_id="citations")
                viewer = gr.HTML(NO_CITATION, elem_id="viewer")
            with gr.Column(scale=2):
                with gr.Accordion("Sources searched", open=True):
                    sources = gr.HTML(elem_id="sources")
                with gr.Accordion("Settings", open=False):
                    mode = gr.Radio(list(MODES), value=app.config.mode, label="Mode", elem_id="mode")
                    k = gr.Slider(1, 20, value=app.config.k, step=1, label="Passages to retrieve")
                    model = gr.Dropdown(installed, value=installed[0] if installed else None, label="Model")
                with gr.Accordion("Add articles", open=False):
                    files = gr.File(file_count="multiple", file_types=list(UPLOAD_SUFFIXES),
                                    label=".txt .md .html .json .jsonl, up to 10 MB each", elem_id="upload")
                    add = gr.Button("Index these files", elem_id="add")
                    added = gr.Markdown(elem_id="added")
        outputs = [chat, callout, citations, viewer, sources, last_answer]
        for trigger in (question.submit, send.click):
            trigger(app.respond, [question, chat, mode, k, model], outputs, api_name=False).then(
                lambda: "", None, question, api_name=False)
        citations.change(app.show_citation, [citations, last_answer], viewer, api_name=False)

        def add_with_progress(files, progress=gr.Progress()):  # noqa: B008 (Gradio injects progress this way)
            return app.add_articles(files, progress)

        add.click(add_with_progress, files, added, api_name=False)
        api_question = gr.Textbox(visible=False)
        api_mode = gr.Textbox(visible=False)
        api_k = gr.Number(visible=False)
        api_out = gr.JSON(visible=False)
        gr.Button(visible=False).click(app.api_ask, [api_question, api_mode, api_k], api_out, api_name="ask")
    return demo


def serve(config: Config, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None) -> None:
    if host not in {"127.0.0.1", "localhost", "::1"} and auth is None:
        raise ValueError(f"refusing to serve on {host} without a username and password: set RAG_AUTH=user:password")
    app = ChatApp(config)
    demo = build(app)
    # Load the models while the page comes up, so the first question does not wait for them.
    threading.Thread(target=app.warm_up, daemon=True).start()
    demo.queue(default_concurrency_limit=4).launch(
        server_name=host, server_port=port, auth=auth, css=CSS, show_error=True, inbrowser=False,
        allowed_paths=[], footer_links=[],
    )
