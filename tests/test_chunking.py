"""Sentence splitting and chunking: exact spans into the original text, whole sentences only."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rag.errors import SettingsError
from rag.ingest import cleaning
from rag.ingest.chunking import Chunk, Sentence, make_chunks, split_sentences

# Characters news text is made of: letters (some accented or non-Latin), digits, spaces (also no-break), tabs,
# line breaks (Unix, Windows, and the odd Unicode separator from scraped pages), sentence punctuation,
# straight and curly quotes, brackets and dashes.
ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "éèñçüøÉÑßłąжЖ中文"
    "     \t\n\n\r\u00a0\u2028\x0c\x85"
    ".,;:!?…-–—/|%$&'\"“”‘’«»()[]#*"
)
WORDS = [
    "the", "The", "Maduro", "said", "declared", "U.S.", "D.C.", "Mr.", "Dr.", "No.", "J.", "Nov.", "e.g.",
    "Washington", "peace", "forces", "17.1", "C", "Delhi", "“We", "want", "peace!”", "colonies!”",
    "(AP)", "—", "–", "...", "…", "?", "!", ".", ",", "said:", "“", "”", "‘", "’", "3.5%", "ÉLAN", "été",
    "中文",
]
SEPARATORS = [" ", " ", " ", " ", "\n", "\n\n", "\r\n", "  ", "\t", ". ", "! ", "? ", ".” ", "!” "]


@st.composite
def news_like_text(draw) -> str:
    """Words, abbreviations, quotes and punctuation joined by spaces and line breaks."""
    tokens = draw(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=120))
    return "".join(word + sep for word, sep in tokens)


ENDINGS = [".", "!", "?", "…", ".”", "!”", "?’", ".)", "...", "."]
INNER = [" ", " ", " ", " ", " ", " ", ", ", ". ", "! ", "? ", ".” ", " — ", "  "]


@st.composite
def prose_line(draw) -> str:
    """A paragraph line: at least eight words with sentence punctuation inside and at the end."""
    words = draw(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(INNER)), min_size=8, max_size=60))
    body = "".join(word + sep for word, sep in words).rstrip()
    return body + draw(st.sampled_from(ENDINGS))


@st.composite
def article_like_text(draw) -> str:
    """Paragraph lines mixed with short chrome lines and blank lines, with Unix or Windows line breaks."""
    short_line = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join)
    parts = draw(st.lists(st.one_of(prose_line(), short_line, st.just(""), st.text(ALPHABET, max_size=30)),
                          max_size=12))
    newline = draw(st.sampled_from(["\n", "\r\n", "\n\n"]))
    return draw(st.sampled_from(["", " ", "\n"])) + newline.join(parts)


TEXTS = st.one_of(st.text(alphabet=ALPHABET, max_size=400), news_like_text(), article_like_text())


def check_span(text: str, start: int, end: int) -> None:
    assert 0 <= start < end <= len(text)
    piece = text[start:end]
    assert piece == piece.strip(), repr(piece)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, max_chars=st.integers(1, 400), overlap=st.integers(0, 3))
@example(text="A headline\n\n“We want peace!” Maduro declared. Mr. Smith left the U.S. on Monday.\n",
         max_chars=20, overlap=1)
@example(text="\r\n \n", max_chars=1, overlap=0)
def test_sentences_and_chunks_are_exact_whole_sentence_spans_of_the_original_text(text, max_chars, overlap):
    blocks = cleaning.prose_blocks(text)
    for start, end in blocks:
        check_span(text, start, end)
    assert all(a[1] < b[0] for a, b in zip(blocks, blocks[1:], strict=False)), "blocks ordered, disjoint"

    sentence_blocks = split_sentences(text, blocks)
    assert len(sentence_blocks) == len(blocks)
    for (block_start, block_end), sentences in zip(blocks, sentence_blocks, strict=True):
        assert sentences, "every prose block has a sentence"
        for sentence in sentences:
            check_span(text, sentence.start, sentence.end)
            assert block_start <= sentence.start and sentence.end <= block_end
            assert any(p.start <= sentence.start and sentence.end <= p.end for p in cleaning.lines(text)), \
                "paragraphs are hard boundaries"
        assert all(a.end <= b.start for a, b in zip(sentences, sentences[1:], strict=False)), "ordered"

    chunks = make_chunks(sentence_blocks, max_chars, overlap)
    covered: set[Sentence] = set()
    for (block_start, block_end), sentences in zip(blocks, sentence_blocks, strict=True):
        block_chunks = [c for c in chunks if block_start <= c.start and c.end <= block_end]
        for chunk in block_chunks:
            check_span(text, chunk.start, chunk.end)
            assert chunk.sentences, "a chunk holds at least one sentence"
            # Never mid-sentence: a chunk starts where its first sentence starts and ends where its last ends.
            assert chunk.start == chunk.sentences[0].start and chunk.end == chunk.sentences[-1].end
            # Its sentences are a consecutive run of this block's sentences.
            first = sentences.index(chunk.sentences[0])
            assert list(chunk.sentences) == sentences[first : first + len(chunk.sentences)]
            if chunk.end - chunk.start > max_chars:
                assert len(chunk.sentences) == 1, "only a single over-long sentence may exceed max_chars"
            covered.update(chunk.sentences)
        for previous, following in zip(block_chunks, block_chunks[1:], strict=False):
            assert previous.start < following.start, "chunks move forward"
            shared = set(previous.sentences) & set(following.sentences)
            assert len(shared) <= overlap
        assert set(sentences) <= covered, "every sentence is in some chunk"
    # No chunk straddles two blocks or lies outside every block.
    assert sum(1 for c in chunks if any(a <= c.start and c.end <= b for a, b in blocks)) == len(chunks)


def sentences_of(text: str) -> list[str]:
    [sentences] = split_sentences(text, [(0, len(text))])
    return [text[s.start : s.end] for s in sentences]


@pytest.mark.parametrize("text, expected", [
    ("U.S. President Donald Trump spoke to Mr. Maduro on Monday. The call was short.",
     ["U.S. President Donald Trump spoke to Mr. Maduro on Monday.", "The call was short."]),
    ("Washington D.C. Mayor Muriel Bowser said the city was calm. Protests were small.",
     ["Washington D.C. Mayor Muriel Bowser said the city was calm.", "Protests were small."]),
    ("Dr. Ana Ruiz and Sen. Dave McCormick met in Caracas. They spoke for an hour.",
     ["Dr. Ana Ruiz and Sen. Dave McCormick met in Caracas.", "They spoke for an hour."]),
    ("The report by J. R. Smith was published on Nov. 21. Officials declined to comment.",
     ["The report by J. R. Smith was published on Nov. 21.", "Officials declined to comment."]),
])
def test_abbreviations_and_initials_do_not_end_a_sentence(text, expected):
    assert sentences_of(text) == expected


def test_a_quotation_followed_by_its_attribution_is_one_sentence():
    text = ("“We want peace, but peace with sovereignty, equality, freedom! We do not want a slave’s peace, "
            "nor the peace of colonies!” Maduro declared, accusing Washington of trying to seize Venezuela’s "
            "oil. His rhetoric signals a clear strategy.")
    assert sentences_of(text) == [
        "“We want peace, but peace with sovereignty, equality, freedom!",
        "We do not want a slave’s peace, nor the peace of colonies!” Maduro declared, accusing Washington "
        "of trying to seize Venezuela’s oil.",
        "His rhetoric signals a clear strategy.",
    ]


def test_a_quotation_followed_by_a_new_sentence_is_split():
    text = "“We want peace!” The crowd cheered loudly. “Leave now,” an official said."
    assert sentences_of(text) == [
        "“We want peace!”", "The crowd cheered loudly.", "“Leave now,” an official said.",
    ]


def test_a_line_break_ends_a_sentence_unless_the_line_continues_in_lower_case():
    text = "A headline without a full stop\nThe body starts here and goes on\r\nand on, without punctuation"
    assert sentences_of(text) == [
        "A headline without a full stop", "The body starts here and goes on\r\nand on, without punctuation",
    ]


def test_hard_wrapped_paragraphs_keep_their_sentences_whole():
    wrapped = (
        "The storm that hit the northern coast on Monday night destroyed\n"
        "dozens of boats in the harbour, the coast guard said on Tuesday.\n"
        "Crews worked through the night to pull survivors from the water and\n"
        "the mayor praised their courage. It rained.\n\n"
        "Officials said the harbour would reopen next week after repairs to\n"
        "the outer pier were finished, and that ferries would run from May.\n"
    )
    assert [" ".join(s.split()) for s in sentences_of(wrapped)] == [
        "The storm that hit the northern coast on Monday night destroyed dozens of boats in the harbour, "
        "the coast guard said on Tuesday.",
        "Crews worked through the night to pull survivors from the water and the mayor praised their courage.",
        "It rained.",
        "Officials said the harbour would reopen next week after repairs to the outer pier were finished, "
        "and that ferries would run from May.",
    ]


def test_spans_skip_surrounding_whitespace_but_keep_original_offsets():
    text = "   First sentence here.    Second one follows.   "
    [sentences] = split_sentences(text, [(0, len(text))])
    assert sentences == [Sentence(3, 23), Sentence(27, 46)]


def test_chunks_fill_up_to_max_chars_and_share_the_configured_overlap():
    text = " ".join(f"Sentence number {i} is here." for i in range(10))  # 26 characters each
    blocks = split_sentences(text, [(0, len(text))])
    chunks = make_chunks(blocks, max_chars=90, overlap=1)
    assert [len(c.sentences) for c in chunks] == [3, 3, 3, 3, 2]
    for previous, following in zip(chunks, chunks[1:], strict=False):
        assert previous.sentences[-1] == following.sentences[0]
    assert chunks[-1].sentences[-1] == blocks[0][-1]
    assert [len(c.sentences) for c in make_chunks(blocks, max_chars=90, overlap=0)] == [3, 3, 3, 1]


def test_a_sentence_longer_than_max_chars_is_a_chunk_of_its_own():
    text = "Short one. " + "This sentence is considerably longer than the limit allows. " + "Tail."
    blocks = split_sentences(text, [(0, len(text))])
    chunks = make_chunks(blocks, max_chars=20, overlap=1)
    assert [len(c.sentences) for c in chunks] == [1, 1, 1]
    assert [text[c.start : c.end] for c in chunks] == [text[s.start : s.end] for s in blocks[0]]


def test_chunks_never_span_two_blocks():
    text = "First block sentence one. First block sentence two.\nHEADING\nSecond block sentence one."
    blocks = [(0, 51), (60, len(text))]
    assert text[blocks[1][0] : blocks[1][1]] == "Second block sentence one."
    chunks = make_chunks(split_sentences(text, blocks), max_chars=1000, overlap=1)
    assert [(c.start, c.end) for c in chunks] == [(0, 51), (60, len(text))]
    assert all(isinstance(c, Chunk) for c in chunks)


@pytest.mark.parametrize("max_chars, overlap", [(0, 1), (-5, 0), (100, -1)])
def test_invalid_chunking_parameters_are_refused(max_chars, overlap):
    with pytest.raises(SettingsError):
        make_chunks([[Sentence(0, 5)]], max_chars, overlap)
