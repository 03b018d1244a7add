"""What of details and errors is stored: secrets by key name, URL credentials, Authorization
values, JSON-safe values, bounded sizes; exceptions without a statement's values."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from dbsight.audit import REDACTED, is_secret_key, redact, sanitize_error
from dbsight.audit._redact import MAX_DETAILS_BYTES, MAX_STRING


@pytest.mark.parametrize(
    "key",
    ["password", "Password", "new_password", "passwd", "client_secret", "X-Api-Key", "api_key",
     "apiKey", "refreshToken", "access_token", "Authorization", "aws_secret_access_key",
     "private_key", "session_id", "Cookie", "set-cookie", "pin", "card_pin", "otp", "jwt",
     "credentials"],
)  # fmt: skip
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key", ["email", "name", "shipping", "spinner", "opinion", "author", "plan", "role",
            "amount", "user_id", "status"],
)  # fmt: skip
def test_ordinary_keys(key: str) -> None:
    assert not is_secret_key(key)


class Plan(enum.Enum):
    PRO = "pro"


@dataclass
class Change:
    field: str
    password: str


def test_nested_values_are_redacted_and_json_safe() -> None:
    details = {
        "user": {"email": "a@example.com", "password": "p", "tokens": ["t1", "t2"]},
        "headers": [{"Authorization": "Bearer abcdefghijkl"}, {"Accept": "json"}],
        "dsn": "postgresql://app:s3cret@db:5432/app",
        "note": "called with Bearer abcdefghijklmnop",
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "amount": Decimal("1.50"),
        "id": UUID(int=1),
        "plan": Plan.PRO,
        "blob": b"\x00\x01\x02",
        "change": Change("email", "x"),
        "ratio": float("nan"),
        "tags": {"b"},
        3: "int key",
    }
    assert redact(details) == {
        "user": {"email": "a@example.com", "password": REDACTED, "tokens": REDACTED},
        "headers": [{"Authorization": REDACTED}, {"Accept": "json"}],
        "dsn": f"postgresql://app:{REDACTED}@db:5432/app",
        "note": f"called with Bearer {REDACTED}",
        "when": "2026-01-02T03:04:05+00:00",
        "amount": "1.50",
        "id": "00000000-0000-0000-0000-000000000001",
        "plan": "pro",
        "blob": "<3 bytes>",
        "change": {"field": "email", "password": REDACTED},
        "ratio": "nan",
        "tags": ["b"],
        "3": "int key",
    }


def test_an_unknown_object_is_not_copied() -> None:
    class Secretive:
        def __repr__(self) -> str:
            return "Secretive(password='hunter2')"

    assert redact({"obj": Secretive()}) == {"obj": "<Secretive>"}


def test_sizes_are_bounded() -> None:
    assert len(redact({"text": "x" * (MAX_STRING + 10)})["text"]) == MAX_STRING + 1
    big = {f"k{i}": "y" * 1000 for i in range(MAX_DETAILS_BYTES // 1000 + 5)}
    stored = redact(big)
    assert stored["truncated"] is True and "k0" in stored["keys"]
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["next"] = {}
        node = node["next"]
    assert "…" in str(redact(deep))


def test_none_and_non_mappings() -> None:
    assert redact(None) is None
    with pytest.raises(TypeError, match="mapping"):
        redact(["a"])  # type: ignore[arg-type]


def test_errors() -> None:
    assert sanitize_error(None) is None
    assert sanitize_error(ValueError("bad plan 'gold' for 42")) == "ValueError: bad plan '?' for ?"
    masked = sanitize_error("login from postgresql://u:pw@h/db")
    assert masked == f"login from postgresql://u:{REDACTED}@h/db"
    assert len(sanitize_error("e" * 5000)) == 1000
