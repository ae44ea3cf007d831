"""Chrome removal: page furniture is never indexed, by a structural rule rather than a list of strings,
and it is never cut out of the stored text that offsets point into."""

from __future__ import annotations

import pytest

from rag.config import Config
from rag.index.engines import chunk_document
from rag.ingest import cleaning, readers

CHROME_000 = [
    "17.1 C", "Delhi", "Fill out my online form.", "Published:", "Related articles", "Recent articles",
    "spot_img",
]


def chrome_article(articles_dir):
    [path] = sorted(articles_dir.glob("000_*.txt"))
    return path


@pytest.mark.parametrize("chrome", CHROME_000)
def test_chrome_of_the_bundled_page_is_in_no_chunk_and_no_sentence_of_the_index(bundled_spans, chrome):
    assert {span.kind for span in bundled_spans} == {"chunk", "sentence"}
    offending = [(span.doc, span.kind, span.start) for span in bundled_spans if chrome in span.text]
    assert offending == []


def test_chrome_stays_in_the_stored_document_text(bundled_reader, articles_dir):
    path = chrome_article(articles_dir)
    stored = bundled_reader.document_text(path.name)
    assert stored == path.read_bytes().decode("utf-8")
    for chrome in CHROME_000:
        assert chrome in stored


def test_the_prose_of_the_chrome_page_is_indexed(bundled_spans, articles_dir):
    """Leaving chrome out must not cost the article: every paragraph of 25+ words is covered by sentences."""
    path = chrome_article(articles_dir)
    text = path.read_text(encoding="utf-8")
    sentences = [s for s in bundled_spans if s.doc == path.name and s.kind == "sentence"]
    covered = set()
    for s in sentences:
        covered.update(range(s.start, s.end))
    long_lines = [ln for ln in cleaning.lines(text) if ln.words >= cleaning.LONG_LINE_WORDS]
    assert len(long_lines) >= 10
    for ln in long_lines:
        letters = [i for i in range(ln.start, ln.end) if text[i].isalpha()]
        assert all(i in covered for i in letters), text[ln.start : ln.end][:80]


OTHER_SITE = """\
Home | World | Politics | Business | Sport
Subscribe
Sign in

Bridge Repairs Finish Two Weeks Early
By Staff Reporter
Updated 09:41

Share this:
Facebook
X
Email

Repairs to the old river bridge finished two weeks early on Friday, the city's transport office said.

The bridge had been closed to cars since spring, when inspectors found cracks in its arches. Buses will \
return to the route on Monday morning, and cyclists can use the new lane from the same day onwards.
Advertisement
Local shops near the bridge said trade fell by a third during the closure and welcomed the reopening.

Read more
Tags: transport, city hall
© 2025 Example News Ltd
Cookie settings
"""
OTHER_CHROME = ["Home | World", "Subscribe", "Sign in", "By Staff Reporter", "Updated 09:41", "Share this:",
                "Facebook", "Email", "Advertisement", "Read more", "Tags:", "© 2025", "Cookie settings"]
OTHER_PROSE = [
    "Repairs to the old river bridge finished two weeks early on Friday, the city's transport office said.",
    "The bridge had been closed to cars since spring, when inspectors found cracks in its arches.",
    "Buses will return to the route on Monday morning, and cyclists can use the new lane from the same day "
    "onwards.",
    "Local shops near the bridge said trade fell by a third during the closure and welcomed the reopening.",
]


def test_chrome_of_another_site_is_left_out_by_the_same_general_rule():
    doc = readers.make_document("other.txt", "other.txt", OTHER_SITE)
    chunks, sentences = chunk_document(doc, Config())
    indexed = [OTHER_SITE[c.start : c.end] for c in chunks] + [OTHER_SITE[s.start : s.end] for s in sentences]
    for chrome in OTHER_CHROME:
        assert not any(chrome in piece for piece in indexed), chrome
    assert [OTHER_SITE[s.start : s.end] for s in sentences] == OTHER_PROSE
    assert doc.text == OTHER_SITE


def test_an_advertisement_line_inside_the_article_splits_it_into_separate_prose_blocks():
    blocks = cleaning.prose_blocks(OTHER_SITE)
    ad = OTHER_SITE.index("Advertisement")
    assert len(blocks) == 2
    assert all(not (start <= ad < end) for start, end in blocks)


def test_headline_and_dateline_are_not_prose_but_are_found_as_metadata():
    text = ("Harbour Reopens After Storm\nPublished: March 4, 2025\n\n"
            "The fishing harbour reopened on Tuesday after a winter storm closed it for three days.")
    doc = readers.make_document("harbour.txt", "harbour.txt", text)
    assert doc.title == "Harbour Reopens After Storm"
    assert doc.date == "March 4, 2025"
    [(start, end)] = doc.blocks
    assert doc.text[start:end].startswith("The fishing harbour")


@pytest.mark.parametrize("dateline, expected", [
    ("Published: 2025-11-30", "2025-11-30"),
    ("Posted Nov. 30, 2025 at noon", "Nov. 30, 2025"),
    ("30 November 2025 | World", "30 November 2025"),
    ("Updated 09:41", None),
])
def test_find_date_reads_common_datelines(dateline, expected):
    assert cleaning.find_date(f"Some Headline Here\n{dateline}\n\nBody text follows here.") == expected


def test_a_short_text_without_sentence_length_lines_is_still_indexed():
    """A one-line record or caption has no long prose line; its content must not vanish."""
    for text in ["Storm closes harbour.", "Harbour closed", "  Ceasefire holds in the north.  \n"]:
        blocks = cleaning.prose_blocks(text)
        assert blocks, text
        assert all(text[a:b] == text[a:b].strip() and a < b for a, b in blocks)


def test_text_with_no_words_has_no_prose():
    assert cleaning.prose_blocks("") == []
    assert cleaning.prose_blocks("  \n\t\n 12 34 \n---\n") == []
