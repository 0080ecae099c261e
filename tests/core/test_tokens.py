"""core.tokens: a checksum rejects mistyped tokens before any database work."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from racefree.core import tokens

# two kinds of token, as the layers above mint them (core knows no prefix of its own)
SESSION_PREFIX = "rf_sess_"
OPERATOR_PREFIX = "rf_op_"

TOKEN = tokens.mint(SESSION_PREFIX)


def test_minted_tokens_are_well_formed_and_unique() -> None:
    minted = {tokens.mint(OPERATOR_PREFIX) for _ in range(200)}
    assert len(minted) == 200
    assert all(tokens.well_formed(t, OPERATOR_PREFIX) for t in minted)
    assert all(len(t) == len("rf_op_") + 43 + 6 for t in minted)


def test_a_token_of_another_kind_is_not_well_formed() -> None:
    assert not tokens.well_formed(TOKEN, OPERATOR_PREFIX)


@given(st.integers(0, len(TOKEN) - len(SESSION_PREFIX) - 1), st.sampled_from(tokens.ALPHABET))
def test_any_single_character_typo_is_caught(position: int, replacement: str) -> None:
    i = len(SESSION_PREFIX) + position
    typo = TOKEN[:i] + replacement + TOKEN[i + 1 :]
    assert tokens.well_formed(typo, SESSION_PREFIX) == (typo == TOKEN)


def test_truncated_and_foreign_characters_are_refused() -> None:
    assert not tokens.well_formed(TOKEN[:-1], SESSION_PREFIX)
    assert not tokens.well_formed(TOKEN[:-1] + "-", SESSION_PREFIX)


def test_only_a_digest_is_compared() -> None:
    stored = tokens.digest(TOKEN)
    assert len(stored) == 64 and TOKEN not in stored
    assert tokens.matches(TOKEN, stored)
    assert not tokens.matches(tokens.mint(SESSION_PREFIX), stored)


def test_derived_bodies_are_deterministic_and_well_formed() -> None:
    body = tokens.body_from_seed(bytes(range(32)))
    token = tokens.with_checksum(SESSION_PREFIX, body)
    assert token == tokens.with_checksum(SESSION_PREFIX, tokens.body_from_seed(bytes(range(32))))
    assert tokens.well_formed(token, SESSION_PREFIX)
