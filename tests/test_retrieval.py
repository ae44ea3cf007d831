"""Hybrid retrieval over the bundled articles: gold evidence in the top 5, several sources in view, and
passages that carry exact offsets."""

from __future__ import annotations

import pytest

from rag.qa.retrieval import Passage, reciprocal_rank_fusion

TOP = 5


def gold_spans(reader, item) -> list[tuple[str, int, int]]:
    spans = []
    for support in item["supporting"]:
        text = reader.document_text(support["doc"])
        start = text.find(support["quote"])
        assert start >= 0, f"{item['id']}: supporting quote not found in {support['doc']}"
        spans.append((support["doc"], start, start + len(support["quote"])))
    return spans


def overlaps(passage: Passage, span: tuple[str, int, int]) -> bool:
    doc, start, end = span
    return passage.doc == doc and passage.chunk.start < end and start < passage.chunk.end


def test_gold_evidence_is_in_the_top_5_for_at_least_90_percent_of_answerable_dev_questions(
        bundled_retriever, dev_qa):
    answerable = [item for item in dev_qa if item["answer"] is not None]
    assert len(answerable) >= 10
    missed = []
    for item in answerable:
        passages = bundled_retriever.search(item["question"], k=TOP)
        assert len(passages) == TOP
        spans = gold_spans(bundled_retriever.reader, item)
        if not any(overlaps(p, span) for p in passages for span in spans):
            missed.append(item["id"])
    assert len(missed) <= 0.1 * len(answerable), f"gold evidence missing from top {TOP}: {missed}"


def test_questions_that_several_articles_report_bring_back_several_articles(bundled_retriever, dev_qa):
    reported_widely = [item for item in dev_qa
                       if item["answer"] is not None and len({s["doc"] for s in item["supporting"]}) >= 3]
    assert any("Caribbean" in item["answer"] for item in reported_widely)
    for item in reported_widely:
        passages = bundled_retriever.search(item["question"], k=TOP)
        assert len({p.doc for p in passages}) >= 3, (item["id"], [p.doc for p in passages])


def test_no_article_takes_more_than_its_share_before_others_had_a_turn(bundled_retriever, dev_qa):
    limit = bundled_retriever.config.max_chunks_per_doc
    for item in dev_qa:
        passages = bundled_retriever.search(item["question"], k=TOP)
        docs = [p.doc for p in passages]
        for i, doc in enumerate(docs):
            if docs[: i + 1].count(doc) > limit:
                # Only once every other retrieved article is already shown may one exceed the limit.
                assert len(set(docs)) == len(set(docs[:i])), (item["id"], docs)


def test_passages_are_unique_and_ranked_by_fused_score_within_the_diverse_head(bundled_retriever):
    passages = bundled_retriever.search("airspace closure over Venezuela", k=8)
    assert len(passages) == 8
    assert len({p.chunk.id for p in passages}) == 8
    limit = bundled_retriever.config.max_chunks_per_doc
    head = [p for i, p in enumerate(passages) if [q.doc for q in passages[: i + 1]].count(p.doc) <= limit]
    assert [p.score for p in head] == sorted((p.score for p in head), reverse=True)


def test_passage_dicts_carry_exact_offsets_into_the_document(bundled_retriever):
    for query in ["safe passage for Maduro and his family", "What did Maduro say about peace?"]:
        passages = bundled_retriever.search(query, k=TOP)
        assert passages
        for passage in passages:
            data = passage.to_dict()
            assert {"doc", "title", "start", "end", "text", "score"} <= set(data)
            text = bundled_retriever.reader.document_text(data["doc"])
            assert data["text"] == text[data["start"] : data["end"]]
            assert data["title"] == bundled_retriever.reader.document(data["doc"]).title
            assert isinstance(data["score"], float) and data["score"] > 0
            assert data["duplicates"] == []


def test_page_chrome_is_never_retrieved_even_when_asked_for(bundled_retriever, dev_qa):
    [trap] = [item for item in dev_qa if item["type"] == "boilerplate_trap"]
    chrome = ["Fill out my online form", "17.1 C", "Delhi", "Related articles", "Recent articles", "spot_img",
              "Published:"]
    queries = [trap["question"], "Fill out my online form", "weather 17.1 C Delhi", "spot_img recent"]
    for query in queries:
        for passage in bundled_retriever.search(query, k=8):
            assert not [piece for piece in chrome if piece in passage.text]


def test_k_bounds_the_number_of_passages(bundled_retriever):
    assert len(bundled_retriever.search("Maduro", k=1)) == 1
    assert len(bundled_retriever.search("Maduro", k=3)) == 3
    total = bundled_retriever.reader.chunk_count
    assert len(bundled_retriever.search("Maduro", k=total + 10)) == total


def test_a_query_with_no_words_still_returns_dense_results(bundled_retriever):
    passages = bundled_retriever.search("?!", k=3)
    assert len(passages) == 3


def test_reciprocal_rank_fusion_rewards_items_ranked_high_in_both_lists():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[4] == pytest.approx(1 / 63)
    assert sorted(fused, key=lambda i: -fused[i]) == [1, 3, 2, 4]


def test_the_package_exposes_search_for_one_off_queries(bundled_index):
    from rag import search

    passages = search("Who offered safe passage?", index_dir=bundled_index.index_dir, k=3)
    assert len(passages) == 3 and all(isinstance(p, Passage) for p in passages)
    assert all(p.chunk.text == p.text for p in passages)
