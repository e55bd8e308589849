"""The assistant: a model and an index loaded once, answering questions with their history."""

from __future__ import annotations

import threading
from pathlib import Path

from assistant.answer import Answer, AnswerSettings, answer_question
from assistant.conversation import contextual_query
from assistant.retrieval import Filters, Retriever
from embeddings import store as index_store
from embeddings.encoder import Encoder, encoder_for_index


class Assistant:
    """Answers questions over one index folder with one model, both loaded once."""

    def __init__(self, index_dir: Path, *, model_path: str | Path | None = None, encoder: Encoder | None = None):
        manifest = index_store.read_manifest(Path(index_dir))
        if manifest is None:
            raise index_store.StoreError(f"No index in {index_dir}. Build one with: assistant index PATH ...")
        self.encoder = encoder or encoder_for_index(manifest, model_path)
        self.index_dir = Path(index_dir)
        self.retriever = Retriever(
            index_store.load(self.index_dir, model_fingerprint=self.encoder.fingerprint), self.encoder
        )
        self._reloading = threading.Lock()

    @property
    def store(self) -> index_store.Store:
        """Return the loaded index."""
        return self.retriever.store

    def reload_if_changed(self) -> bool:
        """Load the index again if another run wrote a newer generation; return True if it did.

        Threads sharing this assistant load a new generation once: the others wait for it, then use it.
        """
        if not self._changed():
            return False
        with self._reloading:
            if not self._changed():  # another thread loaded it while this one waited
                return False
            fresh = index_store.load(self.index_dir, model_fingerprint=self.encoder.fingerprint)
            self.retriever = Retriever(fresh, self.encoder)
            return True

    def _changed(self) -> bool:
        """Return True if the index folder's manifest names another generation than the one loaded."""
        manifest = index_store.read_manifest(self.index_dir)
        return manifest is not None and manifest["generation"] != self.store.generation

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
        query = contextual_query(question, list(history))
        return answer_question(
            question, retriever=self.retriever, query=query, filters=filters, settings=settings or AnswerSettings()
        )
