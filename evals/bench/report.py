"""The table ``rag bench`` prints from its report."""

from __future__ import annotations


def render(report: dict) -> str:
    machine = report.get("machine", {})
    lines = [f"machine: {machine.get('cpus')} CPUs, Python loop of 1e6 steps {machine.get('python_loop_1e6_ms')} ms, "
             f"float32 matmul {machine.get('float32_matmul_gflops')} GFLOP/s"]
    if "startup" in report:
        lines.append("start-up")
        lines += [f"  {k:34} {v:>10}" for k, v in report["startup"].items()]
    if "indexing" in report:
        lines.append("indexing")
        for name, row in report["indexing"].items():
            lines.append(f"  {name:18} {row['documents']:>6} docs {row['chunks']:>6} chunks {row['seconds']:>7} s "
                         f"{row['documents_per_s']:>7} docs/s {row['chunks_per_s']:>7} chunks/s")
    ratio = report.get("index_time_ratio")
    if ratio:
        lines.append(f"rag index against a plain encode of the same {ratio['chunks']:,} chunk texts "
                     f"({ratio['documents']:,} articles; best of {len(ratio['rounds_s']['rag_index'])} alternating "
                     f"rounds): {ratio['rag_index']} s against {ratio['sentence_transformers_encode']} s, "
                     f"{ratio['index_to_encode']}x")
    speed = report.get("embedding_throughput")
    if speed:
        lines.append(f"embedding (benchmark passages: {speed['texts']} chunk and sentence texts, best of "
                     f"{len(speed['rounds_s']['rag'])} alternating rounds)")
        lines.append(f"  SentenceTransformer.encode {speed['sentence_transformers_texts_per_s']:>8} texts/s "
                     f"{speed['sentence_transformers_tokens_per_s']:>6} tokens/s")
        lines.append(f"  rag Embedder ({speed['backend']:5})      {speed['rag_texts_per_s']:>8} texts/s "
                     f"{speed['rag_tokens_per_s']:>6} tokens/s   "
                     f"{speed['speedup']}x, max vector difference {speed['max_vector_difference']:.1e}")
        dev = speed["dev_retrieval"]
        lines.append(f"  dev set, bundled articles indexed and searched with each backend: same top {dev['k']} "
                     f"on {dev['same_top_k']}/{dev['questions']} questions")
        for row in speed.get("runtimes") or []:
            lines.append(f"  transformer alone, batch {row['batch']:>6}: tokens/s best (median) torch "
                         f"{row['torch_tokens_per_s_best']} ({row['torch_tokens_per_s_median']}), onnxruntime "
                         f"{row['onnxruntime_tokens_per_s_best']} ({row['onnxruntime_tokens_per_s_median']})")
    engines = report.get("ingestion_engines")
    if engines:
        lines.append("ingestion engines (benchmark passages, whole build incl. model loading)")
        for name in ("local", "ray"):
            row = engines[name]
            extra = f"  (+{row['startup_s']} s starting Ray)" if "startup_s" in row else ""
            lines.append(f"  {name:18} {row['documents']:>6} docs {row['chunks']:>6} chunks {row['seconds']:>7} s "
                         f"{row['documents_per_s']:>7} docs/s {row['chunks_per_s']:>7} chunks/s{extra}")
        lines.append(f"  same documents and spans: {engines['same_documents_and_spans']}, max vector difference "
                     f"{engines['max_vector_difference']}, Ray/local speed {engines['ray_speedup']}x")
    if "query" in report:
        lines.append("query stages (ms)            p50        p95")
        for name, row in report["query"].items():
            if name != "generation":
                lines.append(f"  {name:24} {row['p50']:>8} {row['p95']:>10}")
        for k, v in report["query"].get("generation", {}).items():
            lines.append(f"  {k:34} {v:>10}")
    llm = report.get("llm")
    if llm:
        lines.append(f"llama.cpp builds ({llm['model']}: read {llm['prompt_tokens']} tokens, write "
                     f"{llm['new_tokens']}; median of {llm['rounds']} alternating runs, each a fresh process)")
        lines.append("  build     read tok/s  ratio   write tok/s  ratio   same text   kernels")
        for name, row in llm["variants"].items():
            lines.append(f"  {name:8} {row['read_tokens_per_s']:>11} {row['read_ratio']:>6}x "
                         f"{row['write_tokens_per_s']:>12} {row['write_ratio']:>6}x "
                         f"{str(row['same_text_as_avx2']):>10}   {row['kernels']}")
        lines.append(f"  run here by default: {llm['chosen_by_default']}; with RAG_LLAMA_CPU=auto: "
                     f"{llm.get('chosen_by_auto', llm['chosen_by_default'])}")
        answers = llm.get("answers")
        if answers:
            lines.append(f"  whole answers to {answers['questions']} questions, the builds taking turns (ms)")
            for name, row in answers["builds"].items():
                lines.append(f"  {name:8} p50 {row['answer_ms_p50']:>9} ({row['p50_ratio']}x)  p95 "
                             f"{row['answer_ms_p95']:>9}  first drafted token p50 {row['first_token_ms_p50']}  "
                             f"tokens read p50 {row['judge_tokens_p50']} (prompt {row['prompt_tokens_p50']})  "
                             f"same answer as avx2 {row['same_answer_as_avx2']}/{answers['questions']}")
    if "dense_scaling" in report:
        lines.append("dense search scaling (synthetic 384-d vectors, k=10; ms p50/p95)")
        for row in report["dense_scaling"]:
            lines.append(f"  {row['vectors']:>9} vectors  flat {row['flat_ms_p50']}/{row['flat_ms_p95']}  "
                         f"HNSW built in {row['hnsw_build_s']} s, rag uses efSearch {row['rag_ef_search']}")
            for ef in row["hnsw"]:
                lines.append("    HNSW " + "  ".join(f"{k}={v}" for k, v in ef.items()))
    if "stores" in report:
        lines.append("retrieval from each store (dense + BM25 + fusion, synthetic chunks)")
        for row in report["stores"]:
            lines.append("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
    found = report.get("archive")
    if found:
        lines.append(f"archive ({found['corpus']}), each build a fresh process incl. model loading")
        for name, row in found["builds"].items():
            lines.append(f"  {name:6} (sentence vectors {row['sentence_vectors']}, batches of {row['batch_tokens']} "
                         f"tokens) {row['documents']} docs, {row['chunks']} chunks, {row['sentences']} sentences "
                         f"in {row['seconds']} s: {row['vectors_per_s']} vectors/s, {row['documents_per_s']} docs/s, "
                         f"peak {row['peak_rss_mb']} MB, {row['index_mb_on_disk']} MB on disk")
        first = next(iter(found["builds"].values()))
        lines.append(f"  today's build is {found['speedup']}x as fast; {first['identical_copies']} identical copies "
                     f"stored once, {first['near_duplicate_groups']} near-duplicate groups")
        for name, row in found["same_top5"].items():
            lines.append(f"  same top-5 passages both ways ({name}): "
                         f"{row['same_top5_allowing_ties']}/{row['questions']}")
        for name, row in found["gold_sentence_rank"].items():
            lines.append(f"  {name}: the gold quote's sentence ranks first among its article's sentences by cosine "
                         f"for {row['top1']} of {row['quotes']} quotes (top 3: {row['top3']})")
        recall = found["recall_at_5"]
        lines.append(f"  recall@5 of gold spans: {recall['recall']} ({recall['hits']}/{recall['questions']})")
        lines.append("  query stages at this size (ms)   p50        p95")
        for name, row in found["query"].items():
            lines.append(f"    {name:28} {row['p50']:>8} {row['p95']:>10}")
        for name in ("extractive_answer_ms", "generative_answer_ms"):
            if name in found:
                lines.append(f"    {name:28} {found[name]['p50']:>8} {found[name]['p95']:>10}")
    big = report.get("million")
    if big:
        lines.append(f"synthetic archive of {big['chunks']:,} chunks ({big['articles']:,} articles, "
                     f"{big.get('store', 'faiss')} {big['dense_index']}), built in {big['build_s']} s without the "
                     "embedding model")
        lines.append(f"  open in a fresh process {big['open_s']} s, adding {big.get('open_peak_mb', '?')} MB to its "
                     f"peak memory (the vectors, memory-mapped, are {big['vectors_mb']} MB)")
        lines.append(f"  retrieval (dense + BM25 + fusion) p50/p95 {big['search_ms_p50']}/{big['search_ms_p95']} ms; "
                     f"within a 1% section ({big['section_chunks']:,} chunks) {big['section_search_ms_p50']}/"
                     f"{big['section_search_ms_p95']} ms ({big['section_to_unfiltered_p50']}x), section read in "
                     f"{big['section_filter_ms']} ms")
        lines.append(f"  recall@10 in the section against exact search {big['section_recall_at_10']}, searches "
                     f"with fewer than 10 results {big['section_searches_short_of_10']}")
        lines.append(f"  a page of 50 headlines {big['browse_page_ms_p50']} ms (by date {big['browse_page_by_date_ms']}"
                     f" ms); adding {big['added_articles']:,} articles {big['add_s']} s "
                     f"({big['add_share_of_build']} of the build)")
        if "segments_after_add" in big:
            rewrote = big["add_rewrote_earlier_files"]
            rewritten = "the whole collection" if rewrote is None else f"{rewrote} files"
            copied = (f" and copied the documents' catalog ({big['add_copied_catalog_mb']} MB; the texts' parts, "
                      f"{big['catalog_texts_mb']} MB, were linked)" if "add_copied_catalog_mb" in big else "")
            lines.append(f"  the add rewrote {rewritten} of earlier chunks and texts{copied}; "
                         f"{big['segments_after_add']} segments after it; retrieval p50 after it "
                         f"{big['search_ms_p50_after_add']} ms, within the section "
                         f"{big['section_search_ms_p50_after_add']} ms")
    lines.append(f"peak RSS {report['peak_rss_mb']} MB")
    return "\n".join(lines)
