"""Query time: question -> retrieved passages -> cited, verbatim answer; conversation and command line."""

from assistant.answer import Answer, AnswerSettings, Citation, answer_question
from assistant.conversation import Conversation, contextual_query
from assistant.retrieval import Filters, Hit, Retriever
from assistant.service import Assistant

__all__ = [
    "Answer",
    "AnswerSettings",
    "Assistant",
    "Citation",
    "Conversation",
    "Filters",
    "Hit",
    "Retriever",
    "answer_question",
    "contextual_query",
]
