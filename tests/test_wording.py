from assistant.wording import differing_spans

CLOSE = "There are no prerequisites for the negotiations yet."
ALSO_CLOSE = "There are no prerequisites for negotiations yet."
LOOSE = "The Kremlin signaled no grounds to start talks."


def words_at(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[a:b] for a, b in spans]


def test_each_version_marks_the_words_the_first_lacks():
    first, second = differing_spans([CLOSE, ALSO_CLOSE])
    assert words_at(CLOSE, first) == ["the"]
    assert second == []


def test_with_two_versions_the_first_marks_every_word_the_other_lacks():
    first, _ = differing_spans([CLOSE, LOOSE])
    assert "prerequisites" in words_at(CLOSE, first)


def test_one_loose_paraphrase_among_close_versions_leaves_the_shared_words_of_the_first_unmarked():
    first, _, third, _ = differing_spans([CLOSE, ALSO_CLOSE, LOOSE, CLOSE])
    assert words_at(CLOSE, first) == ["the"]  # two of three lack "the"; only the loose one lacks the rest
    assert "Kremlin" in words_at(LOOSE, third)
