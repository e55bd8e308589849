"""The assistant: a model and an index loaded once, answering questions with their history."""

from __future__ import annotations

import threading
from pathlib import Path

from assistant.answer import Answer, AnswerSettings, answer_question
from assistant.conversation import contextual_query
from assistant.overview import CorpusOverview, corpus_overview
from assistant.retrieval import Filters, Retriever
from embeddings import backend
from embeddings.encoder import Encoder, encoder_for_index


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
            return True

    def ask(
        self,
        question: str,
        *,
        history: list[str] = (),
        filters: Filters | None = None,
        settings: AnswerSettings | None = None,
    ) -> Answer:
        """Return the cited answer to `question`, reading follow-ups in the light of `history` (oldest first)."""
        question = question.strip()
        if not question:
            raise ValueError("the question is empty")
        damage = self.store.damage()
        if damage:
            raise backend.StoreError(damage)
        query = contextual_query(question, list(history))
        return answer_question(
            question, retriever=self.retriever, query=query, filters=filters, settings=settings or AnswerSettings()
        )
