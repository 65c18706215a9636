"""The shipped demo knowledge bases: where their corpus files are, and questions they can answer.

The data are small subsets of public datasets (demo_corpus/ATTRIBUTION.md lists sources and
licences); demo_corpus/cases.jsonl holds real evaluation questions answered by those documents.
"""

from __future__ import annotations

from pathlib import Path

from retrieval.errors import RetrievalError

DEMO_DIR = Path(__file__).resolve().parent / "demo_corpus"
DEMO_KBS = ("legal", "medical", "education")
DEMO_CASES = DEMO_DIR / "cases.jsonl"  # evaluation cases format plus "kb"

# One Chinese and one English question per knowledge base, each answered by a demo document.
SAMPLE_QUERIES: dict[str, list[str]] = {
    "legal": [
        "谁可以成为个体工商户？",
        "Does Ticketmaster knowingly collect information from children under 13?",
    ],
    "medical": [
        "右下腹痛并自扪及包块3小时的病人，腹部X线检查见到什么？",
        "Can tailored telephone counseling increase mammography screening among HMO women?",
    ],
    "education": [
        "黑豹队的防守丢了多少分？",
        "When did Carl Wilhelm Scheele discover oxygen?",
    ],
}


def demo_corpus_files() -> dict[str, Path]:
    """Map each demo knowledge base name to its corpus .jsonl file.

    >>> sorted(demo_corpus_files())
    ['education', 'legal', 'medical']
    """
    files = {kb: DEMO_DIR / f"{kb}.jsonl" for kb in DEMO_KBS}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise RetrievalError(
            f"demo corpus files are missing: {', '.join(missing)}; the install left out the package"
            " data, so reinstall citewise (pip install -e .) from a full checkout"
        )
    return files
