"""The catalog's typed reads: every stored span, by row and by document name, and a document's sentences."""

from __future__ import annotations

import numpy as np


def test_span_rows_are_every_stored_chunk_and_sentence_row_by_id(bundled_reader):
    chunks, sentences = bundled_reader.span_rows("chunk"), bundled_reader.span_rows("sentence")
    assert len(chunks) == bundled_reader.chunk_count > 0 and len(sentences) > len(chunks)
    for rows in (chunks, sentences):
        assert [r.id for r in rows] == sorted({r.id for r in rows})
    records = bundled_reader.chunks([r.id for r in chunks])
    for row in chunks:
        assert (row.content_hash, row.start, row.end) == (records[row.id].content_hash, records[row.id].start,
                                                          records[row.id].end)
        np.testing.assert_array_equal(row.vector, bundled_reader.chunk_vector(row.id))


def test_document_spans_are_each_documents_chunks_and_sentences_in_text_order(bundled_reader):
    spans = bundled_reader.document_spans("chunk")
    assert spans == sorted(spans)
    for doc in bundled_reader.documents():
        records = bundled_reader.chunks(bundled_reader.chunk_ids_of(doc.id))
        assert [(d, s, e) for d, s, e in spans if d == doc.id] == sorted(
            (doc.id, r.start, r.end) for r in records.values())
        sentences = bundled_reader.sentences_of(doc.id)
        assert [(d, s, e) for d, s, e in bundled_reader.document_spans("sentence") if d == doc.id] == [
            (doc.id, s.start, s.end) for s in sentences]


def test_the_sentences_of_a_document_follow_each_other_and_are_slices_of_its_text(bundled_reader):
    doc = bundled_reader.documents()[0]
    text = bundled_reader.document_text(doc.id)
    sentences = bundled_reader.sentences_of(doc.id)
    assert len(sentences) > 3
    for sentence in sentences:
        assert sentence.doc == doc.id and sentence.text == text[sentence.start : sentence.end]
    for before, after in zip(sentences, sentences[1:], strict=False):
        assert bundled_reader.neighbours(before)[1] == after
