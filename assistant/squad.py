"""SQuAD adapter: a SQuAD 2.0 JSON file as articles to index (one per paragraph) and questions to evaluate."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.evaluate import Question

ARTICLES_FILE = "squad-paragraphs.jsonl"


def read_squad(path: Path) -> tuple[list[dict], list[Question]]:
    """Return the paragraphs of a SQuAD file as article records and its answerable questions.

    Each paragraph becomes an article with id "<title>-<paragraph number>" and the page title as its title.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
        articles, questions = [], []
        for page in data:
            title = page["title"].replace("_", " ")
            for number, paragraph in enumerate(page["paragraphs"], start=1):
                article_id = f"{page['title']}-{number:03d}"
                articles.append({"id": article_id, "title": title, "text": paragraph["context"]})
                for qa in paragraph["qas"]:
                    answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"] if a["text"].strip()))
                    if not qa.get("is_impossible") and answers:
                        questions.append(Question(qa["question"], sources=(article_id,), answers=answers))
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a SQuAD 2.0 file: {error!r}") from error
    return articles, questions


def write_articles(articles: list[dict], index_dir: Path) -> Path:
    """Write the article records as JSON lines into `index_dir` (left untouched if unchanged); return the file."""
    index_dir.mkdir(parents=True, exist_ok=True)
    file = index_dir / ARTICLES_FILE
    text = "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles)
    if not file.exists() or file.read_text(encoding="utf-8") != text:
        file.write_text(text, encoding="utf-8")
    return file
