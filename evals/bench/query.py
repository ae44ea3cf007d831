"""Per-stage query latency on the default answering path, and the language model's speed."""

from __future__ import annotations

import time
from typing import Any

from evals.bench.timing import dev_questions, ms, percentile_of
from rag.config import Config


def query_stages(config: Config, generative_questions: int, questions: list[str] | None = None) -> dict:
    """Per-stage latency over ``questions`` (the seed dev questions by default) on the default answering path.

    Retrieval's stages are measured around each one's public call. ``gather_ms`` is the assistant's own gather
    (``Assistant.prepare``: retrieval, evidence selection, screening and conflicts, as the configured policy does
    them), ``evidence_ms`` what it takes beyond a search of the same text, and ``retrieval_and_evidence_ms`` is
    the whole of it. With ``generative_questions``: the model on the evidence it reads, the policy's check of
    what it wrote, and each stage of whole answers."""
    from rag.qa.assistant import Assistant
    from rag.qa.question import parse

    assistant = Assistant(config)
    retriever = assistant.retriever
    reader = retriever.reader
    assistant.embedder.embed(["warm-up"])
    questions = questions or dev_questions()
    stages: dict[str, list[float]] = {k: [] for k in ("embed_ms", "dense_ms", "bm25_ms", "fusion_ms", "evidence_ms",
                                                      "retrieval_and_evidence_ms", "gather_ms")}
    for text in questions:
        question = parse(text)
        t0 = time.perf_counter()
        vector = assistant.embedder.embed_one(question.focus)
        t1 = time.perf_counter()
        reader.dense(vector, config.candidates)
        t2 = time.perf_counter()
        reader.lexical(question.focus, config.candidates)
        t3 = time.perf_counter()
        retriever.search(question.focus, config.evidence_passages, query_vector=vector)
        t4 = time.perf_counter()
        prepared = assistant.prepare(text)
        t5 = time.perf_counter()
        # The text gather searched, searched alone (its embedding included, as gather embeds it): what gather
        # takes beyond this is the evidence.
        retriever.search(prepared.search_text, max(config.k, config.evidence_passages))
        t6 = time.perf_counter()
        stages["embed_ms"].append(ms(t1 - t0))
        stages["dense_ms"].append(ms(t2 - t1))
        stages["bm25_ms"].append(ms(t3 - t2))
        # search() repeats dense and lexical search: what it adds beyond them is fusion and metadata.
        stages["fusion_ms"].append(max(ms(t4 - t3) - stages["dense_ms"][-1] - stages["bm25_ms"][-1], 0.0))
        stages["gather_ms"].append(ms(t5 - t4))
        stages["evidence_ms"].append(max(ms(t5 - t4) - ms(t6 - t5), 0.0))
        stages["retrieval_and_evidence_ms"].append(ms(t5 - t4))
    result: dict[str, Any] = {k: {"p50": percentile_of(v, 50), "p95": percentile_of(v, 95)} for k, v in stages.items()}
    if generative_questions:
        generator = assistant.generator()
        # The check each written answer faces: the judge's under the fitted policy, word overlap under the lexical.
        judge = assistant.judge() if assistant.policy.judged else None
        prepared_questions = [assistant.prepare(text) for text in questions[:generative_questions]]
        prompts, first, speed, totals, check_ms = [], [], [], [], []
        for prepared in prepared_questions:
            shown = [(e.n, e.text) for e in prepared.prompt_evidence]
            draft = generator.generate(prepared.search_text, shown)
            started = time.perf_counter()
            assistant.mechanism.check(judge, draft.text, prepared, config)
            check_ms.append(ms(time.perf_counter() - started))
            prompts.append(draft.prompt_tokens)
            first.append(draft.first_token_ms)
            totals.append(draft.total_ms)
            writing = (draft.total_ms - draft.first_token_ms) / 1000
            if draft.completion_tokens > 1 and writing > 0:
                speed.append((draft.completion_tokens - 1) / writing)
        # The same questions with llama.cpp's cache emptied first: what reusing the fixed prefix saves.
        cold_first = []
        for prepared in prepared_questions:
            generator.llm.reset()
            shown = [(e.n, e.text) for e in prepared.prompt_evidence]
            cold_first.append(generator.generate(prepared.search_text, shown).first_token_ms)
        # Whole answers with the judge: its share of the answer's time and of the tokens the model read.
        answers = [assistant.ask(text, mode="generative") for text in questions[:generative_questions]]
        answer_ms = [a.timings["total_ms"] for a in answers]
        judge_ms = [a.timings.get("judge_ms", 0.0) for a in answers]
        judge_tokens = [a.judge_tokens for a in answers]
        read = [a.judge_tokens + a.prompt_tokens for a in answers]
        # Each stage of those answers, in the order they ran; an answer that skipped a stage counts 0 ms for it.
        answer_stages = dict.fromkeys(key for a in answers for key in a.timings)
        result["generation"] = {
            "model": generator.name, "questions": len(prompts), "judge": config.judge,
            "answer_with_judge_ms_p50": percentile_of(answer_ms, 50), "judge_ms_p50": percentile_of(judge_ms, 50),
            "judge_share_of_time": round(sum(judge_ms) / max(sum(answer_ms), 1e-9), 3),
            "judge_tokens_p50": percentile_of(judge_tokens, 50),
            "judge_share_of_tokens_read": round(sum(judge_tokens) / max(sum(read), 1), 3),
            "time_to_first_token_ms_p50_with_empty_cache": percentile_of(cold_first, 50),
            "evidence_sentences_read_p50": percentile_of([len(p.prompt_evidence) for p in prepared_questions], 50),
            "prompt_tokens_p50": percentile_of(prompts, 50), "prompt_tokens_p95": percentile_of(prompts, 95),
            "time_to_first_token_ms_p50": percentile_of(first, 50),
            "time_to_first_token_ms_p95": percentile_of(first, 95),
            "generate_ms_p50": percentile_of(totals, 50), "tokens_per_s_p50": percentile_of(speed, 50),
            "check_ms_p50": percentile_of(check_ms, 50),
            **{f"answer_{key}_p50": percentile_of([a.timings.get(key, 0.0) for a in answers], 50)
               for key in answer_stages},
            **llama_speed(generator.llm, " ".join(questions)),
        }
    return result


def llama_speed(llm, text: str, prompt_tokens: int = 256, new_tokens: int = 32) -> dict:
    """llama.cpp alone on a fixed prompt (``text`` repeated to ``prompt_tokens`` tokens, cache emptied
    first), then greedy writing: the machine's speed for this model at the time of the run, so that
    generation figures from different hours can be compared."""
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False)
    tokens = (tokens * (prompt_tokens // max(len(tokens), 1) + 1))[:prompt_tokens]
    llm.reset()
    started = first = time.perf_counter()
    written = 0
    for _ in llm.generate(tokens, temp=0.0, top_k=1, reset=True):
        written += 1
        if written == 1:
            first = time.perf_counter()
        if written > new_tokens:
            break
    finished = time.perf_counter()
    llm.reset()
    return {"llama_read_tokens_per_s": round(prompt_tokens / (first - started), 1),
            "llama_write_tokens_per_s": round(new_tokens / (finished - first), 1)}
