"""Query time: question -> retrieved passages -> cited, verbatim answer; conversation and command line."""

from assistant.answer import Answer, AnswerSettings, Citation, answer_question
from assistant.conversation import Conversation, Turn, contextual_query
from assistant.question import Reading, read_question
from assistant.retrieval import Filters, Hit, Retriever
from assistant.service import Assistant
from assistant.timeline import Timeline

__all__ = [
    "Answer",
    "AnswerSettings",
    "Assistant",
    "Citation",
    "Conversation",
    "Filters",
    "Hit",
    "Reading",
    "Retriever",
    "Timeline",
    "Turn",
    "answer_question",
    "contextual_query",
    "read_question",
]
