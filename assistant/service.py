"""The assistant: a model and an index loaded once, answering questions with their history."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path

from assistant.answer import Answer, AnswerSettings, answer_question, answer_shape, quote
from assistant.conversation import (
    Turn,
    asks_to_repeat,
    asks_who_else,
    contextual_query,
    is_bare,
    is_elliptical,
    is_follow_up,
    new_terms,
    topic_chain,
)
from assistant.followup import CONTEXT_TURNS, discussed, keeps_dates, keeps_topic, quoted_first
from assistant.overview import CorpusOverview, corpus_overview
from assistant.question import (
    Focus,
    Reading,
    asking_terms,
    event_dates,
    lead_candidates,
    read_question,
    related,
    wanted_pattern,
)
from assistant.retrieval import Filters, Retriever
from assistant.statements import forget_articles
from assistant.timeline import in_time_order
from embeddings import backend
from embeddings.encoder import Encoder, encoder_for_index
from embeddings.terms import terms


class Assistant:
    """Answers questions over one index folder with one model, both loaded once."""

    def __init__(self, index_dir: Path, *, model_path: str | Path | None = None, encoder: Encoder | None = None):
        model = backend.recorded_model(index_dir)
        if model is None:
            raise backend.StoreError(f"No index in {index_dir}. Build one with: assistant index PATH ...")
        self.encoder = encoder or encoder_for_index({"model": model}, model_path)
        self.index_dir = index_dir
        self.retriever = Retriever(self._open(), self.encoder)
        self._reloading = threading.Lock()
        self._overview: tuple[backend.Reader, CorpusOverview] | None = None

    def _open(self) -> backend.Reader:
        return backend.open_reader(self.index_dir, model_fingerprint=self.encoder.fingerprint)

    @property
    def store(self) -> backend.Reader:
        """Return the loaded index."""
        return self.retriever.store

    def overview(self) -> CorpusOverview:
        """Return the overview of the loaded corpus, made once per loaded index (the page shows it on every rerun)."""
        store = self.store
        if self._overview is None or self._overview[0] is not store:
            self._overview = (store, corpus_overview(store))
        return self._overview[1]

    def reload_if_changed(self) -> bool:
        """Load the index again if another run wrote a newer version; return True if it did.

        Threads sharing this assistant load a new version once: the others wait for it, then use it.
        """
        if self.store.is_current():
            return False
        with self._reloading:
            if self.store.is_current():  # another thread loaded it while this one waited
                return False
            self.retriever = Retriever(self._open(), self.encoder)
            forget_articles()
            return True

    def ask(
        self,
        question: str,
        *,
        history: list[str | Turn] = (),
        filters: Filters | None = None,
        settings: AnswerSettings | None = None,
    ) -> Answer:
        """Return the cited answer to `question`, reading follow-ups in the light of `history` (oldest first).

        `history` holds earlier questions, or Turns with the spans their answers cited (for a bare question, its
        answer is made again). What the previous answer quoted is demoted unless asked for again; its articles and,
        in a follow-up, what the follow-up adds (its new words, its own meaning, reasons for "why") are preferred.
        """
        question = question.strip()
        if not question:
            raise ValueError("the question is empty")
        damage = self.store.damage()
        if damage:
            raise backend.StoreError(damage)
        settings = settings or AnswerSettings()
        turns = [turn if isinstance(turn, Turn) else Turn(turn) for turn in history]
        reading = self.read(question)
        if turns:
            turns[-1] = self._answered(turns, filters, settings)
        reading, query, focus = self._in_context(question, reading, turns, filters)
        narrowed = reading.filters(filters)
        if reading.only_dates:
            answer = self._leads(question, reading, narrowed, settings)
        else:
            answer = answer_question(
                question, retriever=self.retriever, query=query, filters=narrowed, settings=settings, focus=focus
            )
        answer = replace(answer, evidence=answer.evidence | {"reading": reading.to_json()}, filters=narrowed)
        return in_time_order(answer) if reading.time_order and not answer.abstained else answer

    def _in_context(
        self, question: str, reading: Reading, turns: list[Turn], filters: Filters | None
    ) -> tuple[Reading, str, Focus]:
        """Return a question's reading in its conversation, the text to search and how to pick what to quote.

        A follow-up is read as pointing back to the last turns (their outlets and dates, what they asked for), and
        is searched together with them; what the previous answer quoted is left out unless asked for again.
        """
        previous = turns[-1].cited if turns else frozenset()
        lead = discussed(turns)
        own_vector = self.encoder.encode([reading.query])[0] if turns else None
        # Without a pronoun, a question follows up only on discussed articles that the filters still admit.
        searchable = frozenset(i for i in lead if filters is None or filters.admits(self.store.article_by_id[i]))
        follow_up = bool(turns) and (
            is_follow_up(reading.query) or keeps_topic(self.retriever, reading.query, own_vector, searchable)
        )
        leave_out = frozenset() if asks_to_repeat(question) else previous
        context = frozenset(article_id for article_id, _, _ in previous)
        if not follow_up:
            prefer = wanted_pattern(reading.asks) if reading.asks else None
            focus = Focus(tuple(sorted(reading.outlets or ())), prefer, leave_out, context=context)
            return reading, reading.query, focus
        # A follow-up builds on the last two questions, and on the topic a chain of follow-ups is about.
        earlier = [self.read(earlier) for earlier in topic_chain([turn.question for turn in turns])]
        earlier_queries = [e.query for e in earlier]
        quoted = quoted_first(self.store, turns[-1])
        who_else = bool(quoted) and asks_who_else(question)
        if who_else:  # the other articles' versions of what the last answer quoted first are what it asks for
            own_vector = self.encoder.encode([quoted])[0]
        reading, shape = self._follow_up_reading(question, reading, earlier, lead, who_else=who_else)
        # "he" may be someone the answer before the last one introduced ("Who is the musical director?", then two
        # follow-ups): the full names the last two answers quoted first come with a person pronoun.
        recent = " ".join([quoted_first(self.store, turn) for turn in turns[-CONTEXT_TURNS:-1]] + [quoted])
        query = contextual_query(reading.query, earlier_queries, follow_up=True, quoted=recent)
        # A follow-up's words name the act an earlier answer quoted: a purpose after them is its reason; a bare
        # "Why?" asks about the act the question before it named.
        acts = next((q for q in reversed(earlier_queries) if terms(q)), "") if is_bare(question) else reading.query
        focus = Focus(
            tuple(sorted(reading.outlets or ())),
            wanted_pattern(reading.asks, acts) if reading.asks else None,
            leave_out,
            new_terms(reading.query, earlier_queries) - asking_terms(reading.query),
            own_vector,
            context,
            quoted if who_else else reading.query,
            lead,
            others=who_else,
            shape=shape,
            said=" ".join(earlier_queries),
        )
        return reading, query, focus

    def _follow_up_reading(
        self, question: str, reading: Reading, earlier: list[Reading], lead: frozenset[str], *, who_else: bool
    ) -> tuple[Reading, re.Pattern | None]:
        """Return a follow-up's reading with what it takes from the questions before it, and the kind of answer it
        asks for."""
        shape = answer_shape(reading.query, fine=True)
        if is_elliptical(reading.query):  # "And Biogen?" asks what the question before it asked
            reading = replace(reading, asks=reading.asks or earlier[-1].asks)
            shape = shape or answer_shape(earlier[-1].query, fine=True)
        if reading.outlets is None and reading.dates is None:  # "And about NATO?" keeps the earlier outlets, dates
            outlets = None if who_else else earlier[-1].outlets  # "Who else reported it?" asks beyond them
            reading = replace(reading, outlets=outlets, dates=earlier[-1].dates)
        if not keeps_dates(self.store, reading.dates, lead):  # "after the news": the news discussed, not a date
            reading = replace(reading, query=question, dates=None, event=None)
        return reading, shape

    def read(self, question: str) -> Reading:
        """Return the reading of `question` over this corpus: its outlets, and dates that some article has.

        A date range no article falls in is left in the query (it may be a date the text mentions); an event
        ("after the summit") is dated from the articles, or dropped when no article dates it.
        """
        overview = self.overview()
        reading = read_question(question, outlets=overview.outlets, latest=overview.last_date)
        if reading.event is not None:
            named = event_dates(self.retriever, reading.event, overview.last_date)
            dates = related(reading.relation, *named) if named else None
            reading = replace(reading, dates=dates, event=reading.event if dates else None, time_order=bool(dates))
        if reading.dates is not None and not overview.has_dates_in(reading.dates.first, reading.dates.last):
            reading = replace(reading, query=question, dates=None, time_order=bool(reading.event))
        return reading

    def _answered(self, turns: list[Turn], filters: Filters | None, settings: AnswerSettings) -> Turn:
        """Return the last turn with the spans its answer cited, answering its question again if they are not known.

        The question is answered again with the two turns before it as bare questions whose answers are taken as
        quoting nothing, so that one earlier answer is made again, not a chain of them.
        """
        last = turns[-1]
        if last.cited is not None:
            return last
        before = [Turn(turn.question, frozenset()) for turn in turns[-3:-1]]
        return Turn.of(last.question, self.ask(last.question, history=before, filters=filters, settings=settings))

    def _leads(self, question: str, reading: Reading, filters: Filters, settings: AnswerSettings) -> Answer:
        """Return the answer to a question naming only dates: the lead sentences of the articles of those dates."""
        store = self.store
        leads = lead_candidates(self.retriever, filters)
        evidence = {"retrieved": [[c.hit.article.id, c.hit.start, c.hit.end] for c in leads], "reason": "dates only"}
        if not leads:
            return Answer(question, True, query=reading.query, evidence=evidence | {"reason": "no article dated so"},
                          store=store)  # fmt: skip
        hits = [c.hit for c in leads]
        return quote(question, self.retriever, leads, settings, hits=hits, query=reading.query, evidence=evidence,
                     store=store)  # fmt: skip
