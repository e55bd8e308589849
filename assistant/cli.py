"""Command line: `assistant index`, `assistant ask`, `assistant timeline`, `assistant chat` and `assistant eval`."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path

from embeddings import settings

# Exit codes: everything done; done, but some input was skipped; nothing usable, or a failure.
OK, PARTIAL, FAILED = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistant", description="Ask questions of a folder of news articles; get answers quoted from them."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def common(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--index-dir",
            type=Path,
            default=None,
            help=f"index folder (default: $ASSISTANT_INDEX_DIR or {settings.index_dir()})",
        )
        command.add_argument(
            "--model", default=None, help="local sentence-transformers folder (default: the index's model)"
        )
        command.add_argument(
            "--milvus-uri",
            metavar="URI",
            help="keep the index in Milvus instead: a path ending in .db (Milvus Lite) or http://host:19530 "
            "(default: $ASSISTANT_MILVUS_URI)",
        )
        command.add_argument("--milvus-token", metavar="TOKEN", help="Milvus token (default: $ASSISTANT_MILVUS_TOKEN)")

    index = commands.add_parser("index", help="index article files (.txt .md .html .jsonl) or folders of them")
    index.add_argument("paths", nargs="*", type=Path, help="files or folders (default: seeds/, none with --compact)")
    index.add_argument("--rebuild", action="store_true", help="ignore the existing index and embed everything again")
    index.add_argument(
        "--compact", action="store_true", help="then merge the index's segments into one, checking every checksum"
    )
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    common(index)

    ask = commands.add_parser("ask", help="answer one question, or a batch of them")
    ask.add_argument("question", nargs="?", help="the question")
    ask.add_argument("--batch", metavar="FILE", help='JSON lines {"question": ..., "history": [...]}; - for stdin')
    ask.add_argument("--history", nargs="*", default=[], metavar="Q", help="earlier questions, oldest first")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    _answer_options(ask)
    common(ask)

    timeline = commands.add_parser("timeline", help="the statements answering a question, in date order")
    timeline.add_argument("question", help='the question, e.g. "What did the Kremlin say after the summit?"')
    timeline.add_argument("--json", action="store_true", help="print the timeline as JSON")
    _answer_options(timeline, statements=TIMELINE_STATEMENTS)
    common(timeline)

    chat = commands.add_parser("chat", help="an interactive chat in the terminal, with follow-up questions")
    _answer_options(chat)
    common(chat)

    evaluate = commands.add_parser(
        "eval",
        help="measure answer quality on a question set or on SQuAD 2.0, and statement grouping on sentence pairs",
    )
    evaluate.add_argument("questions", nargs="?", type=Path, help="JSON lines of questions with their gold answers")
    evaluate.add_argument(
        "--grouping",
        type=Path,
        metavar="PAIRS",
        help="JSON lines of sentence pairs labelled same or not: score grouping",
    )
    evaluate.add_argument("--squad", type=Path, metavar="FILE", help="a SQuAD 2.0 JSON file: index it, ask it")
    evaluate.add_argument("--limit", type=int, metavar="N", help="ask only N questions, spread evenly over the set")
    evaluate.add_argument("--report", type=Path, metavar="FILE", help="write the JSON report here")
    evaluate.add_argument("--max-sentences", type=int, default=3, help="most sentences quoted (default 3)")
    common(evaluate)
    return parser


TIMELINE_STATEMENTS = 8
"""Most statements a timeline lists by default."""


def _answer_options(command: argparse.ArgumentParser, *, statements: int = 3) -> None:
    command.add_argument("--outlet", action="append", help="only cite this outlet (repeatable)")
    command.add_argument("--since", metavar="YYYY-MM-DD", help="only cite articles dated on or after this day")
    command.add_argument("--until", metavar="YYYY-MM-DD", help="only cite articles dated on or before this day")
    command.add_argument(
        "--max-sentences", type=int, default=statements, help=f"most sentences quoted (default {statements})"
    )


def _filters(args):
    from assistant.retrieval import Filters

    return Filters(frozenset(args.outlet) if args.outlet else None, args.since, args.until)


def _settings(args):
    from assistant.answer import AnswerSettings

    if args.max_sentences < 1:
        raise ValueError("--max-sentences must be at least 1")
    return AnswerSettings(max_sentences=args.max_sentences)


def _marked(citation, differences) -> str:
    """Return a version's excerpt with each run of differing words wrapped in *asterisks*."""
    text, pieces, position = citation.excerpt, [], 0
    runs: list[list[int]] = []
    for start, end in differences:
        a, b = start - citation.start, end - citation.start
        if runs and not any(ch.isalnum() for ch in text[runs[-1][1] : a]):
            runs[-1][1] = b  # words apart only by spaces or punctuation form one run
        else:
            runs.append([a, b])
    for a, b in runs:
        pieces += [text[position:a], f"*{text[a:b]}*"]
        position = b
    return "".join(pieces) + text[position:]


def format_comparison(answer) -> list[str]:
    """Return the lines that set each statement's versions side by side, differing words marked *like this*."""
    from assistant.export import badge
    from assistant.labels import plural

    by_n = {c.n: c for c in answer.citations}
    lines = []
    for number, statement in enumerate(answer.statements, start=1):
        versions = plural(len(statement.versions), "version")
        lines += ["", f"Statement {number}, {versions}: {badge(statement, by_n)}"]
        for version in statement.versions:
            line = f"[{version.n}] {version.label}: {_marked(by_n[version.n], version.differences)}"
            lines += textwrap.wrap(line, width=100, initial_indent="  ", subsequent_indent="      ")
    return lines


def format_answer(answer) -> str:
    """Return an answer for the terminal: its text (for a comparison, each statement's versions with their
    differences marked), then each numbered source with its excerpt."""
    from assistant.export import source_line
    from assistant.statements import is_comparison

    lines = textwrap.wrap(answer.answer, width=100) or [answer.answer]
    if answer.abstained:
        return "\n".join(lines)
    if is_comparison(answer.question):
        lines = ["How each source worded it (words that differ between versions are marked *like this*):"]
        lines += format_comparison(answer)
    lines += ["", "Sources:"]
    for c in answer.citations:
        lines.append(f" [{c.n}] {source_line(c)}")
        lines.append(f"     {c.path}, characters {c.start}-{c.end}")
        lines += textwrap.wrap(c.excerpt, width=96, initial_indent="     > ", subsequent_indent="       ")
    return "\n".join(lines)


def _index(args) -> int:
    try:
        return _index_or_compact(args)
    except KeyboardInterrupt:
        print(
            "Interrupted. What was committed stays indexed: run the same command again to go on "
            "(articles already embedded are not embedded again).",
            file=sys.stderr,
        )
        return FAILED


def _index_or_compact(args) -> int:
    from embeddings.indexer import compact_index, update_index

    def waiting() -> None:
        print(f"Waiting for another indexing run on {args.index_dir} to finish...", file=sys.stderr)

    report = None
    if args.paths or not args.compact:
        report = update_index(
            args.paths or [Path("seeds")], index_dir=args.index_dir, model_path=args.model, rebuild=args.rebuild,
            progress=not args.quiet, on_wait=waiting,
        )  # fmt: skip
        print(report.summary())
    if args.compact:
        started = time.perf_counter()
        compact_index(args.index_dir, on_wait=waiting)
        print(f"Compacted: one segment, every file's checksum checked, in {time.perf_counter() - started:.1f} s.")
    print(f"Index: {args.index_dir}")
    if report is None:
        return OK
    if report.skipped and not report.read:
        print("Nothing usable was found in the given paths; the index is unchanged.", file=sys.stderr)
        return FAILED
    return PARTIAL if report.skipped else OK


def _batch_lines(source: str):
    if source == "-":
        yield from enumerate(sys.stdin, start=1)
        return
    with open(source, encoding="utf-8") as handle:
        yield from enumerate(handle, start=1)


def _ask(args) -> int:
    from assistant.service import Assistant

    if bool(args.question) == bool(args.batch):
        raise ValueError('give either a question or --batch FILE, e.g. assistant ask "Who did Belousov call?"')
    assistant = Assistant(args.index_dir, model_path=args.model)
    filters, settings_ = _filters(args), _settings(args)
    if args.question:
        answer = assistant.ask(args.question, history=args.history, filters=filters, settings=settings_)
        print(json.dumps(answer.to_json(), ensure_ascii=False, indent=2) if args.json else format_answer(answer))
        return OK
    status = OK
    for number, line in _batch_lines(args.batch):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("question"), str):
                raise ValueError('expected an object with a string "question"')
            history = record.get("history", [])
            if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
                raise ValueError('"history" must be a list of strings')
            result = assistant.ask(record["question"], history=history, filters=filters, settings=settings_).to_json()
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            result, status = {"line": number, "error": str(error)}, PARTIAL
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return status


def _timeline(args) -> int:
    from assistant.service import Assistant
    from assistant.timeline import Timeline, in_time_order

    answer = Assistant(args.index_dir, model_path=args.model).ask(
        args.question, filters=_filters(args), settings=_settings(args)
    )
    timeline = Timeline(in_time_order(answer))
    print(json.dumps(timeline.to_json(), ensure_ascii=False, indent=2) if args.json else timeline.text())
    return OK


def _chat(args) -> int:
    from assistant.conversation import Conversation
    from assistant.service import Assistant

    assistant = Assistant(args.index_dir, model_path=args.model)
    store = assistant.store
    print(f"{store.article_count} articles, {store.passage_count} passages.", end=" ")
    print("Ask a question; /reset starts over, /quit ends.")
    conversation = Conversation()
    filters, settings_ = _filters(args), _settings(args)
    while True:
        try:
            question = input("\nYou: ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return OK
        if question in ("/quit", "/exit"):
            return OK
        if question == "/reset":
            conversation = Conversation()
            print("Started a new conversation.")
            continue
        if not question:
            continue
        answer = assistant.ask(question, history=conversation.turns, filters=filters, settings=settings_)
        conversation.add(question, answer)
        print("\nAssistant: " + format_answer(answer))


def _eval(args) -> int:
    from assistant.evaluate import evaluate, is_conversation_file, read_questions, sample
    from assistant.service import Assistant

    if args.questions and args.squad:
        raise ValueError("give either a question file or --squad FILE, e.g. assistant eval eval/seeds.jsonl")
    if not (args.questions or args.squad):
        if not args.grouping:
            raise ValueError(
                "give a question file, --squad FILE or --grouping PAIRS, e.g. assistant eval eval/seeds.jsonl"
            )
        return _eval_grouping(args)
    if args.questions and is_conversation_file(args.questions):
        return _eval_conversations(args)
    if args.squad:
        from assistant.squad import read_squad, write_articles
        from embeddings.indexer import update_index

        articles, questions = read_squad(args.squad)
        folder = args.index_dir if isinstance(args.index_dir, Path) else settings.cache_dir() / "squad"
        file = write_articles(articles, folder)
        print(update_index([file], index_dir=args.index_dir, model_path=args.model, progress=True).summary())
    else:
        questions = read_questions(args.questions)
    assistant = Assistant(args.index_dir, model_path=args.model)
    report = evaluate(assistant, sample(questions, args.limit), settings=_settings(args))
    _print_report(report, args, assistant.encoder)
    return OK


def _eval_conversations(args) -> int:
    from assistant.evaluate import evaluate_conversations, read_conversations
    from assistant.service import Assistant

    assistant = Assistant(args.index_dir, model_path=args.model)
    report = evaluate_conversations(assistant, read_conversations(args.questions), settings=_settings(args))
    _print_report(report, args, assistant.encoder)
    return OK


def _eval_grouping(args) -> int:
    from assistant.evaluate import EvalReport
    from embeddings.encoder import Encoder

    _print_report(EvalReport({}), args, Encoder(args.model))
    return OK


def _print_report(report, args, encoder) -> None:
    """Print the report's failures and metrics (with grouping's on `args.grouping`, if given); write it to
    `args.report` if given."""
    from assistant.evaluate import grouping_metrics, read_pairs

    if args.grouping:
        report.metrics.update(grouping_metrics(read_pairs(args.grouping), encoder))
    for failure in report.failures():
        print(f"FAIL {failure['question']!r}: {'; '.join(failure['problems'])}")
    print(report.table())
    if args.report:
        args.report.write_text(json.dumps(report.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"Report: {args.report}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 some input skipped, 2 nothing usable or failed)."""
    from embeddings.backend import StoreError
    from embeddings.encoder import ModelError

    args = _parser().parse_args(argv)
    args.index_dir = settings.index_location(args.index_dir, args.milvus_uri, args.milvus_token)
    try:
        return {"index": _index, "ask": _ask, "timeline": _timeline, "chat": _chat, "eval": _eval}[args.command](args)
    except (StoreError, ModelError, ValueError, OSError) as error:
        print(f"assistant {args.command}: {error}", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
