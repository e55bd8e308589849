"""Evaluation: answer a question set over an index and measure retrieval, citations, declines and the grouping of
sentences into statements."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.answer import Answer, AnswerSettings
from assistant.service import Assistant
from assistant.statements import Claim, Grouping, claim, dangling_marks, same_statement, topic_terms
from embeddings.articles import Article
from embeddings.encoder import Encoder
from embeddings.terms import term_set, terms

RETRIEVAL_DEPTH = 5


@dataclass(frozen=True)
class Question:
    """One evaluation question: answerable ones name the articles that answer it and the accepted answer strings."""

    question: str
    history: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    unanswerable: bool = False


@dataclass
class Outcome:
    """What the assistant did with one question, and which checks it passed."""

    question: Question
    retrieved: list[str]
    cited: list[str]
    abstained: bool
    source_rank: int | None = None
    answer_in_passages: bool = False
    cites_source: bool = False
    answer_in_citations: bool = False
    answer_in_first: bool = False
    first_excerpt: str = ""
    cites_fact: bool = False
    """A citation from a gold source holds an answer string (what a follow-up is scored on)."""
    clipped: int = 0
    """Citations that open or close a quotation without its other half."""
    outside_content: int = 0
    """Citations that quote a dateline, credit, byline or headline: text outside the article's content."""

    @property
    def problems(self) -> list[str]:
        """Return what went wrong, empty if nothing did."""
        if self.question.unanswerable:
            return [] if self.abstained else ["answered an off-topic question"]
        if self.abstained:
            return ["declined an answerable question"]
        checks = {
            "no correct article in the top 5 passages": self.source_rank is not None and self.source_rank <= 5,
            "cites no correct article": self.cites_source,
            "no answer string in the cited excerpts": self.answer_in_citations,
            "no answer string in the first cited excerpt": self.answer_in_first,
        }
        return [problem for problem, passed in checks.items() if not passed]


@dataclass
class EvalReport:
    """The metrics of one evaluation run and its per-question outcomes."""

    metrics: dict
    outcomes: list[Outcome] = field(default_factory=list)

    def failures(self) -> list[dict]:
        """Return one record per question with a problem: the question, its problems and the first excerpt."""
        return [
            {
                "question": o.question.question,
                "history": list(o.question.history),
                "problems": o.problems,
                "sources": list(o.question.sources),
                "answers": list(o.question.answers),
                "retrieved": o.retrieved[:RETRIEVAL_DEPTH],
                "cited": o.cited,
                "first_excerpt": o.first_excerpt,
            }
            for o in self.outcomes
            if o.problems
        ]

    def to_json(self) -> dict:
        """Return the report as JSON: metrics, failures and every outcome."""
        outcomes = [asdict(o) | {"problems": o.problems} for o in self.outcomes]
        return {"metrics": self.metrics, "failures": self.failures(), "outcomes": outcomes}

    def table(self) -> str:
        """Return the metrics as a two-column Markdown table."""
        return metrics_table(self.metrics)


def metrics_table(metrics: dict) -> str:
    """Return metrics as a two-column Markdown table."""
    rows = ["| metric | value |", "|---|---|"]
    for name, value in metrics.items():
        shown = "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
        rows.append(f"| {name} | {shown} |")
    return "\n".join(rows)


def _strings(record: dict, key: str, number: int) -> tuple[str, ...]:
    value = record.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValueError(f"line {number}: {key!r} must be a list of non-empty strings")
    return tuple(value)


def parse_question(record: object, number: int) -> Question:
    """Return the question in one parsed line of a question file, or raise ValueError saying what is wrong."""
    if not isinstance(record, dict) or not isinstance(record.get("question"), str) or not record["question"].strip():
        raise ValueError(f'line {number}: expected an object with a non-empty string "question"')
    history = _strings(record, "history", number)
    if record.get("unanswerable") is True:
        return Question(record["question"], history, unanswerable=True)
    sources, answers = _strings(record, "sources", number), _strings(record, "answers", number)
    if not sources or not answers:
        raise ValueError(f'line {number}: give "sources" and "answers", or "unanswerable": true')
    return Question(record["question"], history, sources, answers)


def _records(path: Path):
    """Yield (line number, parsed record) for each non-blank line of a JSON-lines file."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: invalid JSON: {error.msg} (column {error.colno})") from error


def read_questions(path: Path) -> list[Question]:
    """Return the questions of a JSON-lines question file (blank lines ignored)."""
    questions = [parse_question(record, number) for number, record in _records(path)]
    if not questions:
        raise ValueError(f"{path} holds no questions")
    return questions


def normalize(text: str) -> str:
    """Return text lower-cased, with curly quotes made straight and runs of whitespace made one space."""
    text = text.translate(str.maketrans("“”‘’", "\"\"''"))
    return re.sub(r"\s+", " ", text).strip().casefold()


def contains_answer(text: str, answers: tuple[str, ...]) -> bool:
    """Return True if any answer string occurs in `text`, ignoring case, quote style and spacing."""
    haystack = normalize(text)
    return any(normalize(answer) in haystack for answer in answers)


def quotes_outside_content(article: Article, start: int, end: int) -> bool:
    """Return True if text[start:end] is not within one content block of the article (it quotes a dateline, a
    credit, a byline or a headline)."""
    return not any(a <= start and end <= b for a, b in article.blocks)


def score(question: Question, answer: Answer, passage_texts: list[str], articles: Mapping[str, Article]) -> Outcome:
    """Return the outcome of one answer: ranks and answer checks against the question's gold, and how many of its
    excerpts clip a quotation or quote what is not content."""
    retrieved = [article_id for article_id, _, _ in answer.evidence.get("retrieved", [])]
    cited = [c.article_id for c in answer.citations]
    outcome = Outcome(question, retrieved, cited, answer.abstained)
    outcome.first_excerpt = answer.citations[0].excerpt if answer.citations else ""
    for c in answer.citations:
        article = articles[c.article_id]
        outcome.clipped += bool(dangling_marks(article.text, c.start, c.end))
        outcome.outside_content += quotes_outside_content(article, c.start, c.end)
    if question.unanswerable:
        return outcome
    ranks = [rank for rank, article_id in enumerate(retrieved, start=1) if article_id in question.sources]
    outcome.source_rank = ranks[0] if ranks else None
    outcome.answer_in_passages = any(contains_answer(t, question.answers) for t in passage_texts[:RETRIEVAL_DEPTH])
    outcome.cites_source = any(article_id in question.sources for article_id in cited)
    outcome.answer_in_citations = any(contains_answer(c.excerpt, question.answers) for c in answer.citations)
    outcome.answer_in_first = contains_answer(outcome.first_excerpt, question.answers)
    outcome.cites_fact = cites_fact(question, answer)
    return outcome


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


def metrics(outcomes: list[Outcome], seconds: float) -> dict:
    """Return the summary metrics of a run's outcomes (rates over answerable questions unless named otherwise)."""
    answerable = [o for o in outcomes if not o.question.unanswerable]
    declined = [o for o in outcomes if o.abstained]
    answered = [o for o in outcomes if not o.abstained]
    unanswerable = len(outcomes) - len(answerable)
    correct_declines = sum(o.question.unanswerable for o in declined)
    follow_ups = [o for o in answerable if o.question.history]
    n = len(answerable)
    return {
        "questions": len(outcomes),
        "answerable": n,
        "unanswerable": unanswerable,
        "source recall@1": _rate(sum(o.source_rank == 1 for o in answerable), n),
        "source recall@5": _rate(sum(o.source_rank is not None and o.source_rank <= 5 for o in answerable), n),
        "MRR": _rate(sum(1 / o.source_rank for o in answerable if o.source_rank), n),
        "answer in top-5 passages": _rate(sum(o.answer_in_passages for o in answerable), n),
        "cites a correct article": _rate(sum(o.cites_source for o in answerable), n),
        "answer in citations": _rate(sum(o.answer_in_citations for o in answerable), n),
        "answer in first citation": _rate(sum(o.answer_in_first for o in answerable), n),
        "abstention precision": _rate(correct_declines, len(declined)),
        "abstention recall": _rate(correct_declines, unanswerable),
        "on-topic declined": sum(not o.question.unanswerable for o in declined),
        "mean citations per answer": _rate(sum(len(o.cited) for o in answered), len(answered)),
        "follow-ups citing the asked-for fact": _rate(sum(o.cites_fact for o in follow_ups), len(follow_ups)),
        "clipped quotations": sum(o.clipped for o in outcomes),
        "quoted datelines, credits or headlines": sum(o.outside_content for o in outcomes),
        "questions/s": len(outcomes) / seconds if seconds > 0 else None,
    }


def evaluate(assistant: Assistant, questions: list[Question], *, settings: AnswerSettings | None = None) -> EvalReport:
    """Return the report of asking every question of `assistant`, timed over the answering alone."""
    assistant.encoder.encode(["load the model before the clock starts"])
    answers, seconds = [], 0.0
    for question in questions:
        started = time.perf_counter()
        answers.append(assistant.ask(question.question, history=list(question.history), settings=settings))
        seconds += time.perf_counter() - started
    articles = assistant.store.article_by_id
    outcomes = []
    for question, answer in zip(questions, answers):
        passages = [articles[i].text[a:b] for i, a, b in answer.evidence.get("retrieved", [])]
        outcomes.append(score(question, answer, passages, articles))
    return EvalReport(metrics(outcomes, seconds), outcomes)


def sample(questions: list[Question], limit: int | None) -> list[Question]:
    """Return `limit` questions spread evenly over the list (all of them without a limit)."""
    if limit is None or limit >= len(questions):
        return questions
    return [questions[i * len(questions) // limit] for i in range(limit)]


@dataclass(frozen=True)
class ConversationCase:
    """One evaluation conversation: its turns in order (each a Question with gold), and its split (dev, test, ...)."""

    id: str
    split: str
    turns: tuple[Question, ...]


def read_conversations(path: Path) -> list[ConversationCase]:
    """Return the conversations of a JSON-lines file: {"id", "split", "turns": [{"question", "sources", "answers"}]}."""
    cases = []
    for number, record in _records(path):
        turns = record.get("turns") if isinstance(record, dict) else None
        if not isinstance(turns, list) or len(turns) < 2:
            raise ValueError(f'{path}, line {number}: expected an object with "turns": a list of two or more')
        questions = tuple(parse_question(turn, number) for turn in turns)
        cases.append(ConversationCase(str(record.get("id", number)), str(record.get("split", "dev")), questions))
    if not cases:
        raise ValueError(f"{path} holds no conversations")
    return cases


def is_conversation_file(path: Path) -> bool:
    """Return True if the first record of a JSON-lines file is a conversation (it has "turns")."""
    try:
        _, first = next(_records(path), (0, None))
    except ValueError:
        return False  # reading it as a question file reports the error
    return isinstance(first, dict) and "turns" in first


@dataclass
class FollowUp:
    """What the assistant did with one follow-up: whether it cited the asked-for fact or re-quoted the last answer."""

    conversation: str
    split: str
    question: Question
    cites_fact: bool
    repeats_previous: bool
    cited: list[str]
    first_excerpt: str


def cites_fact(question: Question, answer: Answer) -> bool:
    """Return True if a citation from one of the question's gold sources holds one of its answer strings."""
    return any(
        c.article_id in question.sources and contains_answer(c.excerpt, question.answers) for c in answer.citations
    )


def evaluate_conversations(
    assistant: Assistant, cases: list[ConversationCase], *, settings: AnswerSettings | None = None
) -> ConversationReport:
    """Return the report of holding each conversation as a chat does: every turn asked with the earlier turns."""
    from assistant.conversation import Turn

    follow_ups = []
    for case in cases:
        history: list[Turn] = []
        for position, question in enumerate(case.turns):
            answer = assistant.ask(question.question, history=history, settings=settings)
            if position:
                earlier = history[-1].cited or frozenset()
                spans = {(c.article_id, c.start, c.end) for c in answer.citations}
                follow_ups.append(FollowUp(
                    case.id, case.split, question, cites_fact(question, answer), bool(spans & earlier),
                    [c.article_id for c in answer.citations], answer.citations[0].excerpt if answer.citations else "",
                ))  # fmt: skip
            history.append(Turn.of(question.question, answer))
    metrics = {"conversations": len(cases), "follow-ups": len(follow_ups)}
    for split in [*dict.fromkeys(case.split for case in cases), None]:
        chosen = [f for f in follow_ups if split is None or f.split == split]
        name = split or "all"
        metrics[f"follow-ups citing the asked-for fact ({name})"] = _rate(
            sum(f.cites_fact for f in chosen), len(chosen)
        )
    metrics["follow-ups re-quoting the previous answer"] = sum(f.repeats_previous for f in follow_ups)
    return ConversationReport(metrics, follow_ups)


@dataclass
class ConversationReport:
    """The metrics of a conversation run and its follow-ups."""

    metrics: dict
    follow_ups: list[FollowUp]

    def failures(self) -> list[dict]:
        """Return one record per follow-up that did not cite the asked-for fact."""
        return [
            {
                "conversation": f.conversation,
                "question": f.question.question,
                "problems": ["the asked-for fact is not cited"],
                "answers": list(f.question.answers),
                "cited": f.cited,
                "first_excerpt": f.first_excerpt,
            }
            for f in self.follow_ups
            if not f.cites_fact
        ]

    def to_json(self) -> dict:
        """Return the report as JSON: metrics, failures and every follow-up."""
        return {
            "metrics": self.metrics,
            "failures": self.failures(),
            "follow_ups": [asdict(f) for f in self.follow_ups],
        }

    def table(self) -> str:
        """Return the metrics as a two-column Markdown table."""
        return metrics_table(self.metrics)


# --- grouping sentences into statements --------------------------------------------------------


@dataclass(frozen=True)
class SentencePair:
    """Two sentences from two articles, labelled by reading them: the same statement or not; their split, and the ids
    of their articles when known."""

    a: str
    b: str
    same: bool
    split: str
    articles: frozenset[str] = frozenset()


def read_pairs(path: Path) -> list[SentencePair]:
    """Return the labelled pairs of a JSON-lines file: {"a", "b", "same": true|false, "split"} a line."""
    pairs = []
    for number, record in _records(path):
        texts = [record.get(key) for key in ("a", "b")] if isinstance(record, dict) else [None]
        if not all(isinstance(t, str) and t.strip() for t in texts) or not isinstance(record.get("same"), bool):
            raise ValueError(
                f'{path}, line {number}: expected an object with strings "a" and "b" and "same": a boolean'
            )
        articles = frozenset(str(record[key]) for key in ("a_id", "b_id") if key in record)
        pairs.append(SentencePair(*texts, record["same"], str(record.get("split", "dev")), articles))
    if not pairs:
        raise ValueError(f"{path} holds no sentence pairs")
    return pairs


def pair_claims(pairs: list[SentencePair], encoder: Encoder) -> dict[str, Claim]:
    """Return the claim of every sentence of the pairs, by its text."""
    texts = sorted({p.a for p in pairs} | {p.b for p in pairs})
    return {text: claim(text, vector) for text, vector in zip(texts, encoder.encode(texts))}


@dataclass(frozen=True)
class GroupingScore:
    """How well `same_statement` decides a set of labelled pairs."""

    pairs: int
    same: int
    precision: float
    recall: float
    reworded: int
    """Same-statement pairs sharing less than half their terms: paraphrases and translations."""
    reworded_recall: float


def reworded(pair: SentencePair) -> bool:
    """Return True if the two sentences share less than half their terms (Jaccard)."""
    a, b = set(terms(pair.a)), set(terms(pair.b))
    return len(a & b) < 0.5 * len(a | b)


def pair_topics(pairs: list[SentencePair], grouping: Grouping) -> dict[frozenset[str], frozenset[str]]:
    """Return the topic terms of each pair of articles, told from all the sentences the pairs quote from them (as an
    answer tells them from the sentences it retrieved); none for pairs without article ids."""
    texts: dict[frozenset[str], set[str]] = {}
    for p in pairs:
        texts.setdefault(p.articles, set()).update((p.a, p.b))
    return {ids: topic_terms([term_set(t) for t in sorted(quoted)], grouping) if ids else frozenset()
            for ids, quoted in texts.items()}  # fmt: skip


def score_grouping(
    pairs: list[SentencePair], claims: Mapping[str, Claim], grouping: Grouping, topics: Mapping | None = None
) -> GroupingScore:
    """Return the precision and recall of grouping the pairs (1.0 when nothing is grouped or nothing is the same).

    `topics` (see `pair_topics`) are told from these pairs unless given (from a larger set holding them)."""
    topics = pair_topics(pairs, grouping) if topics is None else topics
    said = [same_statement(claims[p.a], claims[p.b], grouping, topics[p.articles]) for p in pairs]
    true_positive = sum(s and p.same for s, p in zip(said, pairs))
    predicted, actual = sum(said), sum(p.same for p in pairs)
    rewords = [s for s, p in zip(said, pairs) if p.same and reworded(p)]
    return GroupingScore(
        len(pairs),
        actual,
        true_positive / predicted if predicted else 1.0,
        true_positive / actual if actual else 1.0,
        len(rewords),
        sum(rewords) / len(rewords) if rewords else 1.0,
    )


def grouping_metrics(pairs: list[SentencePair], encoder: Encoder, grouping: Grouping | None = None) -> dict:
    """Return grouping precision and recall for each split of the pairs (default settings unless `grouping` is
    given), in the order the splits first appear."""
    claims, grouping = pair_claims(pairs, encoder), grouping or Grouping()
    topics = pair_topics(pairs, grouping)
    metrics = {}
    for split in dict.fromkeys(p.split for p in pairs):
        result = score_grouping([p for p in pairs if p.split == split], claims, grouping, topics)
        metrics[f"grouping pairs ({split})"] = f"{result.pairs} ({result.same} same)"
        metrics[f"grouping precision ({split})"] = result.precision
        metrics[f"grouping recall ({split})"] = result.recall
    return metrics
