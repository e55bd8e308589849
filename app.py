"""The chat page: ask the news articles, read answers quoted from them, open every cited source highlighted.

Run with `streamlit run app.py`. The index folder is $ASSISTANT_INDEX_DIR (default ./index); on the first run
it is built from seeds/. Uploaded files are kept in $ASSISTANT_UPLOAD_DIR (default ./corpus/uploads).
"""

from __future__ import annotations

from datetime import date
from html import escape
from pathlib import Path

import streamlit as st

from assistant import charts, render
from assistant.answer import AnswerSettings
from assistant.conversation import Conversation
from assistant.export import Turn, conversation_markdown, turn_markdown
from assistant.labels import UNKNOWN_OUTLET, filters_label, plural
from assistant.retrieval import Filters
from assistant.service import Assistant
from embeddings import backend, settings
from embeddings.articles import SUPPORTED_SUFFIXES
from embeddings.encoder import ModelError
from embeddings.indexer import update_index
from embeddings.uploads import index_uploads

SEEDS = Path(__file__).resolve().parent / "seeds"
HISTORY_TURNS = settings.history_turns()  # turns kept per session; older ones are dropped
CAPTION = "Answers are quoted word for word from the articles; every sentence is cited. Open a source to check it."
PROMPT = "Ask about the articles, e.g. what someone said about an event"
SCROLL = """<script>
// Bring the new answer's first line to the top, again for 10 s while the page settles, unless the reader scrolls
// or clicks first. Streamlit keeps a chat scrolled to its end until a wheel event on the scroller stops it.
const doc = window.parent.document, events = ["wheel", "touchstart", "keydown", "mousedown"];
let ticks = 0, stopped = false;
const byReader = e => { if (e.isTrusted) stop(); };
const stop = () => { stopped = true; events.forEach(e => doc.removeEventListener(e, byReader, true)); };
events.forEach(e => doc.addEventListener(e, byReader, true));
function go() {
  const target = doc.getElementById("answer-ID") || doc.getElementById("turn-ID");
  if (stopped) return;
  if (target) {
    let box = target.parentElement;
    while (box && !/auto|scroll/.test(getComputedStyle(box).overflowY)) box = box.parentElement;
    if (box) box.dispatchEvent(new WheelEvent("wheel", {deltaY: -1}));
    target.scrollIntoView({block: "start"});
  }
  if (ticks++ < 100) setTimeout(go, 100); else stop();
}
go();
</script>"""

st.set_page_config(page_title="News assistant", page_icon=":material/newspaper:", layout="wide")
st.html(render.STYLE)


@st.cache_resource(show_spinner="Loading the model and the index…")
def load_assistant(where: str) -> Assistant:
    """Return the assistant over the index at `where` (a folder, or Milvus), shared by every session of this process,
    its model warmed up."""
    assistant = Assistant(settings.index_location(Path(where)))
    assistant.encoder.encode(["warm up"])  # onnxruntime's first call takes about 0.3 s: not the first question's
    return assistant


def progress_bar(label: str):
    """Return an `on_progress(done, total)` callback that drives a new progress bar."""
    bar = st.progress(0.0, text=label)
    return lambda done, total: bar.progress(done / total, text=f"{label}: {done} of {total} texts")


@st.dialog("Cited article", width="large")
def show_article(source: render.Source) -> None:
    st.iframe(render.article_document(source), height=520)


def show_timeline(turn: dict, cited: list[render.Source]) -> None:
    chart = charts.timeline(cited)
    undated = [source for source in cited if not source.head.date]
    with st.expander("Timeline of the sources", icon=":material/timeline:"):
        if chart is not None:
            key = f"timeline-{turn['id']}"
            event = st.altair_chart(chart, on_select="rerun", selection_mode=charts.SELECTION, key=key)
            for point in (event.selection.get(charts.SELECTION) or [])[:1]:
                st.html(render.source_html(cited[point["card"]]))
        if undated:
            st.html(render.undated_html(undated))


def show_turn(turn: dict) -> None:
    answer = turn["answer"]
    with st.chat_message("user"):
        st.html(f'<div class="na-question" id="turn-{turn["id"]}">{escape(turn["question"])}</div>')
        if label := filters_label(turn["filters"]):
            st.html(f'<div class="na-meta na-filters">Asked with filters: {escape(label)}</div>')
    with st.chat_message("assistant"):
        if answer.abstained:
            st.warning("Declined: the articles don't say enough about this to quote an answer.")
            st.html(f'<div class="na-meta">{escape(turn["hint"])}</div>')
            return
        st.html(render.answer_html(answer, turn["id"]))
        cited = render.sources(answer)
        if compare := render.compare_html(answer):
            with st.expander("Compare the wording of each source", icon=":material/compare:"):
                st.html(compare)
        show_timeline(turn, cited)
        st.caption(f"Sources: {plural(len(answer.citations), 'excerpt')} from {plural(len(cited), 'article')}")
        for number, source in enumerate(cited):
            text, button = st.columns([0.82, 0.18], vertical_alignment="top")
            text.html(render.source_html(source, turn["id"]))
            if button.button("Open article", key=f"open-{turn['id']}-{number}", icon=":material/article:"):
                show_article(source)
        with st.expander("Copy as Markdown", icon=":material/content_copy:"):
            st.code(turn["markdown"], language="markdown", wrap_lines=True)


def show_upload_report(report) -> None:
    changed = [file for file in report.files if file.change != "unchanged"]
    if changed:
        st.success(f"Added {plural(len(changed), 'file')} to the corpus:")
        st.html(render.added_html(changed))
    elif not report.index.skipped:
        st.info("Those files are already in the corpus.")
    if report.index.skipped:
        st.error(f"{len(report.index.skipped)} not added:")
        st.html(render.refused_html(report.index.skipped))


def ask_example(question: str) -> None:
    st.session_state.example = question


def open_assistant(location) -> Assistant:
    """Return the assistant over `location`, indexing the seed articles on the very first run."""
    try:
        if not backend.index_exists(location):
            box = st.empty()
            with box.status("First run: indexing the seed articles…", expanded=True):
                built = update_index([SEEDS], index_dir=location, progress=False, on_progress=progress_bar("Embedding"))
            box.empty()
            st.toast(f"Indexed {plural(built.articles, 'seed article')}.", icon=":material/check_circle:")
        assistant = load_assistant(str(location))
        assistant.reload_if_changed()
        return assistant
    except (backend.StoreError, ModelError) as error:
        st.error(f"The index in {location} cannot be used: {error}")
        st.stop()


def sidebar_filters(overview) -> tuple[Filters, int]:
    """Draw the corpus overview and the filters in the sidebar; return the filters and the statements to quote."""
    st.header("Corpus")
    st.html(render.overview_html(overview))
    st.altair_chart(charts.corpus_charts(overview))
    st.subheader("Filters")
    choices = [*overview.outlets, *([UNKNOWN_OUTLET] if overview.unknown_outlet else [])]
    outlets = st.multiselect("Outlets", choices, placeholder="All outlets")
    date_from = date_to = None
    if overview.first_date:
        first, last = (date.fromisoformat(d) for d in (overview.first_date, overview.last_date))
        days = st.date_input("Dates", value=(first, last), min_value=first, max_value=last, help=(
            "Pick the first and the last day (one day: pick it once). Narrowing the dates leaves out articles "
            "without a date."))  # fmt: skip
        if days and tuple(days) != (first, last):
            date_from, date_to = days[0].isoformat(), days[-1].isoformat()
    picked = frozenset(None if name == UNKNOWN_OUTLET else name for name in outlets)
    filters = Filters(picked or None, date_from, date_to)
    if filters.active:
        st.html(f'<div class="na-meta na-filters">Searching only: {escape(filters_label(filters))}</div>')
    return filters, st.slider("Statements quoted per answer", 1, 8, AnswerSettings().max_sentences)


def add_turn(assistant: Assistant, question: str, filters: Filters, quoted: int) -> None:
    """Answer `question` with the conversation so far, and keep the turn with the filters it was searched under."""
    state = st.session_state
    with st.spinner("Searching the articles…"):
        history, answer_settings = state.conversation.turns, AnswerSettings(max_sentences=quoted)
        answer = assistant.ask(question, history=history, filters=filters, settings=answer_settings)
    searched = answer.filters or filters  # the sidebar's filters, narrowed by outlets and dates the question names
    filters_note = " Filters are on: clear them to search every article." if searched.active else ""
    turn = {"id": state.next_id, "question": question, "answer": answer, "filters": searched}
    turn["hint"] = assistant.overview().hint() + filters_note
    turn["markdown"] = "\n".join(turn_markdown(Turn(question, answer, searched)))
    state.turns = [*state.turns, turn][-HISTORY_TURNS:]
    state.next_id += 1
    state.conversation.add(question, answer)


def show_examples(overview) -> None:
    st.info(overview.summary() + " Ask a question below, or try one of these:", icon=":material/forum:")
    for number, example in enumerate(overview.example_questions()):
        st.button(example, key=f"example-{number}", on_click=ask_example, args=(example,), icon=":material/help:")


def upload_section(assistant: Assistant, location) -> None:
    """Draw the upload form; index what is added, then reload; list what was added and what was refused."""
    state = st.session_state
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
        with st.status(f"Indexing {plural(len(files), 'file')}…", expanded=True):
            try:
                state.upload_report = index_uploads(
                    [(file.name, file.getvalue()) for file in files],
                    folder=settings.upload_dir(),
                    index_dir=location,
                    encoder=assistant.encoder,
                    on_progress=progress_bar("Embedding"),
                )
            except (backend.StoreError, ModelError, OSError) as error:
                st.error(f"Nothing was added: {error}")
                st.stop()
        assistant.reload_if_changed()
        st.rerun()
    if state.upload_report:
        show_upload_report(state.upload_report)


def conversation_section() -> None:
    """Draw the conversation's controls: clear it, export it as Markdown."""
    state = st.session_state
    st.subheader("Conversation")
    if state.next_id > len(state.turns):
        st.caption(f"Only the last {HISTORY_TURNS} turns are kept.")
    clear, export = st.columns(2)
    if clear.button("Clear chat", icon=":material/delete:", disabled=not state.turns):
        state.turns, state.conversation = [], Conversation(limit=HISTORY_TURNS)
        st.rerun()
    turns = [Turn(t["question"], t["answer"], t["filters"]) for t in state.turns]
    export.download_button(
        "Export",
        data=lambda: conversation_markdown(turns),
        file_name="conversation.md",
        mime="text/markdown",
        icon=":material/download:",
        disabled=not state.turns,
        help="The conversation with its filters and cited sources, as Markdown",
    )


def main() -> None:
    location = settings.index_location()
    assistant = open_assistant(location)
    state = st.session_state
    state.setdefault("turns", [])
    state.setdefault("conversation", Conversation(limit=HISTORY_TURNS))
    state.setdefault("next_id", 0)
    state.setdefault("upload_report", None)
    overview = assistant.overview()
    with st.sidebar:
        filters, quoted = sidebar_filters(overview)
    st.title(":material/newspaper: News assistant")
    st.caption(CAPTION)
    question = st.chat_input(PROMPT) or state.pop("example", None)
    if question:
        add_turn(assistant, question, filters, quoted)
    for turn in state.turns:
        show_turn(turn)
    if question:
        st.iframe(SCROLL.replace("ID", str(state.turns[-1]["id"])), height=1)
    if not state.turns:
        show_examples(overview)
    with st.sidebar:
        upload_section(assistant, location)
        conversation_section()


main()
