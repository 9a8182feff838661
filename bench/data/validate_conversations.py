#!/usr/bin/env python3
"""Check the labelled two-turn conversations (standard library only).

Files checked:
  bench/data/conversations_vinewsqa.json  -- `article` is an index into ViNewsQA dev data[]
  retrieval/data/seed_conversations.json  -- `article` is a seed file name without ".txt"

Every answer must occur verbatim in its article (ViNewsQA: data[i]['paragraphs'][0]['context'];
seeds: the seed file's text; both compared after NFC normalisation) and be 2-12 words long;
ids are unique; language and kind are valid; a conversation has exactly two turns; a follow_up's
turns share their article and a switch's differ; a ViNewsQA turn's optional `title` matches
data[i]['title']. Prints counts per language/kind and the number of distinct articles; exits 1
on any problem.

Usage: python3 bench/data/validate_conversations.py [--vinewsqa PATH] [--seeds DIR]
"""
import argparse
import collections
import json
import pathlib
import sys
import unicodedata

ROOT = pathlib.Path(__file__).resolve().parents[2]
LANGUAGES = {"vi", "vi_nodiac", "en"}
KINDS = {"follow_up", "switch"}
MIN_WORDS, MAX_WORDS = 2, 12


def nfc(text):
    return unicodedata.normalize("NFC", text)


def check_file(path, get_article, problems, seen_ids):
    """Validate one conversations file; return (counts, distinct articles)."""
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{name}: cannot load: {exc}")
        return collections.Counter(), set()
    if not isinstance(doc, dict) or not isinstance(doc.get("about"), str) or not doc["about"].strip():
        problems.append(f"{name}: missing 'about' paragraph")
    convs = doc.get("conversations") if isinstance(doc, dict) else None
    if not isinstance(convs, list) or not convs:
        problems.append(f"{name}: 'conversations' must be a non-empty list")
        return collections.Counter(), set()

    counts = collections.Counter()
    articles = set()
    for n, conv in enumerate(convs):
        cid = conv.get("id") if isinstance(conv, dict) else None
        where = f"{name}: {cid or f'#{n}'}"
        if not isinstance(conv, dict):
            problems.append(f"{where}: not an object")
            continue
        if not isinstance(cid, str) or not cid:
            problems.append(f"{where}: missing id")
        elif cid in seen_ids:
            problems.append(f"{where}: duplicate id")
        else:
            seen_ids.add(cid)
        lang, kind = conv.get("language"), conv.get("kind")
        if lang not in LANGUAGES:
            problems.append(f"{where}: bad language {lang!r}")
        if kind not in KINDS:
            problems.append(f"{where}: bad kind {kind!r}")
        counts[(lang, kind)] += 1
        turns = conv.get("turns")
        if not isinstance(turns, list) or len(turns) != 2:
            problems.append(f"{where}: needs exactly 2 turns")
            continue
        for t, turn in enumerate(turns, 1):
            if not isinstance(turn, dict):
                problems.append(f"{where} turn {t}: not an object")
                continue
            question, answer, art = turn.get("question"), turn.get("answer"), turn.get("article")
            if not isinstance(question, str) or not question.strip():
                problems.append(f"{where} turn {t}: empty question")
            if not isinstance(answer, str) or not answer.strip():
                problems.append(f"{where} turn {t}: empty answer")
                continue
            words = len(answer.split())
            if not MIN_WORDS <= words <= MAX_WORDS:
                problems.append(f"{where} turn {t}: answer has {words} words (want {MIN_WORDS}-{MAX_WORDS}): {answer!r}")
            found = get_article(art)
            if found is None:
                problems.append(f"{where} turn {t}: unknown article {art!r}")
                continue
            text, title = found
            articles.add(art)
            if nfc(answer) not in nfc(text):
                problems.append(f"{where} turn {t}: answer not verbatim in article {art!r}: {answer!r}")
            if "title" in turn and title is not None and nfc(turn["title"]) != nfc(title):
                problems.append(f"{where} turn {t}: title {turn['title']!r} != article title {title!r}")
        arts = [turn.get("article") if isinstance(turn, dict) else None for turn in turns]
        if kind == "follow_up" and arts[0] != arts[1]:
            problems.append(f"{where}: follow_up turns must share the article ({arts[0]!r} vs {arts[1]!r})")
        if kind == "switch" and arts[0] == arts[1]:
            problems.append(f"{where}: switch turns must be about different articles ({arts[0]!r})")
    return counts, articles


def report(label, counts, articles):
    total = sum(counts.values())
    print(f"{label}: {total} conversations, {len(articles)} distinct articles")
    for lang in sorted(LANGUAGES):
        row = {kind: counts[(lang, kind)] for kind in sorted(KINDS)}
        print(f"  {lang:10s} " + "  ".join(f"{k}={v}" for k, v in row.items()) + f"  total={sum(row.values())}")
    for kind in sorted(KINDS):
        print(f"  all        {kind}={sum(v for (l, k), v in counts.items() if k == kind)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vinewsqa", type=pathlib.Path,
                    default=ROOT.parent / "shared" / "benchdata" / "vinewsqa_dev.json")
    ap.add_argument("--seeds", type=pathlib.Path, default=ROOT / "seeds")
    args = ap.parse_args()

    problems = []
    seen_ids = set()

    try:
        data = json.loads(args.vinewsqa.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"cannot load ViNewsQA from {args.vinewsqa}: {exc}", file=sys.stderr)
        return 1

    def vinewsqa_article(i):
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(data):
            return None
        entry = data[i]
        return entry["paragraphs"][0]["context"], entry.get("title")

    seed_texts = {p.stem: p.read_text(encoding="utf-8") for p in sorted(args.seeds.glob("*.txt"))}

    def seed_article(name):
        text = seed_texts.get(name) if isinstance(name, str) else None
        return None if text is None else (text, None)

    c1, a1 = check_file(ROOT / "bench" / "data" / "conversations_vinewsqa.json", vinewsqa_article, problems, seen_ids)
    c2, a2 = check_file(ROOT / "retrieval" / "data" / "seed_conversations.json", seed_article, problems, seen_ids)
    report("conversations_vinewsqa.json", c1, a1)
    report("seed_conversations.json", c2, a2)

    if problems:
        print(f"\n{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
