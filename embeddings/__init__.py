"""Index time: article files -> passages -> vectors -> a FAISS index folder."""

from embeddings.articles import Article, LoadError, Skipped, read_articles
from embeddings.encoder import Encoder, ModelError
from embeddings.indexer import IndexReport, update_index
from embeddings.passages import Passage, chunk_article
from embeddings.store import Store, StoreError, load

__all__ = [
    "Article",
    "Encoder",
    "IndexReport",
    "LoadError",
    "ModelError",
    "Passage",
    "Skipped",
    "Store",
    "StoreError",
    "chunk_article",
    "load",
    "read_articles",
    "update_index",
]
