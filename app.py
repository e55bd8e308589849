"""The chat page: ask the news articles, read answers quoted from them, open every cited source highlighted.

Run with `streamlit run app.py`. The index folder is $ASSISTANT_INDEX_DIR (default ./index); on the first run
it is built from seeds/. Uploaded files are kept in $ASSISTANT_UPLOAD_DIR (default ./corpus/uploads).
"""

from __future__ import annotations

from datetime import date
from html import escape
from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from assistant import render
from assistant.answer import AnswerSettings
from assistant.conversation import Conversation
from assistant.export import conversation_markdown
from assistant.retrieval import Filters
from assistant.service import Assistant
from embeddings import backend, settings
from embeddings.articles import SUPPORTED_SUFFIXES
from embeddings.encoder import ModelError
from embeddings.indexer import update_index
from embeddings.uploads import index_uploads

SEEDS = Path(__file__).resolve().parent / "seeds"
HISTORY_TURNS = settings.history_turns()  # turns kept per session; older ones are dropped

st.set_page_config(page_title="News assistant", page_icon=":material/newspaper:", layout="wide")
st.html(render.STYLE)


@st.cache_resource(show_spinner="Loading the model and the index…")
def load_assistant(where: str) -> Assistant:
    """Return the assistant over the index at `where` (a folder, or Milvus), shared by every session of this process."""
    return Assistant(settings.index_location(Path(where)))


def progress_bar(label: str):
    """Return an `on_progress(done, total)` callback that drives a new progress bar."""
    bar = st.progress(0.0, text=label)
    return lambda done, total: bar.progress(done / total, text=f"{label}: {done} of {total} texts")


@st.dialog("Cited article", width="large")
def show_article(citation, article) -> None:
    components.html(render.article_document(citation, article), height=520)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def show_turn(turn: dict) -> None:
    with st.chat_message("user"):
        st.html(f"<div>{escape(turn['question'])}</div>")
    with st.chat_message("assistant"):
        answer = turn["answer"]
        if answer.abstained:
            st.warning("Declined: the articles don't say enough about this to quote an answer.")
            st.html(f'<div class="na-meta">{escape(turn["hint"])}</div>')
            return
        st.html(render.answer_html(answer))
        sources = {c.article_id for c in answer.citations}
        st.caption(f"Sources: {plural(len(answer.citations), 'excerpt')} from {plural(len(sources), 'article')}")
        for citation in answer.citations:
            article = turn["articles"][citation.article_id]
            text, button = st.columns([0.84, 0.16], vertical_alignment="center")
            text.html(render.source_html(citation, article))
            if button.button("Open article", key=f"open-{turn['id']}-{citation.n}", icon=":material/article:"):
                show_article(citation, article)


index_dir = settings.index_location()
try:
    if not backend.exists(index_dir):  # reruns must not parse a large manifest
        with st.status("First run: indexing the seed articles…", expanded=True) as status:
            built = update_index([SEEDS], index_dir=index_dir, progress=False, on_progress=progress_bar("Embedding"))
            status.update(label=f"Indexed {built.articles} seed articles.", state="complete", expanded=False)
    assistant = load_assistant(str(index_dir))
    assistant.reload_if_changed()
except (backend.StoreError, ModelError) as error:
    st.error(f"The index in {index_dir} cannot be used: {error}")
    st.stop()

state = st.session_state
state.setdefault("turns", [])
state.setdefault("conversation", Conversation(limit=HISTORY_TURNS))
state.setdefault("next_id", 0)
state.setdefault("upload_report", None)
overview = assistant.overview()

with st.sidebar:
    st.header("Corpus")
    st.html(render.overview_html(overview))
    st.subheader("Filters")
    outlets = st.multiselect("Outlets", list(overview.outlets), placeholder="All outlets")
    date_from = date_to = None
    if overview.first_date:
        first, last = (date.fromisoformat(d) for d in (overview.first_date, overview.last_date))
        days = st.date_input("Dates", value=(first, last), min_value=first, max_value=last, help=(
            "Narrowing the dates leaves out articles without a date."))  # fmt: skip
        if len(days) == 2 and days != (first, last):
            date_from, date_to = (day.isoformat() for day in days)
    filters = Filters(frozenset(outlets) or None, date_from, date_to)
    quoted = st.slider("Statements quoted per answer", 1, 8, AnswerSettings().max_sentences)

st.title(":material/newspaper: News assistant")
st.caption("Answers are quoted word for word from the articles; every sentence is cited. Open a source to check it.")
question = st.chat_input("Ask about the articles, e.g. what someone said about an event")
if question:
    with st.spinner("Searching the articles…"):
        before = assistant.store  # another session's upload may swap the index while this one answers
        history, answer_settings = state.conversation.questions, AnswerSettings(max_sentences=quoted)
        answer = assistant.ask(question, history=history, filters=filters, settings=answer_settings)
    cited = [c.article_id for c in answer.citations]
    filters_note = " Filters are on: clear them to search every article." if filters.active else ""
    state.turns = [
        *state.turns,
        {
            "id": state.next_id,
            "question": question,
            "answer": answer,
            "hint": overview.hint() + filters_note,
            "articles": {i: before.article_by_id.get(i) or assistant.store.article_by_id[i] for i in cited},
        },
    ][-HISTORY_TURNS:]
    state.next_id += 1
    state.conversation.add(question)

for turn in state.turns:
    show_turn(turn)
if not state.turns:
    st.info(overview.summary() + " Ask a question below.", icon=":material/forum:")

with st.sidebar:
    st.subheader("Add articles")
    with st.form("upload", clear_on_submit=True, border=False):
        files = st.file_uploader(
            "Article files",
            accept_multiple_files=True,
            help=f"{', '.join(SUPPORTED_SUFFIXES)} files: up to {settings.MAX_UPLOAD_FILES} at once, "
            f"{settings.MAX_FILE_BYTES // 1_000_000} MB each.",
        )
        submitted = st.form_submit_button("Add to the corpus", icon=":material/upload:")
    if submitted and files:
        with st.status(f"Indexing {len(files)} files…", expanded=True):
            try:
                state.upload_report = index_uploads(
                    [(file.name, file.getvalue()) for file in files],
                    folder=settings.upload_dir(),
                    index_dir=index_dir,
                    encoder=assistant.encoder,
                    on_progress=progress_bar("Embedding"),
                )
            except (backend.StoreError, ModelError, OSError) as error:
                st.error(f"Nothing was added: {error}")
                st.stop()
        assistant.reload_if_changed()
        st.rerun()
    if report := state.upload_report:
        changed = len(report.added) + len(report.updated)
        if changed:
            st.success(f"Added {len(report.added)} and updated {len(report.updated)} articles.")
        elif not report.skipped:
            st.info("Those files are already in the corpus.")
        if report.skipped:
            st.error(f"{len(report.skipped)} not added:")
            items = "".join(f"<li><b>{escape(s.path)}</b>: {escape(s.reason)}</li>" for s in report.skipped)
            st.html(f'<ul class="na-rejected">{items}</ul>')

    st.subheader("Conversation")
    if state.next_id > len(state.turns):
        st.caption(f"Only the last {HISTORY_TURNS} turns are kept.")
    clear, export = st.columns(2)
    if clear.button("Clear chat", icon=":material/delete:", disabled=not state.turns):
        state.turns, state.conversation = [], Conversation(limit=HISTORY_TURNS)
        st.rerun()
    export.download_button(
        "Export",
        data=conversation_markdown([(t["question"], t["answer"]) for t in state.turns]),
        file_name="conversation.md",
        mime="text/markdown",
        icon=":material/download:",
        disabled=not state.turns,
        help="The conversation with its cited excerpts, as Markdown",
    )
