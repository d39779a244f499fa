"""The character-level tokenizer."""

import re

import pytest
import torch

from hostlib import CharTokenizer


def test_from_text_sorts_distinct_characters():
    tokenizer = CharTokenizer.from_text("hello, world")
    assert tokenizer.vocab == " ,dehlorw"
    assert tokenizer.vocab_size == 9


def test_round_trip():
    text = "ROMEO:\nWhat, ho! Ça va?"
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    assert ids == [tokenizer.vocab.index(char) for char in text]
    assert tokenizer.decode(ids) == text


def test_decode_accepts_tensors_and_numpy_ints():
    tokenizer = CharTokenizer("abc")
    assert tokenizer.decode(torch.tensor([2, 0, 1])) == "cab"
    assert tokenizer.decode([torch.tensor(1)]) == "b"


def test_empty_text_encodes_to_nothing():
    assert CharTokenizer("ab").encode("") == []
    assert CharTokenizer("ab").decode([]) == ""


def test_encode_names_first_unknown_character():
    tokenizer = CharTokenizer.from_text("abc d")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "character 'Z' (U+005A) at position 4 is not in the tokenizer's vocabulary of "
            "5 characters"
        ),
    ):
        tokenizer.encode("ab cZ!")


def test_encode_rejects_non_str():
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        CharTokenizer("ab").encode(b"ab")


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([0, 3], "token id 3 at position 1 is outside the vocabulary 0 .. 2"),
        ([-1], "token id -1 at position 0 is outside the vocabulary 0 .. 2"),
        ([1.0], "token id at position 0 must be an int, got 1.0"),
        ([True], "token id at position 0 must be an int, got True"),
    ],
)
def test_decode_rejects(ids, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CharTokenizer("abc").decode(ids)


def test_dict_round_trip():
    tokenizer = CharTokenizer.from_text("to be or not")
    assert CharTokenizer.from_dict(tokenizer.to_dict()) == tokenizer
    assert tokenizer.to_dict() == {"type": "char", "vocab": " benort"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "tokenizer description must be a dict, got list"),
        ({"type": "byte", "vocab": "ab"}, "tokenizer type must be 'char', got 'byte'"),
        ({"type": "char"}, "tokenizer vocab must be a string, got None"),
        ({"type": "char", "vocab": "aba"}, "vocab contains 'a' twice, at positions 0 and 2"),
        ({"type": "char", "vocab": ""}, "vocab must hold at least one character"),
    ],
)
def test_from_dict_rejects(values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CharTokenizer.from_dict(values)


def test_constructor_rejects_non_str():
    with pytest.raises(TypeError, match="vocab must be a str, got list"):
        CharTokenizer(["a"])


def test_from_text_rejects_empty():
    with pytest.raises(ValueError, match="cannot build a tokenizer from an empty text"):
        CharTokenizer.from_text("")


def test_equality():
    assert CharTokenizer("ab") == CharTokenizer("ab")
    assert CharTokenizer("ab") != CharTokenizer("ba")
    assert repr(CharTokenizer("ab")) == "CharTokenizer(vocab_size=2)"
