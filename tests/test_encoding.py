"""Values, Latin-1 transliteration and line encoding: literal inputs, literal outputs (spec §1)."""

import re

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autosynk.errors import PackagingError
from autosynk.unikum.encoding import (
    Untransliterable,
    clean_value,
    encode_column,
    encode_lines,
    to_latin1,
)


@pytest.mark.parametrize(
    ("raw", "expected", "changed"),
    [
        # Latin-1 letters stay exactly as they are
        ("Zoë", "Zoë", False),
        ("Åsa Öberg", "Åsa Öberg", False),
        ("Straße", "Straße", False),
        ("Müller", "Müller", False),
        ("Ørjan Søren Ærø", "Ørjan Søren Ærø", False),
        ("Þór Ðan", "Þór Ðan", False),
        ("Václav", "Václav", False),
        ("Dvořák", "Dvorák", True),  # ř is not Latin-1, á is and stays
        ("½ «citat»", "½ «citat»", False),
        # decomposed input is composed, not stripped
        ("Zoe\u0308", "Zoë", True),
        ("A\u030angström", "Ångström", True),
        # one character at a time: the base letter, never the letter plus junk
        ("Nguyễn", "Nguyen", True),
        ("Trần Thị Thu", "Tran Thi Thu", True),
        ("Şahin", "Sahin", True),
        ("İlkay Yıldız", "Ilkay Yildiz", True),
        ("Čapek Šťastný", "Capek Stastný", True),
        ("Ğül", "Gül", True),
        ("Ţepeş", "Tepes", True),
        # letters that do not decompose
        ("Łukasz Wałęsa", "Lukasz Walesa", True),
        ("Đorđević", "Dordevic", True),
        ("Œuvre cœur", "OEuvre coeur", True),
        ("GROẞ", "GROSS", True),
        ("Ħamrun", "Hamrun", True),
        ("ſ", "s", True),
        # compatibility forms
        ("ﬁnn", "finn", True),
        ("Ａnna", "Anna", True),
        ("ǅemal", "Dzemal", True),
        ("™", "TM", True),
        # typography and currency
        ("„Hej“ – ‘då’", "\"Hej\" - 'då'", True),
        ("O’Brien—Smith", "O'Brien-Smith", True),
        ("5 €", "5 EUR", True),
        ("2−1", "2-1", True),
        ("1⁄3", "1/3", True),
        ("a\u2009b", "a b", True),  # thin space
        # invisible format marks carry nothing
        ("An\u200bna", "Anna", True),
        ("\ufeffAnna", "Anna", True),
        ("", "", False),
    ],
)
def test_to_latin1(raw, expected, changed):
    assert to_latin1(raw) == (expected, changed)
    expected.encode("iso-8859-1")  # the promise: always encodable


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("Li 李", "U+674E CJK UNIFIED IDEOGRAPH-674E"),
        ("Anna 😀", "U+1F600 GRINNING FACE"),
        ("Иван", "U+0418 CYRILLIC CAPITAL LETTER I"),
        ("Δημήτρης", "U+0394 GREEK CAPITAL LETTER DELTA"),
        ("a\ue000", "U+E000 unnamed character"),
    ],
)
def test_to_latin1_refuses_what_has_no_faithful_form(raw, named):
    with pytest.raises(Untransliterable) as caught:
        to_latin1(raw)
    assert str(caught.value) == named  # the character, never the whole value
    assert isinstance(caught.value, ValueError)
    assert "?" not in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_to_latin1_never_produces_a_question_mark(raw):
    try:
        result, changed = to_latin1(raw)
    except Untransliterable:
        return
    result.encode("iso-8859-1")
    assert result.count("?") == raw.count("?")
    assert changed == (result != raw)


@pytest.mark.parametrize(
    ("raw", "expected", "changed"),
    [
        ("Anna", "Anna", False),
        ("  Anna  Berg ", "  Anna  Berg ", False),  # trimming is the mapping's job
        ("a\tb", "a b", True),
        ("a\r\nb", "a b", True),
        ("a\nb", "a b", True),
        ("a\r\n\r\nb", "a b", True),
        ("a \t\n b", "a b", True),
        ("\tAnna\r\n", "Anna", True),
        ("  \nAnna", "Anna", True),
        ("Storgatan 1\nLgh 1102", "Storgatan 1 Lgh 1102", True),
        ("a\x00b", "a b", True),
        ("a\x1bb", "a b", True),
        ("a\x7fb", "a b", True),
        ("a\x85b", "a b", True),  # C1 NEXT LINE
        ("a\x9fb", "a b", True),
        ("a\u2028b", "a b", True),
        ("a\u2029b", "a b", True),
        ("a\x0bb\x0cc", "a b c", True),
        ("\t\r\n", "", True),
        ("a\u00a0b", "a\u00a0b", False),  # no-break space is a character, not a break
    ],
)
def test_clean_value(raw, expected, changed):
    assert clean_value(raw) == (expected, changed)


@pytest.mark.parametrize(
    ("lines", "encoding", "ending", "expected"),
    [
        ([], "utf-8", "\n", b""),
        (["a\tb", "c"], "utf-8", "\n", b"a\tb\nc\n"),
        (["a\tb", "c"], "utf-8", "\r\n", b"a\tb\r\nc\r\n"),
        (["Åsa\tÖberg"], "utf-8", "\n", b"\xc3\x85sa\t\xc3\x96berg\n"),
        (["Åsa\tÖberg"], "iso-8859-1", "\n", b"\xc5sa\t\xd6berg\n"),
        (["Zoë"], "iso-8859-1", "\r\n", b"Zo\xeb\r\n"),
        (["李"], "utf-8", "\n", b"\xe6\x9d\x8e\n"),
    ],
)
def test_encode_lines(lines, encoding, ending, expected):
    data = encode_lines(lines, encoding, ending)
    assert data == expected
    assert not data.startswith(b"\xef\xbb\xbf")
    # in bulk from Arrow: the same bytes, from one array or from several chunks
    assert encode_column(pa.array(lines, pa.string()), encoding, ending) == expected
    chunks = pa.chunked_array([pa.array(lines[:1], pa.string()), pa.array(lines[1:], pa.string())])
    assert encode_column(chunks, encoding, ending) == expected


@pytest.mark.parametrize(
    ("lines", "encoding", "ending", "message"),
    [
        (["ok", "Li 李"], "iso-8859-1", "\n", "line 2 cannot be written in iso-8859-1: U+674E"),
        (["a\nb"], "utf-8", "\n", "line 1 holds a line break"),
        (["a\rb"], "utf-8", "\n", "line 1 holds a line break"),
        (["a"], "cp1252", "\n", "unsupported encoding"),
        (["a"], "utf-8", "\r", "unsupported line ending"),
        (["\ud800"], "utf-8", "\n", "line 1 cannot be written in utf-8: U+D800"),
    ],
)
def test_encode_lines_refuses(lines, encoding, ending, message):
    with pytest.raises(PackagingError, match=re.escape(message)) as caught:
        encode_lines(lines, encoding, ending)
    assert "李" not in str(caught.value)
    if "\ud800" not in lines[0]:  # (Arrow holds no lone surrogate at all)
        with pytest.raises(PackagingError) as bulk:
            encode_column(pa.array(lines, pa.string()), encoding, ending)
        assert str(bulk.value) == str(caught.value)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["a", "b", "c\rd", "Li 李"], "line 3 holds a line break"),
        (["a", "Li 李", "c\nd"], "line 2 cannot be written in iso-8859-1: U+674E"),
        (["Zoë", "Åsa", "ok", "x\u0100"], "line 4 cannot be written in iso-8859-1: U+0100"),
    ],
)
def test_encode_column_names_the_first_bad_line(lines, message):
    with pytest.raises(PackagingError, match=re.escape(message)):
        encode_column(pa.array(lines, pa.string()), "iso-8859-1", "\r\n")
