"""`citewise migrate`: move an embedded data directory onto shared engines: its conversations,
ratings and accounts onto PostgreSQL (agent/state_copy.py, ids kept), its knowledge bases' search
onto Milvus (each collection built from the stored vectors), and with both, the knowledge bases'
documents, passages and vectors onto PostgreSQL too (retrieval/store_copy.py), so that machines
with data directories of their own share them. Nothing in the data directory is changed."""

from __future__ import annotations

import argparse
from contextlib import closing
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "migrate",
        help="copy conversations, accounts (and with --to-store, knowledge bases) to PostgreSQL "
        "and build the knowledge bases' Milvus index",
    )
    p.add_argument("--to-database", metavar="URL", help="postgresql://... (an empty database)")
    p.add_argument("--to-store", metavar="URL", help="milvus:///path/kb.db or milvus://host:19530")
    p.add_argument("--config", help="agent config file: its database_url and store are the targets")
    p.set_defaults(func=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    from agent.config import AgentConfig
    from retrieval.paths import data_dir

    config = AgentConfig.load(
        args.config, data_dir=args.data_dir, database_url=args.to_database, store=args.to_store
    )
    if not (config.database_url or config.store):
        raise ValueError(
            "nothing to migrate to: give --to-database postgresql://... and/or --to-store "
            "milvus://... (or a --config that sets database_url / store)"
        )
    folder = data_dir(config.data_dir)
    if config.database_url:
        _conversations(folder / "dialogue.db", config.database_url)
        _accounts(folder, config.database_url)
    if config.store:
        _knowledge_bases(folder, config.store, config.database_url)
    print("done: set these in your config (or --store / $CITEWISE_STORE) to use them:")
    for key in ("database_url", "store"):
        if getattr(config, key):
            print(f'  {key} = "{getattr(config, key)}"')
    return 0


def _conversations(path: Any, url: str) -> None:
    from agent.state import DialogueStore
    from agent.state_copy import copy_conversations

    if not path.is_file():
        print(f"conversations: none ({path} does not exist)")
        return
    with DialogueStore(path) as source, DialogueStore(url) as target:
        counts = copy_conversations(source, target)
        where = target.where
    print(
        f"conversations: {counts['sessions']} sessions, {counts['turns']} turns, "
        f"{counts['feedback']} ratings copied to {where}"
    )


def _accounts(folder: Any, url: str) -> None:
    from ui.users import UserStore

    if not (folder / "users.db").is_file():
        return
    with closing(UserStore(folder / "users.db")) as source, closing(UserStore(url)) as target:
        print(f"accounts: {target.copy_from(source)} users copied")


def _knowledge_bases(folder: Any, store: str, database_url: str) -> None:
    from retrieval.kb import Library

    if database_url and (folder / "citewise.db").is_file():
        from retrieval.store import Store
        from retrieval.store_copy import copy_knowledge_bases
        from retrieval.store_pg import PgStore

        with closing(Store(folder)) as source, closing(PgStore(database_url)) as target:
            counts = copy_knowledge_bases(source, target)
            where = target.where
        print(
            f"knowledge bases: {counts['kbs']}, with {counts['documents']} documents and "
            f"{counts['chunks']} passages, copied to {where}"
        )
    library = Library(folder, store=store, database_url=database_url)
    try:
        for info in library.list():
            library.open(info.name)  # builds the collection from the stored vectors
            print(f"knowledge base {info.name}: {info.chunks} passages indexed in {store}")
    finally:
        library.close()
