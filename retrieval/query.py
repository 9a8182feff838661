"""Reading a question: its language, the words that carry its topic, its names, its BM25 query.

Text is normalised by `index.text`, as the build normalises the articles; what only a question needs
(which language it is in, which of its words say nothing about its topic, how an English question
names Vietnamese places) lives here.

Measured on UIT-ViNewsQA dev (see docs/quality.md): the question's own form words ("gì", "bao
nhiêu", ...) are dropped from the BM25 query as syllables but kept inside bigrams (MRR@10 +0.5).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from newsqa.index.lexical import ACCENTED, FOLDED, LexicalIndex, LexicalQuery
from newsqa.index.text import canonical, fold, has_diacritics, nfc, syllables

# -- language ------------------------------------------------------------------------------------

# A folded Vietnamese syllable: optional onset, a vowel nucleus, optional coda. English words
# mostly fail it ("what", "does", "from"), so the share of words that pass tells the language of
# an unaccented question without any model (ViNewsQA questions typed without marks: ≥ 0.7 for
# 99%; XQuAD's English questions: ≤ 0.45 for 99%).
_SYLLABLE_RE = re.compile(
    r"(?:ngh|ng|gh|gi|kh|nh|ph|qu|th|tr|ch|[bcdghklmnprstvx])?"
    r"(?:uye|uya|uyu|ieu|yeu|uoi|uou|oai|oay|oeo|uay|uai|ai|ao|au|ay|eo|eu|ia|ie|iu|oa|oe|oi|ua|ue|ui|uo|uu|uy|ye|[aeiouy])"
    r"(?:ch|nh|ng|[cmnpt])?"
)
# Text without diacritics is Vietnamese when at least this share of its words are well-formed
# Vietnamese syllables (between the two measured bounds above).
VIETNAMESE_SHARE = 0.5


def is_vietnamese_syllable(folded: str) -> bool:
    return _SYLLABLE_RE.fullmatch(folded) is not None


def vietnamese_share(text: str) -> float:
    """Share of the words (numbers aside) that are well-formed Vietnamese syllables."""
    words = [w for w in syllables(fold(canonical(nfc(text)))) if not any(c.isdigit() for c in w)]
    if not words:
        return 0.0
    return sum(map(is_vietnamese_syllable, words)) / len(words)


def is_vietnamese(text: str) -> bool:
    """The one language decision of newsqa: True for Vietnamese, False for anything else.

    - Any letter with a diacritic (or đ) makes the text Vietnamese, whatever else it holds: "Putin
      nói gì?" is. This counts the marks of other languages too ("Müller", "café", "São Paulo").
    - Text with no diacritic at all is Vietnamese typed without them when at least half of its
      words, numbers aside, are well-formed Vietnamese syllables once folded ("nga yeu cau gi"),
      which English mostly is not ("What did Russia demand?"). Short English can pass ("hi").
    - Text with no words but numbers (empty, "2022", "?") is not Vietnamese.
    """
    return has_diacritics(text) or vietnamese_share(text) >= VIETNAMESE_SHARE


# -- words that carry no topic -------------------------------------------------------------------

# Two lists, because they do different jobs (one list for both would change what each returns):
# - QUESTION_WORDS are dropped from a Vietnamese question's BM25 syllables. Only the few words
#   that make a sentence a question: a longer list (của, được, những, ...) measured no better, and
#   each folded form also hides content words ("bao" is also bão, báo, bảo), which bigrams still catch.
# - NON_TOPIC_WORDS (folded, Vietnamese and English) are left out when measuring how much of a
#   question a passage covers, and are never the question's names ("What ...", "Ai là ...").
#   BM25 does not need them removed: their IDF is low.
QUESTION_WORDS = frozenset("gì nào ai sao đâu bao nhiêu thế như là có không".split())
_QUESTION_WORDS_FOLDED = frozenset(map(fold, QUESTION_WORDS))
NON_TOPIC_WORDS = frozenset(
    """gi nao ai sao dau bao nhieu the nhu la co khong nhung cac cua va thi ma duoc bi hay voi ve
    tai vi khi nay do mot hoac nguoi ra len da se dang cho
    what who whom whose which when where why how did does do is are was were be been the a an of to
    in on for from by with about as at and or that this these those it its his her their there
    tell me please""".split()
)
# English function words. In a question asked in English over Vietnamese text they match
# Vietnamese syllables by accident ("to" → tô, tổ; "an" → ăn; "do" → đó), and they drown the
# names and numbers that really match: dropping them raised XQuAD English→Vietnamese BM25 MRR@10
# from 32.5 to 38.3.
ENGLISH_STOP_WORDS = frozenset(
    """a an the of to in on at by for from with about as is are was were be been being do does did
    what which who whom whose when where why how that this these those it its and or not no than then
    there their they he she his her him we you i me my our your can could would should will shall may
    might must has have had""".split()
)
# Capitalised in English but titles, not names: "President Macron" names only Macron.
TITLES = frozenset(
    """president prime minister ministry foreign state department secretary general spokesman spokeswoman
    chancellor king queen prince mr mrs ms dr""".split()
)


def topic_terms(words: list[str], folded: bool = True) -> list[str]:
    """Topic syllables of a question, and the adjacent pairs of them (Vietnamese words)."""
    keys = words if folded else [fold(w) for w in words]
    keep = [w not in NON_TOPIC_WORDS and k not in NON_TOPIC_WORDS for w, k in zip(words, keys)]
    topic = [w for w, k in zip(words, keep) if k]
    pairs = [f"{a}_{b}" for (a, ka), (b, kb) in zip(zip(words, keep), zip(words[1:], keep[1:])) if ka and kb]
    return topic + pairs


# -- places named in English ---------------------------------------------------------------------

# Places and bodies as Vietnamese news writes them, for questions asked in English: "Russia" is
# "Nga" in the articles, and without this an English question shares no word with its answer but
# the names that are spelt alike (NATO, Putin). Keys are folded English words or word pairs.
EXONYMS: dict[str, str] = {
    "russia": "Nga", "russian": "Nga", "russians": "Nga", "moscow": "Moskva", "kremlin": "Điện Kremlin",
    "britain": "Anh", "british": "Anh", "uk": "Anh", "england": "Anh", "english": "Anh", "london": "London",
    "america": "Mỹ", "american": "Mỹ", "americans": "Mỹ", "us": "Mỹ", "usa": "Mỹ", "united_states": "Mỹ Hoa Kỳ",
    "france": "Pháp", "french": "Pháp", "paris": "Paris", "germany": "Đức", "german": "Đức", "berlin": "Berlin",
    "china": "Trung Quốc", "chinese": "Trung Quốc", "beijing": "Bắc Kinh", "japan": "Nhật Bản", "japanese": "Nhật Bản",
    "tokyo": "Tokyo", "korea": "Hàn Quốc Triều Tiên", "south_korea": "Hàn Quốc", "north_korea": "Triều Tiên",
    "india": "Ấn Độ", "indian": "Ấn Độ", "australia": "Úc Australia", "australian": "Úc", "canada": "Canada",
    "italy": "Italy Ý", "italian": "Italy Ý", "spain": "Tây Ban Nha", "spanish": "Tây Ban Nha",
    "poland": "Ba Lan", "polish": "Ba Lan", "netherlands": "Hà Lan", "dutch": "Hà Lan", "belgium": "Bỉ",
    "sweden": "Thụy Điển", "finland": "Phần Lan", "norway": "Na Uy", "denmark": "Đan Mạch", "swiss": "Thụy Sĩ",
    "switzerland": "Thụy Sĩ", "greece": "Hy Lạp", "greek": "Hy Lạp", "turkey": "Thổ Nhĩ Kỳ", "egypt": "Ai Cập",
    "vietnam": "Việt Nam", "vietnamese": "Việt Nam", "hanoi": "Hà Nội", "ho_chi_minh": "Hồ Chí Minh",
    "thailand": "Thái Lan", "cambodia": "Campuchia", "laos": "Lào", "singapore": "Singapore", "indonesia": "Indonesia",
    "philippines": "Philippines", "malaysia": "Malaysia", "taiwan": "Đài Loan", "iran": "Iran", "israel": "Israel",
    "europe": "châu Âu", "european": "châu Âu", "eastern_europe": "Đông Âu", "western_europe": "Tây Âu",
    "asia": "châu Á", "asian": "châu Á", "africa": "châu Phi", "african": "châu Phi", "west": "phương Tây",
    "western": "phương Tây", "east": "phía đông", "eastern": "phía đông", "baltic": "Baltic",
    "european_union": "Liên minh châu Âu EU", "united_nations": "Liên hợp quốc", "un": "Liên hợp quốc",
    "white_house": "Nhà Trắng", "pentagon": "Lầu Năm Góc", "state_department": "Bộ Ngoại giao Mỹ",
    "foreign_ministry": "Bộ Ngoại giao", "prime_minister": "Thủ tướng", "president": "Tổng thống",
}


def exonym_terms(folded_words: Sequence[str]) -> list[list[str]]:
    """Folded Vietnamese syllables of each place an English question names (word pairs first)."""
    out: list[list[str]] = []
    i = 0
    while i < len(folded_words):
        pair = "_".join(folded_words[i : i + 2])
        if i + 1 < len(folded_words) and pair in EXONYMS:
            out.append(syllables(fold(EXONYMS[pair])))
            i += 2
            continue
        if folded_words[i] in EXONYMS:
            out.append(syllables(fold(EXONYMS[folded_words[i]])))
        i += 1
    return out


# -- names ---------------------------------------------------------------------------------------

_WORD_OR_STOP = re.compile(r"\w+|[.?!:;]")


def names(question: str) -> list[str]:
    """Folded names a question mentions: capitalised words not opening a sentence, acronyms, numbers.

    Names survive translation ("NATO", "Putin", "Ned Price" are written the same in Vietnamese
    news), so they are the one lexical clue an English question shares with Vietnamese text.
    """
    return [key for key, sure in _name_candidates(question) if sure]


# Words a follow-up or a question about a time opens with ("Còn Mỹ thì sao?", "Vậy ...", "Thế còn ...",
# "Rồi sao?", "Hồi tháng 10 ..."), folded:
# capitalised there, never a name, and a small collection may never use them.
FOLLOW_UP_OPENERS = frozenset("con vay the roi hoi".split())


def _name_candidates(question: str) -> list[tuple[str, bool]]:
    """(folded word, is a name for sure) for every name and every capitalised sentence opener."""
    found: dict[str, bool] = {}
    sentence_start = True
    for token in _WORD_OR_STOP.findall(nfc(question)):
        if not token[0].isalnum() and token[0] != "_":
            sentence_start = True
            continue
        acronym = len(token) > 1 and token.isupper()
        capitalised = len(token) > 1 and token[0].isupper()  # "I" is not a name
        if any(c.isdigit() for c in token) or acronym or capitalised:
            sure = not sentence_start or acronym or token[0].isdigit()
            key = fold(token)
            found[key] = found.get(key, False) or sure
        sentence_start = False
    return list(found.items())


def asked_names(question: str, lexical: LexicalIndex) -> tuple[str, ...]:
    """The question's names; a capitalised first word counts when the articles (`lexical`, the
    index's BM25 fields) never use it: in Vietnamese a question often opens with a name ("Đức sẽ
    gửi ...", "Nga yêu cầu ...")."""
    out = []
    for key, sure in _name_candidates(question):
        if key in NON_TOPIC_WORDS or key in ENGLISH_STOP_WORDS or key in TITLES:  # "What ...", "Ai là ..."
            continue
        if not sure and key in FOLLOW_UP_OPENERS:
            continue
        if sure or lexical.known_fraction([key]) == 0.0:
            out.append(key)
    return tuple(out)


# -- the question as searched --------------------------------------------------------------------


def analyse_query(question: str, vietnamese: bool = True) -> LexicalQuery:
    """The BM25 query of a question, in the field it is matched against: folded only when the
    user typed no diacritic at all. `vietnamese` (see `is_vietnamese`) says which language's
    question words to drop."""
    field = ACCENTED if has_diacritics(question) else FOLDED
    key = canonical(nfc(question))
    if field == FOLDED:
        key = fold(key)
    words = syllables(key)
    if not vietnamese:
        stop = ENGLISH_STOP_WORDS
    else:
        stop = QUESTION_WORDS if field == ACCENTED else _QUESTION_WORDS_FOLDED
    topic = [w for w in words if w not in stop]
    bigrams = [f"{a}_{b}" for a, b in zip(words, words[1:])]
    if not vietnamese:
        # The Vietnamese names of the places it mentions, matched like the rest of the question.
        places = exonym_terms([fold(w) for w in words])
        field = FOLDED
        topic = [fold(w) for w in topic] + [w for place in places for w in place]
        bigrams = [fold(b) for b in bigrams] + [f"{a}_{b}" for place in places for a, b in zip(place, place[1:])]
    return LexicalQuery(field, topic + bigrams, len(bigrams))


@dataclass(frozen=True)
class QueryAnalysis:
    lexical: LexicalQuery
    vietnamese: bool
    folded_terms: list[str]  # folded unigrams, for answer-sentence scoring
    question: str = ""  # as asked (NFC), for the answer's evidence checks


def analyse(question: str) -> QueryAnalysis:
    """What the question is made of: its language, its BM25 query and its folded words."""
    vietnamese = is_vietnamese(question)
    terms = syllables(fold(canonical(nfc(question))))
    return QueryAnalysis(
        lexical=analyse_query(question, vietnamese), vietnamese=vietnamese, folded_terms=terms, question=nfc(question)
    )
