"""One Assistant, many threads: the UI resumes a streaming answer on whichever worker thread is free, so a
stream's ``next()`` may come from a different thread each time, two streams may be read at once, and a stream
may be left unfinished. Real index, real embedding model, real SmolLM2 (the model's thread is rag.models.llm's)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle

import pytest

from rag.qa.answers import Answer
from rag.qa.assistant import Assistant, Event

TIMEOUT_S = 900  # a regression fails instead of hanging; SmolLM2 answers in seconds even on a busy machine
AIRSPACE = "Does the United States have the legal authority to close another country's airspace?"
REGION = "In which region has the US concentrated its naval build-up?"


@pytest.fixture(scope="module")
def small_model_assistant(bundled_index, embedder) -> Assistant:
    # As in test_assistant.py: SmolLM2 under the lexical checks (the judge's model checks are tested below, on the
    # Generator itself, because the calibrated judge asks only the default model).
    return Assistant(bundled_index.replace(mode="generative", model_path="smollm2-135m", judge="lexical"),
                     embedder=embedder)


@pytest.fixture(scope="module")
def threads():
    """Two named threads, X and Y, that run whatever they are handed."""
    x = ThreadPoolExecutor(max_workers=1, thread_name_prefix="X")
    y = ThreadPoolExecutor(max_workers=1, thread_name_prefix="Y")
    yield x, y
    x.shutdown()
    y.shutdown()


def same_answer(answer: Answer, alone: Answer) -> bool:
    return (answer.answer, answer.citations, answer.abstained, answer.prompt_tokens) == \
        (alone.answer, alone.citations, alone.abstained, alone.prompt_tokens)


def test_two_streams_read_in_turn_from_two_threads_give_the_answers_each_gives_alone(small_model_assistant, threads):
    alone_events = {q: list(small_model_assistant.stream(q)) for q in (AIRSPACE, REGION)}
    alone = {q: e[-1].answer for q, e in alone_events.items()}
    assert all(not a.abstained and a.citations for a in alone.values())
    x, y = threads
    streams = {AIRSPACE: small_model_assistant.stream(AIRSPACE), REGION: small_model_assistant.stream(REGION)}
    events: dict[str, list[Event]] = {q: [] for q in streams}
    readers: dict[str, set[str]] = {q: set() for q in streams}

    def step(question: str):
        readers[question].add(threading.current_thread().name)
        return next(streams[question], None)

    # Each stream's next() alternates between X and Y, and the two streams alternate: X reads the first, Y the
    # second, then Y the first and X the second, and so on.
    turns = cycle([(AIRSPACE, x), (REGION, y), (AIRSPACE, y), (REGION, x)])
    while any(not e or e[-1].kind != "answer" for e in events.values()):
        question, thread = next(turns)
        if events[question] and events[question][-1].kind == "answer":
            continue
        event = thread.submit(step, question).result(timeout=TIMEOUT_S)
        assert event is not None, f"{question!r} ended without an answer"
        events[question].append(event)

    for question, seen in events.items():
        assert {name.split("_")[0] for name in readers[question]} == {"X", "Y"}
        assert any(e.kind == "token" for e in seen)
        assert [e.kind for e in seen].count("answer") == 1
        answer = seen[-1].answer
        assert answer.question == question and answer.mode == "generative"
        assert same_answer(answer, alone[question]), (answer.answer, alone[question].answer)
        # The same events in the same order: every token streamed belongs to this question's draft.
        assert [(e.kind, e.text) for e in seen] == [(e.kind, e.text) for e in alone_events[question]]


@pytest.mark.parametrize("left", ["closed", "left open"])
def test_a_stream_left_after_its_first_token_does_not_hold_up_the_next_question(small_model_assistant, threads,
                                                                                left):
    alone = small_model_assistant.ask(REGION)
    x, y = threads
    abandoned = small_model_assistant.stream(AIRSPACE)

    def first_token() -> Event:
        return next(e for e in abandoned if e.kind == "token")

    assert x.submit(first_token).result(timeout=TIMEOUT_S).kind == "token"
    if left == "closed":
        abandoned.close()
    # The next question, asked on another thread, is answered, and as if nothing had been asked before it.
    answer = y.submit(small_model_assistant.ask, REGION).result(timeout=TIMEOUT_S)
    assert same_answer(answer, alone), (answer.answer, alone.answer)
    abandoned.close()


def test_a_judge_check_asked_while_another_thread_streams_waits_its_turn_and_reads_the_same(small_model_assistant,
                                                                                           threads):
    from rag.models.llm import Generator

    generator: Generator = small_model_assistant.generator()
    evidence = [(1, "The call, reportedly brokered by Brazil, Qatar, and Turkey, was a final attempt at a peaceful "
                    "exit."), (2, "Maduro was asked to resign and leave the country by Friday.")]
    check = "Does the evidence state the answer?"
    before = generator.yes_no("Who brokered the call?", evidence, check).log_odds
    x, y = threads
    stream = generator.stream("What was Maduro asked to do?", evidence[1:])
    assert x.submit(next, stream).result(timeout=TIMEOUT_S)  # the model is writing this answer on its thread
    during = y.submit(generator.yes_no, "Who brokered the call?", evidence, check).result(timeout=TIMEOUT_S)

    def finish():
        while True:
            try:
                next(stream)
            except StopIteration as done:
                return done.value

    written = y.submit(finish).result(timeout=TIMEOUT_S)
    assert during.log_odds == pytest.approx(before, abs=1e-3)
    assert written.text.strip() and written.completion_tokens > 0
    again = generator.generate("What was Maduro asked to do?", evidence[1:])  # uninterrupted, on this thread
    assert (written.text, written.prompt_tokens, written.completion_tokens) == \
        (again.text, again.prompt_tokens, again.completion_tokens)
