"""A text corpus encoded once into a compact id file: the same ids as encoding in memory, uint16 past 256
characters, chunk boundaries that split nothing, the cache reused for an unchanged text and renewed for an edited
one, windows read from disk, and a clear error for a file that is not UTF-8."""
from __future__ import annotations

import numpy as np
import pytest

from trends.errors import UserError
from trends.text.encoded import encode_file

# Every kind of UTF-8 sequence (1 to 4 bytes) and a Windows line ending, which Python's text reading makes \n.
SAMPLE = "To be, or not to be — café, 東京, 😀!\r\nThat is the question.\n" * 40


def in_memory(text: str) -> tuple[list[str], np.ndarray]:
    """What the corpus was before: sorted(set(text)) and one id per character."""
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    return vocab, np.array([index[c] for c in text])


@pytest.mark.parametrize("chunk", [7, 1 << 20])  # chunks of 7 characters cut every line and every word
def test_ids_equal_encoding_in_memory(workdir, chunk):
    path = workdir / "text.txt"
    path.write_text(SAMPLE, encoding="utf-8", newline="")
    encoded = encode_file(path, chunk=chunk)
    vocab, ids = in_memory(SAMPLE.replace("\r\n", "\n"))
    assert encoded.vocab == vocab and encoded.ids.dtype == np.uint8
    assert np.array_equal(encoded.ids.windows(np.array([0]), len(ids))[0], ids)


def test_a_large_vocabulary_takes_two_bytes_per_character(workdir):
    text = "".join(chr(0x4E00 + i) for i in range(300)) * 3  # 300 distinct CJK characters
    path = workdir / "cjk.txt"
    path.write_text(text, encoding="utf-8")
    encoded = encode_file(path)
    assert encoded.ids.dtype == np.uint16 and len(encoded.ids) == 900
    (ids_file,) = (workdir / "cache" / "trends" / "corpora").glob("*.bin")
    assert ids_file.stat().st_size == 2 * 900
    starts = np.array([0, 299, 850])
    expected = np.stack([in_memory(text)[1][s:s + 50] for s in starts])
    assert np.array_equal(encoded.ids.windows(starts, 50), expected)
    train, val = encoded.ids.split(600)  # a split reads its own stretch of the same file
    assert (len(train), len(val)) == (600, 300)
    assert np.array_equal(val.windows(np.array([0]), 300)[0], in_memory(text)[1][600:])


def test_the_cache_is_reused_and_renewed_when_the_text_changes(workdir):
    path = workdir / "text.txt"
    path.write_text(SAMPLE, encoding="utf-8")
    encode_file(path)
    corpora = workdir / "cache" / "trends" / "corpora"
    (first,) = corpora.glob("*.bin")
    written = first.stat().st_mtime_ns
    assert encode_file(path).vocab == in_memory(SAMPLE.replace("\r\n", "\n"))[0]
    assert first.stat().st_mtime_ns == written  # read back, not encoded again

    path.write_text(SAMPLE + "Ω", encoding="utf-8")  # an edit: a new key, a new encoding
    assert "Ω" in encode_file(path).vocab
    assert len(list(corpora.glob("*.bin"))) == 2

    first.with_suffix(".json").unlink()  # an encoding without its description is incomplete: done again
    path.write_text(SAMPLE, encoding="utf-8")
    assert len(encode_file(path).ids) == len(SAMPLE.replace("\r\n", "\n"))
    assert first.with_suffix(".json").exists()


def test_a_file_that_is_not_utf8_is_one_clear_error(workdir):
    path = workdir / "latin1.txt"
    path.write_bytes("naïve café".encode("latin-1"))
    with pytest.raises(UserError, match="is not UTF-8 text"):
        encode_file(path)
