"""`citewise ingest | kb | search | demo`: knowledge bases from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrieval.types import DOMAINS, Filters, Hit


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="add files or folders to a knowledge base")
    p.add_argument("--kb", required=True, help="knowledge base name (created if missing)")
    p.add_argument("--domain", choices=DOMAINS, help="domain of these documents (default general)")
    p.add_argument("--lang", choices=("en", "zh", "multi"), help="kb language when creating it")
    p.add_argument("--embedder", help="embedder spec when creating the kb (default: by language)")
    p.add_argument("--max-mb", type=float, default=20.0, help="skip files larger than this")
    p.add_argument(
        "paths", nargs="+", help=".txt .md .html .pdf .docx or corpus .jsonl; folders recurse"
    )
    p.set_defaults(func=cmd_ingest)

    kb = sub.add_parser("kb", help="list, show, delete from, drop or reindex knowledge bases")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True, metavar="ACTION")
    kb_sub.add_parser("list", help="all knowledge bases").set_defaults(func=cmd_kb_list)
    show = kb_sub.add_parser("show", help="documents of one knowledge base")
    show.add_argument("name")
    show.set_defaults(func=cmd_kb_show)
    dele = kb_sub.add_parser("delete-doc", help="remove one document and its passages")
    dele.add_argument("name")
    dele.add_argument("doc_id")
    dele.set_defaults(func=cmd_kb_delete_doc)
    drop = kb_sub.add_parser("drop", help="delete a whole knowledge base")
    drop.add_argument("name")
    drop.set_defaults(func=cmd_kb_drop)
    reindex = kb_sub.add_parser("reindex", help="rebuild the vector index from stored vectors")
    reindex.add_argument("name")
    reindex.set_defaults(func=cmd_kb_reindex)
    rechunk = kb_sub.add_parser(
        "rechunk", help="cut stored documents into passages again (articles, sections) and re-embed"
    )
    rechunk.add_argument("name")
    rechunk.set_defaults(func=cmd_kb_rechunk)

    s = sub.add_parser("search", help="ranked passages for a query")
    s.add_argument("--kb", action="append", help="knowledge base (repeatable; default: all)")
    s.add_argument("--k", type=int, default=5)
    s.add_argument("--mode", choices=("hybrid", "dense", "lexical"), default="hybrid")
    s.add_argument("--json", action="store_true", help="one JSON object per query")
    s.add_argument("--queries", help='JSONL file of {"id", "question", "group"?} lines')
    for name in ("domain", "lang", "group", "source"):
        s.add_argument(f"--{name}", help=f"only passages whose {name} is this")
    s.add_argument("query", nargs="?", help="the question (or use --queries)")
    s.set_defaults(func=cmd_search)

    d = sub.add_parser("demo", help="build the demo knowledge bases, then open the chat UI on them")
    d.add_argument("--port", type=int, default=7860, help="port of the chat UI (default 7860)")
    d.add_argument(
        "--search",
        action="store_true",
        help="a search prompt in the terminal instead of the UI (sample searches when not a tty)",
    )
    d.set_defaults(func=cmd_demo)


def _library(args: argparse.Namespace) -> Any:
    from retrieval.kb import Library
    from retrieval.paths import data_dir, database_setting, store_setting

    return Library(
        data_dir(args.data_dir),
        store=store_setting(args.store),
        database_url=database_setting(args.database_url),
    )


def _print_report(kb: str, report: Any) -> None:
    for skipped in report.skipped:
        print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    print(
        f"{kb}: {report.added} added, {report.replaced} replaced, {report.unchanged} unchanged, "
        f"{len(report.skipped)} skipped; {report.chunks_added} passages indexed"
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    library = _library(args)
    if args.kb not in {info.name for info in library.list()} and (args.lang or args.embedder):
        library.create(
            args.kb, domain=args.domain or "general", lang=args.lang, embedder=args.embedder
        )
    report = library.ingest_paths(
        args.kb, args.paths, domain=args.domain, max_bytes=int(args.max_mb * 1024 * 1024)
    )
    _print_report(args.kb, report)
    return 1 if report.skipped and not (report.added or report.replaced or report.unchanged) else 0


def cmd_kb_list(args: argparse.Namespace) -> int:
    infos = _library(args).list()
    if not infos:
        print("no knowledge bases yet: add one with `citewise ingest --kb NAME PATH...`")
    for i in infos:
        print(
            f"{i.name}\t{i.domain}\t{i.lang}\t{i.documents} docs\t{i.chunks} passages\t{i.embedder}"
        )
    return 0


def cmd_kb_show(args: argparse.Namespace) -> int:
    library = _library(args)
    info = library.info(args.name)
    print(f"{info.name}: domain {info.domain}, lang {info.lang}, embedder {info.embedder}")
    for doc in library.documents(args.name):
        print(f"{doc.doc_id}\t{doc.n_chunks} passages\t{doc.lang}\t{doc.title}")
    return 0


def cmd_kb_delete_doc(args: argparse.Namespace) -> int:
    if _library(args).delete_doc(args.name, args.doc_id):
        print(f"deleted {args.doc_id} from {args.name}")
        return 0
    print(f"no document {args.doc_id!r} in {args.name} (see `citewise kb show {args.name}`)")
    return 1


def cmd_kb_drop(args: argparse.Namespace) -> int:
    _library(args).drop(args.name)
    print(f"dropped {args.name}")
    return 0


def cmd_kb_rechunk(args: argparse.Namespace) -> int:
    report = _library(args).rechunk(args.name)
    print(
        f"rechunked {args.name}: {report.replaced} documents re-cut, {report.chunks_added} passages"
    )
    return 0


def cmd_kb_reindex(args: argparse.Namespace) -> int:
    _library(args).reindex(args.name)
    print(f"reindexed {args.name}")
    return 0


def _queries(path: str) -> Iterator[tuple[str, str, str]]:
    with Path(path).open(encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
                yield str(line["id"]), line["question"], line.get("group", "")
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(
                    f"{path}:{n}: expected {{'id', 'question', 'group'?}} ({e})"
                ) from e


def _hit_json(hit: Hit) -> dict[str, Any]:
    return {"doc_id": hit.doc_id, "chunk_id": hit.chunk_id, "score": hit.score, "text": hit.text}


def _print_hits(hits: list[Hit]) -> None:
    if not hits:
        print("  (nothing found)")
    for rank, h in enumerate(hits, 1):
        snippet = " ".join(h.text.split())[:160]
        print(f"  {rank}. [{h.kb}/{h.doc_id}] {h.title}  ({h.score:.4f})\n     {snippet}")


def cmd_search(args: argparse.Namespace) -> int:
    from retrieval.search import HybridSearcher

    if bool(args.query) == bool(args.queries):
        raise ValueError("give either a QUERY or --queries FILE.jsonl")
    library = _library(args)
    kbs = args.kb or [i.name for i in library.list()]
    if not kbs:
        raise ValueError("no knowledge bases yet: add one with `citewise ingest --kb NAME PATH...`")
    searcher = HybridSearcher(library)
    base = Filters(domain=args.domain, lang=args.lang, group=args.group, source=args.source)
    if args.queries:
        for qid, question, group in _queries(args.queries):
            filters = Filters(base.domain, base.lang, group or base.group, base.source)
            hits = searcher.search(question, kbs, k=args.k, filters=filters, mode=args.mode)
            print(json.dumps({"id": qid, "hits": [_hit_json(h) for h in hits]}, ensure_ascii=False))
        return 0
    hits = searcher.search(args.query, kbs, k=args.k, filters=base, mode=args.mode)
    if args.json:
        print(
            json.dumps(
                {"query": args.query, "hits": [_hit_json(h) for h in hits]}, ensure_ascii=False
            )
        )
    else:
        _print_hits(hits)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from retrieval.demo import SAMPLE_QUERIES, demo_corpus_files
    from retrieval.search import HybridSearcher

    library = _library(args)
    for kb, path in demo_corpus_files().items():
        _print_report(kb, library.ingest_paths(kb, [path], domain=kb))
    if not args.search:
        from agent.config import AgentConfig
        from ui.server import serve
        from ui.settings import ServerSettings

        library.close()
        print(f"\nOpen http://127.0.0.1:{args.port} in a browser; Ctrl+C stops the server.")
        serve(
            ServerSettings(port=args.port),
            AgentConfig.load(
                data_dir=args.data_dir, store=args.store, database_url=args.database_url
            ),
        )
        return 0
    searcher = HybridSearcher(library)
    kbs = list(demo_corpus_files())
    if not sys.stdin.isatty():
        for kb, queries in SAMPLE_QUERIES.items():
            for q in queries:
                print(f"\n{kb}> {q}")
                _print_hits(searcher.search(q, kbs, k=3))
        return 0
    print("\nSearch the demo knowledge bases (legal, medical, education) in Chinese or English.")
    print("Try: " + " | ".join(q for qs in SAMPLE_QUERIES.values() for q in qs[:1]))
    while True:
        try:
            q = input("\nsearch> ").strip()
        except EOFError:
            return 0
        if q in {"exit", "quit", ":q"}:
            return 0
        if q:
            _print_hits(searcher.search(q, kbs, k=5))
