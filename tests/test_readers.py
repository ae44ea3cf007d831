"""Reading article files: supported formats, metadata, document ids, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.config import Config
from rag.errors import BadInput, FileProblem
from rag.index.build import build_index
from rag.index.catalog import IndexReader
from rag.ingest import readers
from rag.models.embedding import model_id

PARAGRAPH_1 = ("The harbour in the coastal town reopened on Tuesday morning after a storm closed it for "
               "three days, officials said.")
PARAGRAPH_2 = ("Fishing crews returned to the docks at dawn, and the harbour master said that damage to the "
               "outer pier was lighter than first feared.")
APPLES = "Apple growers across the valley expect a record harvest this autumn, the association said."

HTML_PAGE = f"""<!DOCTYPE html>
<html lang="en"><head><title>Harbour Reopens After Storm | Coastal Times</title>
<meta property="og:title" content="Harbour Reopens After Storm">
<meta property="article:published_time" content="2025-03-04T08:00:00Z">
<link rel="canonical" href="https://example.org/harbour-reopens">
</head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/world">World news</a></li>
<li><a href="/subscribe">Subscribe now</a></li></ul></nav></header>
<main><article>
<h1>Harbour Reopens After Storm</h1>
<p>{PARAGRAPH_1}</p>
<p>{PARAGRAPH_2}</p>
<p>Engineers will inspect the sea wall next week before larger cargo ships are allowed back in.</p>
</article></main>
<footer><p>Copyright 2025 Coastal Times. All rights reserved.</p>
<a href="/privacy">Privacy policy</a></footer>
</body></html>
"""


def load(path: Path, doc_id: str | None = None) -> list[readers.Document]:
    return list(readers.load_file(path, doc_id or path.name))


def load_written(path: Path, text: str) -> tuple[readers.Document, Path]:
    """Write one harbour story and read it back: its text is kept verbatim and its headline is the title."""
    path.write_text(text, encoding="utf-8")
    [doc] = load(path)
    assert doc.text == text
    assert doc.title == "Harbour Reopens After Storm"
    return doc, path


def test_plain_text_is_stored_exactly_as_the_decoded_file_with_title_and_date(tmp_path):
    text = f"Harbour Reopens After Storm\nPublished: March 4, 2025\n\n{PARAGRAPH_1}\n\n{PARAGRAPH_2}\n"
    doc, path = load_written(tmp_path / "harbour.txt", text)
    assert doc.date == "March 4, 2025"
    assert doc.id == "harbour.txt" and doc.path == str(path)
    assert [doc.text[a:b] for a, b in doc.blocks] == [f"{PARAGRAPH_1}\n\n{PARAGRAPH_2}"]
    assert doc.content_hash == readers.content_hash(text)


def test_markdown_heading_is_the_title_and_the_text_is_kept_verbatim(tmp_path):
    text = f"# Harbour Reopens After Storm\n\n*2025-03-04*\n\n{PARAGRAPH_1}\n"
    doc, _ = load_written(tmp_path / "harbour.md", text)
    assert doc.date == "2025-03-04"


def test_a_utf8_byte_order_mark_is_not_part_of_the_text(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + PARAGRAPH_1.encode("utf-8"))
    [doc] = load(path)
    assert doc.text == PARAGRAPH_1


def test_html_main_text_is_extracted_and_navigation_and_footer_are_dropped(tmp_path):
    path = tmp_path / "harbour.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    [doc] = load(path)
    assert PARAGRAPH_1 in doc.text and PARAGRAPH_2 in doc.text
    for chrome in ["Home", "World news", "Subscribe now", "Copyright", "Privacy policy", "<p>"]:
        assert chrome not in doc.text
    assert doc.title == "Harbour Reopens After Storm"
    assert doc.date == "2025-03-04"
    assert doc.url == "https://example.org/harbour-reopens"
    # Offsets point into the extracted text, and the prose blocks cover the paragraphs.
    indexed = " ".join(doc.text[a:b] for a, b in doc.blocks)
    assert PARAGRAPH_1 in indexed and PARAGRAPH_2 in indexed


def test_html_without_article_text_is_a_bad_input(tmp_path):
    path = tmp_path / "app.html"
    path.write_text("<html><head><title>Loading</title><script>var app = 1;</script></head>"
                    "<body><div id='app'></div></body></html>")
    with pytest.raises(BadInput, match="no article text"):
        load(path)


RECORD = {"title": "Harbour Reopens", "date": "2025-03-04", "url": "https://example.org/h",
          "source": "Coastal Times", "text": f"{PARAGRAPH_1}\n\n{PARAGRAPH_2}"}


def test_a_json_record_gives_one_document_with_its_metadata(tmp_path):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(RECORD), encoding="utf-8")
    [doc] = load(path)
    assert (doc.id, doc.title, doc.date, doc.url, doc.source) == (
        "record.json", "Harbour Reopens", "2025-03-04", "https://example.org/h", "Coastal Times")
    assert doc.text == RECORD["text"]


def test_a_json_list_gives_one_document_per_record(tmp_path):
    second = {"text": APPLES}
    path = tmp_path / "records.json"
    path.write_text(json.dumps([RECORD, second]), encoding="utf-8")
    docs = load(path)
    assert [d.id for d in docs] == ["records.json#1", "records.json#2"]
    assert docs[0].title == "Harbour Reopens"
    assert docs[1].text == second["text"]
    assert docs[1].title and docs[1].date is None and docs[1].url is None


def test_json_lines_give_one_document_per_line_with_their_metadata(tmp_path):
    other = dict(RECORD, title="Apple Harvest", source="Valley News", text=APPLES)
    path = tmp_path / "feed.jsonl"
    path.write_text(json.dumps(RECORD) + "\n\n" + json.dumps(other) + "\n", encoding="utf-8")
    docs = load(path)
    assert [d.id for d in docs] == ["feed.jsonl#1", "feed.jsonl#3"]
    assert [(d.title, d.source, d.date, d.url) for d in docs] == [
        ("Harbour Reopens", "Coastal Times", "2025-03-04", "https://example.org/h"),
        ("Apple Harvest", "Valley News", "2025-03-04", "https://example.org/h"),
    ]
    assert docs[1].text == other["text"]


def test_document_ids_are_paths_relative_to_the_indexed_folder(make_corpus, sample_articles):
    folder = make_corpus({
        "top.txt": sample_articles["harbour.txt"],
        "world/americas/story.md": sample_articles["orchard.txt"],
        "notes.csv": "not,an,article",   # other types inside a folder are skipped quietly
        ".hidden.txt": sample_articles["observatory.txt"],
    })
    found, errors = readers.discover([folder])
    assert errors == []
    assert [doc_id for _, doc_id in found] == ["top.txt", "world/americas/story.md"]
    found, errors = readers.discover([folder / "world" / "americas" / "story.md"])
    assert [doc_id for _, doc_id in found] == ["story.md"]


def test_windows_1252_text_is_decoded_not_refused(tmp_path):
    text = "Café owners “welcomed” the new rules – at last, they said on Monday morning."
    path = tmp_path / "cp1252.txt"
    path.write_bytes(text.encode("cp1252"))
    [doc] = load(path)
    assert doc.text == text


def test_latin1_bytes_that_are_not_valid_windows_1252_still_decode(tmp_path):
    data = "Naïve café owners welcomed the rules \x81 at last, they said on Monday.".encode("latin-1")
    path = tmp_path / "latin1.txt"
    path.write_bytes(data)
    [doc] = load(path)
    assert doc.text == data.decode("latin-1")


@pytest.mark.parametrize("name, content, message", [
    ("empty.txt", b"", "empty file"),
    ("blank.md", b"  \n\n\t \n", "empty file"),
    ("binary.txt", bytes(range(256)) * 4, "binary"),
    ("numbers.txt", b"12 34\n56 78\n", "no article text"),
    ("broken.json", b'{"text": "unterminated', "invalid JSON"),
    ("no_text.json", json.dumps({"title": "A headline only"}).encode(), "'text'"),
    ("text_not_string.json", json.dumps({"text": 42}).encode(), "'text'"),
    ("title_not_string.json", json.dumps(dict(RECORD, title=["a", "b"])).encode(), "'title'"),
    ("date_not_string.json", json.dumps(dict(RECORD, date=20250304)).encode(), "'date'"),
    ("not_objects.json", json.dumps(["just a string"]).encode(), "object"),
    ("empty_list.json", b"[]", "no records"),
    ("bad_line.jsonl", (json.dumps(RECORD) + "\n{oops\n").encode(), "line 2"),
    ("nested.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("nested_line.jsonl", (json.dumps(RECORD) + "\n" + "[" * 100_000 + "]" * 100_000).encode(),
     "line 2: JSON nested too deeply"),
])
def test_bad_files_raise_bad_input_with_a_one_line_reason(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadInput) as caught:
        load(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_file_named_explicitly_must_be_a_supported_type(tmp_path):
    path = tmp_path / "slides.pdf"
    path.write_bytes(b"%PDF-1.4")
    found, errors = readers.discover([path, tmp_path / "missing.txt"])
    assert found == []
    assert [str(e) for e in errors] == [
        f"{path}: unsupported file type (supported: {' '.join(readers.SUPPORTED_SUFFIXES)})",
        f"{tmp_path / 'missing.txt'}: no such file or folder",
    ]


def test_a_run_with_bad_files_reports_each_by_name_and_still_indexes_the_good_ones(
        tmp_path, make_corpus, sample_articles, embedder):
    folder = make_corpus({
        "harbour.txt": sample_articles["harbour.txt"],
        "feed.jsonl": json.dumps(RECORD) + "\n",
        "page.html": HTML_PAGE,
        "empty.txt": "",
        "binary.txt": b"\x00\x01\x02" * 100,
        "no_text.json": json.dumps({"title": "x"}),
    })
    unsupported = tmp_path / "slides.pdf"
    unsupported.write_bytes(b"%PDF-1.4")
    config = Config(index_dir=tmp_path / "index")
    problems: list[FileProblem] = []
    report = build_index([folder, unsupported], config, embedder=embedder, on_error=problems.append)

    assert sorted(report.added) == ["feed.jsonl#1", "harbour.txt", "page.html"]
    assert len(report.errors) == 4 and problems == report.errors
    for bad in ["empty.txt", "binary.txt", "no_text.json"]:
        [problem] = [e for e in report.errors if e.path == str(folder / bad)]
        assert "\n" not in str(problem)
    assert any(e.path == str(unsupported) and e.message.startswith("unsupported file type") for e in report.errors)

    reader = IndexReader(config.index_dir, expected_model=model_id())
    documents = {d.id: d for d in reader.documents()}
    assert sorted(documents) == ["feed.jsonl#1", "harbour.txt", "page.html"]
    assert documents["feed.jsonl#1"].title == "Harbour Reopens"
    assert documents["feed.jsonl#1"].source == "Coastal Times"
    assert documents["harbour.txt"].title == "Harbour Reopens After Three-Day Storm"
    assert documents["harbour.txt"].date == "March 4, 2025"
    assert documents["page.html"].date == "2025-03-04"
    # Offsets point into: the file for text, the record's "text" for JSON, the extracted text for HTML.
    assert reader.document_text("harbour.txt") == sample_articles["harbour.txt"]
    assert reader.document_text("feed.jsonl#1") == RECORD["text"]
    assert PARAGRAPH_1 in reader.document_text("page.html") and "Privacy policy" not in reader.document_text(
        "page.html")
    reader.close()
