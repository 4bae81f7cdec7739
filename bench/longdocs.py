"""Long documents, side by side in one run: chunked text vectors against truncated ones, BM25 and
hybrids, and a reference built without qinb (fastembed + numpy over windows of the same number
of tokens, a document scored by its best window), on the labelled long documents qinb ships
(``qinb.datasets.python_topics()``: 79 topics, 31 past the model's window, the longest 8,546
words; ``python_questions()``: 34 judged questions). Also query p50 chunked against truncated,
ingest against raw fastembed on the same passages, and, with ``--memory``, peak RSS while
ingesting 1,000 and 5,000 long documents.

Dense text is the real all-MiniLM-L6-v2 from ``~/.qinb/models`` (``make models``). The memory
run uses the STAND-IN CLIP text model (qinb.standin: tiny and meaningless, 75-token window)
so that 5,000 long documents take minutes, not hours; memory is what it measures.

    .venv/bin/python bench/longdocs.py             # ~4 minutes on 2 cores
    .venv/bin/python bench/longdocs.py --memory    # + two child processes, ~2 minutes more
    .venv/bin/python bench/longdocs.py --memory-only
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _child import AnonPeak, report, run

import qinb
from qinb import passages as qpassages

CHUNK, OVERLAP = 256, 32
DOC_WORDS = 700  # words per generated long document in the memory run
# raw fastembed batches: its default of 256 passages of 256 tokens took over 11 GB here
RAW_BATCH = 32


def fresh_cache() -> None:
    os.environ["QINB_CACHE"] = tempfile.mkdtemp()


def windows(text: str, tokenizer, size: int = CHUNK, overlap: int = OVERLAP) -> list[str]:  # type: ignore[no-untyped-def]
    """The reference's passages: fixed windows of ``size`` tokens, ``overlap`` shared, cut by
    the tokenizer's character offsets (no sentence boundaries, no qinb)."""
    offsets = tokenizer.encode(text, add_special_tokens=False).offsets
    out = []
    for start in range(0, max(len(offsets) - overlap, 1), size - overlap):
        part = offsets[start:start + size]
        out.append(text[part[0][0]:part[-1][1]])
    return out


def reference(df: pd.DataFrame, queries: pd.Series, qrels: pd.DataFrame, size: int = CHUNK,
              overlap: int = OVERLAP) -> tuple[float, float, float]:
    """nDCG@10 and Recall@10 of fastembed + numpy over token windows, and its embedding time."""
    import pytrec_eval
    from fastembed import TextEmbedding

    model = TextEmbedding(qinb.models.MINILM,
                          specific_model_path=str(qinb.models.local_path(qinb.models.MINILM)))
    tokenizer = qpassages.window(qinb.models.MINILM).tokenizer
    owners, texts = [], []
    for label, text in df["text"].items():
        for passage in windows(text, tokenizer, size, overlap):
            owners.append(str(label))
            texts.append(passage)
    started = time.perf_counter()
    matrix = np.vstack(list(model.embed(texts, batch_size=RAW_BATCH)))
    seconds = time.perf_counter() - started
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    asked = np.vstack(list(model.query_embed(queries.tolist())))
    asked /= np.linalg.norm(asked, axis=1, keepdims=True)
    best = pd.DataFrame(matrix @ asked.T, index=owners).groupby(level=0).max()
    run_ = {str(q): {doc: float(s) for doc, s in best[i].nlargest(100).items()}
            for i, q in enumerate(queries.index)}
    judged: dict[str, dict[str, int]] = {}
    for q, row, grade in qrels[["query", "row", "relevance"]].itertuples(index=False):
        judged.setdefault(str(q), {})[str(row)] = int(grade)
    measured = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10", "recall.10"}).evaluate(run_)
    return (statistics.mean(m["ndcg_cut_10"] for m in measured.values()),
            statistics.mean(m["recall_10"] for m in measured.values()), seconds)


def ingest(df: pd.DataFrame) -> tuple[float, float, int, int]:
    """Seconds for qinb to upsert the chunked vector alone (cold cache) and for raw fastembed
    to embed the same passages, best of two each, taking turns; passages and distinct ones."""
    from fastembed import TextEmbedding

    spec = qinb.Text("text", chunk_size=CHUNK, chunk_overlap=OVERLAP)
    model = TextEmbedding(qinb.models.MINILM,
                          specific_model_path=str(qinb.models.local_path(qinb.models.MINILM)))
    list(model.embed(["warm up"]))
    passages = [text[s:e] for text in df["text"]
                for s, e in qpassages.spans(text, spec.model, CHUNK, OVERLAP)]
    ours, raw = [], []
    for _ in range(2):
        started = time.perf_counter()
        list(model.embed(passages, batch_size=RAW_BATCH))
        raw.append(time.perf_counter() - started)
        fresh_cache()
        store = qinb.connect(tempfile.mkdtemp())
        started = time.perf_counter()
        qinb.upsert(df, "ingest", {"text": spec}, client=store, progress=False)
        ours.append(time.perf_counter() - started)
        store.close()
    return min(ours), min(raw), len(passages), len(set(passages))


def query_p50(store: qinb.Store, queries: pd.Series, rounds: int = 5) -> tuple[float, float]:
    """p50 of qinb.search over the chunked vector and over the truncated one, taking turns."""
    times: dict[str, list[float]] = {"chunked": [], "truncated": []}
    for _ in range(rounds):
        for query in queries:
            for using in times:
                started = time.perf_counter()
                qinb.search("long", query, using=using, client=store)
                times[using].append(time.perf_counter() - started)
    return statistics.median(times["chunked"]), statistics.median(times["truncated"])


def quality() -> None:
    import warnings

    df = qinb.datasets.python_topics()
    queries, qrels = qinb.datasets.python_questions()
    words = df["text"].str.split().str.len()
    print(f"{len(df)} documents ({int(words.median())} words median, {int(words.max())} longest), "
          f"{len(queries)} judged questions; chunk_size={CHUNK}, chunk_overlap={OVERLAP}\n")

    ours, raw, passages, distinct = ingest(df)
    fresh_cache()
    store = qinb.connect(tempfile.mkdtemp())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report_ = qinb.upsert(df, "long", {
            "truncated": qinb.Text("text"), "bm25": qinb.Bm25("text"),
            "chunked": qinb.Text("text", chunk_size=CHUNK, chunk_overlap=OVERLAP)},
            client=store, progress=False)
    print(f"truncated vector: {report_.vectors.loc['truncated', 'truncated']} rows past the window "
          f"(warned: {any('window' in str(w.message) for w in caught)})")
    setups = ["truncated", "chunked", "bm25", ["truncated", "bm25"], ["chunked", "bm25"]]
    result = qinb.evaluate("long", queries, qrels, using=setups, fusion=["rrf", "dbsf"],
                           client=store, df=df, progress=False)
    ref_ndcg, ref_recall, ref_seconds = reference(df, queries, qrels)
    print("\n| run | nDCG@10 | Recall@10 |\n|---|---|---|")
    for row in result.itertuples(index=False):
        print(f"| qinb {row.using} {'' if row.fusion == '-' else row.fusion} | "
              f"{row._2:.3f} | {row._3:.3f} |")
    print(f"| reference: fastembed + numpy, {CHUNK}-token windows ({OVERLAP} overlap), "
          f"document = best window | {ref_ndcg:.3f} | {ref_recall:.3f} |")

    ndcg = {(r.using, r.fusion): r._2 for r in result.itertuples(index=False)}
    chunked, truncated = ndcg["chunked", "-"], ndcg["truncated", "-"]
    best_single = max(chunked, ndcg["bm25", "-"])
    hybrid = max(ndcg["chunked+bm25", "rrf"], ndcg["chunked+bm25", "dbsf"])
    chunked_p50, truncated_p50 = query_p50(store, queries)
    print("\n| what | measured | target |\n|---|---|---|")
    print(f"| nDCG@10 chunked vs reference | {chunked / ref_ndcg:.2f}x ({chunked:.3f} vs "
          f"{ref_ndcg:.3f}) | >= 0.97x |")
    print(f"| nDCG@10 chunked vs truncated | {chunked - truncated:+.3f} | >= +0.10 |")
    print(f"| hybrid (chunked + BM25, best fusion) vs best single | {hybrid - best_single:+.3f} "
          f"({hybrid:.3f} vs {best_single:.3f}) | >= +0.02 |")
    print(f"| query p50 chunked vs truncated | {chunked_p50 / truncated_p50:.2f}x "
          f"({chunked_p50 * 1000:.1f} vs {truncated_p50 * 1000:.1f} ms) | <= 3x |")
    print(f"| ingest, qinb chunked vs raw fastembed on the same {passages} passages "
          f"({distinct} distinct) | {raw / ours:.2f}x ({ours:.1f} vs {raw:.1f} s) | >= 0.9x |")
    print(f"(the reference embedded its windows in {ref_seconds:.1f} s)")
    sensitivity(df, queries, qrels)
    joined_topics(df, queries, qrels)


def joined_topics(df: pd.DataFrame, queries: pd.Series, qrels: pd.DataFrame, per: int = 4) -> None:
    """The same questions over longer documents, made as SciFact-long was: the topics shuffled
    with a fixed seed and joined ``per`` to a document; a document is as relevant as the most
    relevant topic it holds. Truncation now hides all but the first topic of each document."""
    import warnings

    order = np.random.default_rng(0).permutation(len(df))
    owner = {}
    texts = []
    for d, start in enumerate(range(0, len(order), per)):
        members = [df.index[i] for i in order[start:start + per]]
        owner.update({m: f"doc{d:02d}" for m in members})
        texts.append("\n\n".join(df.loc[m, "text"] for m in members))
    docs = pd.DataFrame({"text": texts}, index=pd.Index([f"doc{d:02d}" for d in range(len(texts))]))
    judged = (qrels.assign(row=qrels["row"].map(owner))
              .groupby(["query", "row"], as_index=False)["relevance"].max())
    words = docs["text"].str.split().str.len()
    store = qinb.connect(tempfile.mkdtemp())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qinb.upsert(docs, "joined", {
            "truncated": qinb.Text("text"), "bm25": qinb.Bm25("text"),
            "chunked": qinb.Text("text", chunk_size=CHUNK, chunk_overlap=OVERLAP)},
            client=store, progress=False)
    result = qinb.evaluate("joined", queries, judged, using=["truncated", "chunked", "bm25",
                           ["truncated", "bm25"], ["chunked", "bm25"]], fusion=["rrf", "dbsf"],
                           client=store, df=docs, progress=False)
    ref_ndcg, ref_recall, _ = reference(docs, queries, judged)
    print(f"\nthe topics joined {per} to a document: {len(docs)} documents ({int(words.median())} "
          f"words median, {int(words.max())} longest)")
    print("\n| run | nDCG@10 | Recall@10 |\n|---|---|---|")
    for row in result.itertuples(index=False):
        print(f"| qinb {row.using} {'' if row.fusion == '-' else row.fusion} | "
              f"{row._2:.3f} | {row._3:.3f} |")
    print(f"| reference: fastembed + numpy, {CHUNK}-token windows | {ref_ndcg:.3f} | {ref_recall:.3f} |")
    ndcg = {(r.using, r.fusion): r._2 for r in result.itertuples(index=False)}
    chunked, truncated = ndcg["chunked", "-"], ndcg["truncated", "-"]
    hybrid = max(ndcg["chunked+bm25", "rrf"], ndcg["chunked+bm25", "dbsf"])
    print(f"chunked vs reference {chunked / ref_ndcg:.2f}x; chunked vs truncated "
          f"{chunked - truncated:+.3f}; hybrid vs best single "
          f"{hybrid - max(chunked, ndcg['bm25', '-']):+.3f}")


def sensitivity(df: pd.DataFrame, queries: pd.Series, qrels: pd.DataFrame) -> None:
    """nDCG@10 of qinb's passages (sentence boundaries) and the reference's windows at other
    passage lengths: on 34 questions, where a boundary falls moves a few answers."""
    print("\npassage length (tokens, overlap 1/8) | qinb chunked nDCG@10 | reference nDCG@10 | ratio")
    store = qinb.connect(tempfile.mkdtemp())
    for size in (128, 192, 320, 384):
        overlap = size // 8
        qinb.upsert(df, f"c{size}", {"text": qinb.Text("text", chunk_size=size, chunk_overlap=overlap)},
                    client=store, progress=False)
        ours = qinb.evaluate(f"c{size}", queries, qrels, client=store, df=df, progress=False)
        ref = reference(df, queries, qrels, size, overlap)[0]
        ndcg = float(ours["ndcg@10"].iloc[0])
        print(f"{size:>4d} | {ndcg:.3f} | {ref:.3f} | {ndcg / ref:.2f}x", flush=True)


def long_documents(n: int) -> pd.DataFrame:
    words = " ".join(qinb.datasets.python_topics()["text"]).split()
    at = [(i * 997) % (len(words) - DOC_WORDS) for i in range(n)]
    return pd.DataFrame({"text": [" ".join(words[a:a + DOC_WORDS]) + f" (document {i})"
                                  for i, a in enumerate(at)], "n": range(n)})


def engine_only(n: int) -> dict[str, float]:
    """The engine alone storing what qinb stores for ``n`` documents: the same passages (split
    the same way) as random 512-d rows of a MaxSim multivector, with the text and spans."""
    import qdrant_edge as E

    import qinb.standin

    qinb.standin.register_clip(tempfile.mkdtemp())
    df = long_documents(n)
    shard = E.EdgeShard.create(tempfile.mkdtemp(), E.EdgeConfig(vectors={"text": E.EdgeVectorParams(
        size=512, distance=E.Distance.Cosine, hnsw_config=E.HnswIndexConfig(0, 100, 10_000),
        multivector_config=E.MultiVectorConfig(E.MultiVectorComparator.MaxSim))}))
    rng = np.random.default_rng(0)
    anon = AnonPeak()
    started = time.perf_counter()
    passages = 0
    for first in range(0, n, 256):
        points = []
        for i in range(first, min(first + 256, n)):
            text = df["text"].iloc[i]
            spans = qpassages.spans(text, qinb.models.CLIP_TEXT, 64, 8)
            passages += len(spans)
            matrix = rng.standard_normal((len(spans), 512)).astype(np.float32)
            points.append(E.Point(i, {"text": matrix}, {"text": text, "n": i, "spans": spans}))
        shard.update(E.UpdateOperation.upsert_points(points))
    shard.flush()
    shard.close()
    return {"seconds": time.perf_counter() - started, "passages": passages, "anon_mb": anon.stop()}


def memory_variant(n: int) -> dict[str, float]:
    import qinb.standin

    fresh_cache()
    qinb.standin.register_clip(tempfile.mkdtemp())
    df = long_documents(n)
    store = qinb.connect(tempfile.mkdtemp())
    anon = AnonPeak()
    started = time.perf_counter()
    done = qinb.upsert(df, "c", {"text": qinb.Text("text", model=qinb.models.CLIP_TEXT,
                                                   chunk_size=64, chunk_overlap=8)},
                       client=store, progress=False)
    seconds = time.perf_counter() - started
    assert done.upserted == n
    return {"seconds": seconds, "passages": done.passages, "anon_mb": anon.stop(),
            "frame_mb": df.memory_usage(deep=True).sum() / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=int)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--engine-only", action="store_true")
    args = parser.parse_args()
    if args.run:
        report(engine_only(args.run) if args.engine_only else memory_variant(args.run))
        return
    if not args.memory_only:
        quality()
    if args.memory or args.memory_only:
        got = {n: run(Path(__file__), str(n)) for n in (1000, 5000)}
        engine = {n: run(Path(__file__), str(n), "--engine-only") for n in (1000, 5000)}
        print(f"\npeak RSS while ingesting long documents ({DOC_WORDS} words, stand-in model, "
              "chunk_size=64):")
        for n, r in got.items():
            own = r["anon_mb"] - engine[n]["anon_mb"] - r["frame_mb"]
            print(f"  {n:>5,d} documents, {int(r['passages']):>7,d} passages: {r['rss_mb']:6.0f} MB "
                  f"peak RSS, {r['anon_mb']:6.0f} MB anonymous, {r['seconds']:.0f} s; the engine "
                  f"alone storing the same: {engine[n]['rss_mb']:6.0f} MB peak RSS, "
                  f"{engine[n]['anon_mb']:6.0f} MB anonymous; the frame {r['frame_mb']:.0f} MB; "
                  f"qinb's own heap beyond both {own:5.0f} MB")
        own = {n: got[n]["anon_mb"] - engine[n]["anon_mb"] - got[n]["frame_mb"] for n in got}
        print(f"| peak RSS, 5,000 vs 1,000 long documents | "
              f"{got[5000]['rss_mb'] / got[1000]['rss_mb']:.2f}x (qinb's own heap "
              f"{own[5000] / own[1000]:.2f}x) | <= 1.2x |")


if __name__ == "__main__":
    main()
