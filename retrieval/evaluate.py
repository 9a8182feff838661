"""Score the service against a labelled question file: hit@1/hit@5 per kind, and the found decision.

Label file: {"questions": [{"question", "kind", "answers": [{"article_id", "evidence"}]}]}. A
question is answered at rank k when one of the top k passages (after the answer's de-duplication)
is from the right article and contains an evidence string; a question with no answers is
unanswerable and should get found=false.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from newsqa.index.text import nfc
from newsqa.retrieval.conversation import next_turn
from newsqa.retrieval.models import Answer
from newsqa.retrieval.service import QAService

# The labelled questions over the two seed articles, shipped inside the package for `newsqa eval`.
SEED_QUESTIONS = Path(__file__).resolve().parent / "data" / "seed_questions.json"
# Two-turn conversations over the same articles: follow-ups and topic switches (see its "about").
SEED_CONVERSATIONS = Path(__file__).resolve().parent / "data" / "seed_conversations.json"


def load_labels(path: Path) -> list[dict[str, Any]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    questions = data["questions"] if isinstance(data, dict) else data
    for q in questions:
        if not isinstance(q.get("question"), str) or not isinstance(q.get("answers", []), list):
            raise ValueError(f"{path}: each entry needs a 'question' string and an 'answers' list")
    return questions


def quotes_evidence(answer: Answer, item: dict[str, Any]) -> bool:
    """Whether the answer text holds one of the item's evidence strings, from the passage it cites [1]."""
    return answer.found and any(
        a["evidence"] in answer.answer
        and any(c.n == 1 and c.article_id == a["article_id"] and a["evidence"] in c.text for c in answer.citations)
        for a in item.get("answers", [])
    )


def _rank_of_answer(service: QAService, item: dict[str, Any], top_k: int) -> tuple[int | None, bool, bool]:
    """(rank of the first passage holding an evidence string, found, the answer quotes one from
    the passage it cites as [1])."""
    answer = service.ask(item["question"], top_k)
    quoted = quotes_evidence(answer, item)
    if answer.found:
        retrieved = [*answer.citations, *answer.also_retrieved]
        passages = [(p.article_id, p.text) for p in sorted(retrieved, key=lambda p: -p.score)]
    else:
        # Ranking is measured even when the answer says "not found": use the raw search.
        passages = [(h.article_id, h.text) for h in service.search(item["question"], top_k).hits]
    for rank, (article_id, text) in enumerate(passages, start=1):
        if any(a["article_id"] == article_id and a["evidence"] in text for a in item["answers"]):
            return rank, answer.found, quoted
    return None, answer.found, quoted


def evaluate_file(service: QAService, path: Path, top_k: int = 5) -> dict[str, Any]:
    per_kind: dict[str, dict[str, float]] = defaultdict(
        lambda: {"n": 0, "hit@1": 0, "hit@5": 0, "found": 0, "quoted": 0}
    )
    tp = fp = fn = tn = 0
    misses = []
    for item in load_labels(path):
        kind = item.get("kind", "all")
        answerable = bool(item.get("answers"))
        if answerable:
            rank, found, quoted = _rank_of_answer(service, item, max(top_k, 5))
        else:
            rank, found, quoted = None, service.ask(item["question"], top_k).found, False
        stats = per_kind[kind]
        stats["n"] += 1
        stats["found"] += found
        if answerable:
            stats["quoted"] += quoted
            stats["hit@1"] += rank == 1
            stats["hit@5"] += rank is not None and rank <= 5
            tp += found
            fn += not found
            if rank != 1 or not quoted:
                misses.append({"question": item["question"], "kind": kind, "rank": rank, "found": found, "quoted": quoted})
        else:
            # For an unanswerable question a "hit" is saying so.
            stats["hit@1"] += not found
            stats["hit@5"] += not found
            fp += found
            tn += not found
            if found:
                misses.append({"question": item["question"], "kind": kind, "rank": None, "found": found, "quoted": False})
    kinds = {
        kind: {
            "n": int(s["n"]), "hit@1": s["hit@1"] / s["n"], "hit@5": s["hit@5"] / s["n"],
            "found": s["found"] / s["n"], "quoted": s["quoted"] / s["n"],
        }
        for kind, s in sorted(per_kind.items())
    }
    return {
        "kinds": kinds,
        "found": {
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "true_positive": tp,
            "false_positive": fp,
            "false_negative": fn,
            "true_negative": tn,
        },
        "misses": misses,
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'kind':<14}{'n':>4}{'hit@1':>9}{'hit@5':>9}{'found':>9}{'quoted':>9}"]
    for kind, s in report["kinds"].items():
        lines.append(
            f"{kind:<14}{s['n']:>4}{s['hit@1'] * 100:>8.1f}%{s['hit@5'] * 100:>8.1f}%{s.get('found', 0) * 100:>8.1f}%"
            f"{s.get('quoted', 0) * 100:>8.1f}%"
        )
    f = report["found"]
    lines.append(
        f"found decision: precision {f['precision'] * 100:.1f}%  recall {f['recall'] * 100:.1f}%  "
        f"(tp {f['true_positive']}, fp {f['false_positive']}, fn {f['false_negative']}, tn {f['true_negative']})"
    )
    lines.append(
        "(for kinds without answers, hit means found=false; 'found' is the share answered; 'quoted': the "
        "answer text holds an evidence string from the passage cited [1])"
    )
    if report["misses"]:
        lines.append("not at rank 1, or not quoted:")
        for m in report["misses"]:
            lines.append(f"  [{m['kind']}] rank={m['rank']} found={m['found']} quoted={m['quoted']}: {m['question']}")
    return "\n".join(lines)


# -- two-turn conversations ---------------------------------------------------------------------


def evaluate_conversations(
    service: QAService, path: Path, k: int = 5, article_key: Callable[[Any], str] = str
) -> dict[str, dict[str, float]]:
    """The second turn's R@k read with the first (as a chat remembers it) and asked alone, per
    language and kind ("follow_up", "switch"), over a file of two-turn conversations:
    {"conversations": [{"language", "kind", "turns": [{"question", "article", "answer"}, ...]}]}.
    A turn is found at k when a passage among its top k is from `article_key(turn["article"])`
    and holds the answer. Also the answer a person gets to the second turn in context: the share
    answered (found) and the share whose answer quotes the labelled answer from a passage it cites."""
    def found(result: Any, turn: dict[str, Any]) -> bool:
        article = article_key(turn["article"])
        return any(h.article_id == article and nfc(turn["answer"]) in nfc(h.text) for h in result.hits[:k])

    def quoted(answer: Answer, turn: dict[str, Any]) -> bool:
        article, expected = article_key(turn["article"]), nfc(turn["answer"])
        return answer.found and any(
            c.article_id == article and expected in nfc(c.text) and expected in nfc(answer.answer)
            for c in answer.citations
        )

    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for conversation in json.loads(Path(path).read_text(encoding="utf-8"))["conversations"]:
        first, second = conversation["turns"][:2]
        previous = next_turn(service.ask(first["question"]), None)
        in_context = service.search(second["question"], k, context=previous)
        alone = service.search(second["question"], k)
        answer = service.ask(second["question"], k, context=previous)
        for key in (f"{conversation['language']} {conversation['kind']}", f"all {conversation['kind']}"):
            row = counts[key]
            row["n"] += 1
            row["with context"] += found(in_context, second)
            row["alone"] += found(alone, second)
            row["read with context"] += in_context.context_used
            row["answered"] += answer.found
            row["quoted"] += quoted(answer, second)
    names = ("with context", "alone", "read with context", "answered", "quoted")
    return {
        key: {"n": int(row["n"]), **{name: row[name] / row["n"] for name in names}}
        for key, row in sorted(counts.items())
    }


def format_conversations(report: dict[str, dict[str, float]], k: int = 5) -> str:
    lines = [
        f"{'second turn':<20}{'n':>4}{f'R@{k} context':>14}{f'R@{k} alone':>12}{'read with':>11}{'answered':>10}{'quoted':>8}"
    ]
    for key, row in report.items():
        lines.append(
            f"{key:<20}{row['n']:>4}{row['with context'] * 100:>13.1f}%{row['alone'] * 100:>11.1f}%"
            f"{row['read with context'] * 100:>10.1f}%{row['answered'] * 100:>9.1f}%{row['quoted'] * 100:>7.1f}%"
        )
    lines.append(
        "('read with': the share of second turns the service read with the first; 'answered': found, in "
        "context; 'quoted': the answer quotes the labelled answer from a passage it cites)"
    )
    return "\n".join(lines)
