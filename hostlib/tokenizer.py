"""Character-level tokenizer: one token per Unicode character of the training text."""

import operator

__all__ = ["CharTokenizer"]

_TYPE = "char"


class CharTokenizer:
    """Map each character of a fixed vocabulary to its index in that vocabulary.

    Parameters
    ----------
    vocab : str
        The characters, each once; token id i is ``vocab[i]``. `from_text` builds it sorted by
        code point.

    Raises
    ------
    TypeError
        If ``vocab`` is not a str.
    ValueError
        If ``vocab`` is empty or contains a character twice.
    """

    def __init__(self, vocab: str) -> None:
        if not isinstance(vocab, str):
            raise TypeError(f"vocab must be a str, got {type(vocab).__name__}")
        if not vocab:
            raise ValueError("vocab must hold at least one character, got an empty string")
        seen: dict[str, int] = {}
        for index, char in enumerate(vocab):
            if char in seen:
                raise ValueError(
                    f"vocab contains {char!r} twice, at positions {seen[char]} and {index}"
                )
            seen[char] = index
        self._vocab = vocab
        self._ids = seen

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        """Build the vocabulary of every distinct character of ``text``, sorted by code point."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("cannot build a tokenizer from an empty text")
        return cls("".join(sorted(set(text))))

    @property
    def vocab(self) -> str:
        """The characters, in token-id order."""
        return self._vocab

    @property
    def vocab_size(self) -> int:
        """Number of tokens."""
        return len(self._vocab)

    def encode(self, text: str) -> list[int]:
        """Return the token ids of ``text``.

        Raises
        ------
        TypeError
            If ``text`` is not a str.
        ValueError
            If ``text`` contains a character outside the vocabulary. The message names the first
            such character and its position.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids = []
        for position, char in enumerate(text):
            token = self._ids.get(char)
            if token is None:
                raise ValueError(
                    f"character {char!r} (U+{ord(char):04X}) at position {position} is not in "
                    f"the tokenizer's vocabulary of {self.vocab_size} characters"
                )
            ids.append(token)
        return ids

    def decode(self, ids) -> str:
        """Return the text of the token ids ``ids`` (any iterable of ints).

        Raises
        ------
        ValueError
            If an id is not an int in 0 .. vocab_size - 1.
        """
        chars = []
        for position, token in enumerate(ids):
            if isinstance(token, bool) or not hasattr(token, "__index__"):
                raise ValueError(f"token id at position {position} must be an int, got {token!r}")
            token = operator.index(token)
            if not 0 <= token < self.vocab_size:
                raise ValueError(
                    f"token id {token} at position {position} is outside the vocabulary "
                    f"0 .. {self.vocab_size - 1}"
                )
            chars.append(self._vocab[token])
        return "".join(chars)

    def to_dict(self) -> dict:
        """Return the JSON-serializable form that `from_dict` reads back."""
        return {"type": _TYPE, "vocab": self._vocab}

    @classmethod
    def from_dict(cls, values: dict) -> "CharTokenizer":
        """Rebuild a tokenizer from `to_dict` output.

        Raises
        ------
        ValueError
            If ``values`` is not a dict with ``type`` ``"char"`` and a ``vocab`` string.
        """
        if not isinstance(values, dict):
            raise ValueError(f"tokenizer description must be a dict, got {type(values).__name__}")
        if values.get("type") != _TYPE:
            raise ValueError(f"tokenizer type must be {_TYPE!r}, got {values.get('type')!r}")
        vocab = values.get("vocab")
        if not isinstance(vocab, str):
            raise ValueError(f"tokenizer vocab must be a string, got {vocab!r}")
        return cls(vocab)

    def __eq__(self, other) -> bool:
        return isinstance(other, CharTokenizer) and other._vocab == self._vocab

    def __hash__(self) -> int:
        return hash(self._vocab)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"
