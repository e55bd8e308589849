"""The assistant: a model and an index loaded once, answering questions with their history."""

from __future__ import annotations

import threading
from pathlib import Path

from assistant.answer import Answer, AnswerSettings, answer_question
from assistant.conversation import contextual_query
from assistant.overview import CorpusOverview, corpus_overview
from assistant.retrieval import Filters, Retriever
from embeddings import store as index_store
from embeddings.encoder import Encoder, encoder_for_index


class Assistant:
    """Answers questions over one index folder with one model, both loaded once."""

    def __init__(self, index_dir: Path, *, model_path: str | Path | None = None, encoder: Encoder | None = None):
        signature = index_store.manifest_signature(Path(index_dir))
        manifest = index_store.read_manifest(Path(index_dir))
        if manifest is None:
            raise index_store.StoreError(f"No index in {index_dir}. Build one with: assistant index PATH ...")
        self.encoder = encoder or encoder_for_index(manifest, model_path)
        self.index_dir = Path(index_dir)
        self.retriever = Retriever(
            index_store.load(self.index_dir, model_fingerprint=self.encoder.fingerprint), self.encoder
        )
        self._reloading = threading.Lock()
        self._confirmed = signature  # the manifest version last seen to name the loaded generation
        self._overview: tuple[index_store.Store, CorpusOverview] | None = None

    @property
    def store(self) -> index_store.Store:
        """Return the loaded index."""
        return self.retriever.store

    def overview(self) -> CorpusOverview:
        """Return the overview of the loaded corpus, made once per loaded index (the page shows it on every rerun)."""
        store = self.store
        if self._overview is None or self._overview[0] is not store:
            self._overview = (store, corpus_overview(store))
        return self._overview[1]

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
        """Return True if the index folder's manifest names another generation than the one loaded.

        The manifest is parsed only when its file is not the version last seen to name the loaded generation.
        """
        signature = index_store.manifest_signature(self.index_dir)
        if signature == self._confirmed:
            return False
        manifest = index_store.read_manifest(self.index_dir)
        if manifest is None or manifest["generation"] == self.store.generation:
            self._confirmed = signature
            return False
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
        query = contextual_query(question, list(history))
        return answer_question(
            question, retriever=self.retriever, query=query, filters=filters, settings=settings or AnswerSettings()
        )
