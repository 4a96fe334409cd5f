"""Node-name and cookie validation: every rule of the seed, checked byte-wise."""

from __future__ import annotations

import dataclasses

import pytest

from erldist.names import (
    MAX_BYTES,
    CookieFormatError,
    NameFormatError,
    NodeName,
    parse_node_name,
    validate_cookie,
)


def reason(name: object) -> str:
    with pytest.raises(NameFormatError) as info:
        parse_node_name(name)  # type: ignore[arg-type]
    return str(info.value)


def cookie_reason(cookie: object) -> str:
    with pytest.raises(CookieFormatError) as info:
        validate_cookie(cookie)  # type: ignore[arg-type]
    return str(info.value)


# --- node names: accepted -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "alive", "host"),
    [
        ("a@b", "a", "b"),
        ("my_app-1@127.0.0.1", "my_app-1", "127.0.0.1"),
        ("Node_2@host-name.example.com", "Node_2", "host-name.example.com"),
        ("x@localhost", "x", "localhost"),
        ("-_-@_.-", "-_-", "_.-"),
    ],
)
def test_valid_names_split_into_alive_and_host(name: str, alive: str, host: str) -> None:
    parsed = parse_node_name(name)
    assert (parsed.alive, parsed.host) == (alive, host)
    assert str(parsed) == name


@pytest.mark.parametrize(
    ("name", "long"),
    [
        ("a@localhost", False),
        ("a@host_1", False),
        ("a@host.example", True),
        ("a@127.0.0.1", True),
        ("a@.", True),
    ],
)
def test_a_dotted_host_means_long_names(name: str, long: bool) -> None:
    assert parse_node_name(name).long is long


def test_node_name_is_frozen_and_compares_by_value() -> None:
    parsed = parse_node_name("a@b")
    assert parsed == NodeName("a", "b")
    assert hash(parsed) == hash(NodeName("a", "b"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.alive = "c"  # type: ignore[misc]


def test_exactly_255_bytes_is_accepted() -> None:
    name = "a" * 253 + "@h"
    assert len(name.encode()) == MAX_BYTES == 255
    assert str(parse_node_name(name)) == name


# --- node names: refused, each with the rule that failed ------------------------------


def test_missing_at_sign() -> None:
    assert "no '@'" in reason("nodename")


def test_two_at_signs() -> None:
    assert "exactly one '@', found 2" in reason("a@b@c")


def test_only_an_at_sign() -> None:
    assert "name before '@' is empty" in reason("@")


def test_empty_alive_part() -> None:
    assert "name before '@' is empty" in reason("@host")


def test_empty_host_part() -> None:
    assert "host after '@' is empty" in reason("name@")


def test_empty_string() -> None:
    assert "empty" in reason("")


def test_256_bytes_is_refused() -> None:
    name = "a" * 254 + "@h"
    assert len(name.encode()) == 256
    assert "too long" in reason(name)
    assert "255" in reason(name)


def test_far_too_long_is_refused_without_fuss() -> None:
    assert "too long" in reason("a" * 1_000_000 + "@h")


@pytest.mark.parametrize(
    ("name", "bad", "byte"),
    [
        ("my app@host", "' '", 3),
        ("my.app@host", "'.'", 3),
        ("a+b@host", "'+'", 2),
        ("a:b@host", "':'", 2),
    ],
)
def test_bad_characters_before_the_at_sign(name: str, bad: str, byte: int) -> None:
    text = reason(name)
    assert "name before '@' may only use [a-zA-Z0-9_-]" in text
    assert f"{bad} at byte {byte}" in text


@pytest.mark.parametrize(
    ("name", "bad", "byte"),
    [
        ("a@host/x", "'/'", 7),
        ("a@host:4369", "':'", 7),
        ("a@ho st", "' '", 5),
        ("a@[::1]", "'['", 3),
    ],
)
def test_bad_characters_after_the_at_sign(name: str, bad: str, byte: int) -> None:
    text = reason(name)
    assert "host after '@' may only use [a-zA-Z0-9._-]" in text
    assert f"{bad} at byte {byte}" in text


@pytest.mark.parametrize("name", ["a@b\n", "a\n@b", "\ta@b", "a@b\x00", "a\x00@b"])
def test_whitespace_and_control_characters_are_refused(name: str) -> None:
    assert "may only use" in reason(name)


@pytest.mark.parametrize(
    "name",
    [
        "café@host",  # accented letter: a str "word" character
        "node@hôst",
        "\u0663@host",  # ARABIC-INDIC DIGIT THREE: a str digit, not [0-9]
        "\uff41@host",  # FULLWIDTH LATIN SMALL LETTER A
        "n@host\u200b",  # zero-width space
    ],
)
def test_non_ascii_characters_are_refused(name: str) -> None:
    text = reason(name)
    assert "may only use" in text
    assert "(not ASCII)" in text


def test_a_lone_surrogate_is_refused_not_a_crash() -> None:
    assert "(not ASCII)" in reason("\udc80@host")


def test_length_counts_utf8_bytes_not_characters() -> None:
    # 254 characters but 255 bytes is still within the limit's byte count ...
    almost = "é" + "a" * 251 + "@h"
    assert len(almost) == 254 and len(almost.encode()) == 255
    assert "too long" not in reason(almost)  # refused, but by the charset
    # ... while 255 characters that are 256 bytes are too long.
    over = "é" + "a" * 252 + "@h"
    assert len(over) == 255 and len(over.encode()) == 256
    text = reason(over)
    assert "too long: 256 bytes in UTF-8" in text


def test_multibyte_characters_are_counted_in_full() -> None:
    name = "é" * 127 + "@h"  # 129 characters, 256 bytes
    assert len(name) < MAX_BYTES < len(name.encode())
    assert "256 bytes" in reason(name)


@pytest.mark.parametrize("value", [None, 42, b"a@b", ["a@b"]])
def test_non_str_input_is_refused(value: object) -> None:
    assert f"must be a str, not {type(value).__name__}" in reason(value)


def test_name_format_error_is_a_value_error() -> None:
    assert issubclass(NameFormatError, ValueError)


# --- cookies ---------------------------------------------------------------------------


@pytest.mark.parametrize("cookie", ["a", "secret", "ABC_def-123", "-", "x" * 255])
def test_valid_cookies(cookie: str) -> None:
    validate_cookie(cookie)


def test_empty_cookie() -> None:
    assert "cookie is empty" in cookie_reason("")


def test_256_byte_cookie() -> None:
    assert "too long" in cookie_reason("x" * 256)


def test_cookie_length_counts_bytes() -> None:
    cookie = "é" * 128  # 128 characters, 256 bytes
    assert "too long: 256 bytes in UTF-8" in cookie_reason(cookie)


@pytest.mark.parametrize(
    ("cookie", "where"),
    [
        ("Sup3rSecret!", "byte 12 of 12"),
        ("Sup3rSecret\n", "byte 12 of 12"),
        ("Sup3r Secret", "byte 6 of 12"),
        ("Sup3r.Secret", "byte 6 of 12"),
        ("Sup3r@Secret", "byte 6 of 12"),
        ("SupérSecret", "byte 4 of 12"),
    ],
)
def test_bad_cookie_characters_name_the_position_never_the_cookie(cookie: str, where: str) -> None:
    text = cookie_reason(cookie)
    assert "cookie may only use [a-zA-Z0-9_-]" in text
    assert where in text
    assert "Sup3r" not in text and "Secret" not in text


@pytest.mark.parametrize("cookie", ["TopSecretValue" * 20, "", "TopSecret\udc80"])
def test_no_cookie_reason_contains_the_cookie(cookie: str) -> None:
    text = cookie_reason(cookie)
    assert "TopSecret" not in text


@pytest.mark.parametrize("value", [None, 7, b"secret"])
def test_non_str_cookie_is_refused(value: object) -> None:
    text = cookie_reason(value)
    assert f"must be a str, not {type(value).__name__}" in text
    assert "secret" not in text


def test_cookie_format_error_is_a_value_error() -> None:
    assert issubclass(CookieFormatError, ValueError)
