"""JWT access tokens: issue and decode, expiry, tampering, unsigned and other-algorithm
tokens, missing and ill-typed claims, issuer and audience, refused configurations."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import SecretStr

from dbsight_platform.security import InvalidToken, TokenCodec, TokenExpired

SECRET = "platform-test-secret-" + "0123456789abcdef" * 3  # 69 bytes: enough for HS512


def codec(**kwargs: object) -> TokenCodec:
    return TokenCodec(SECRET, **kwargs)  # type: ignore[arg-type]


def now() -> datetime:
    return datetime.now(UTC)


def signed(payload: dict[str, object], algorithm: str = "HS256", key: str = SECRET) -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def valid_payload(**overrides: object) -> dict[str, object]:
    issued = int(now().timestamp())
    payload: dict[str, object] = {
        "sub": "alice",
        "roles": ["user"],
        "jti": "abc123",
        "iat": issued,
        "exp": issued + 600,
    }
    payload.update(overrides)
    return payload


def test_issue_then_decode_gives_back_the_claims() -> None:
    tokens = codec(expires_in=timedelta(minutes=5))
    issued = tokens.issue("alice", ["user", "admin", "user"])
    claims = tokens.decode(issued.token)
    assert claims == issued.claims
    assert (claims.subject, claims.roles) == ("alice", ("user", "admin"))
    assert claims.expires_at - claims.issued_at == timedelta(minutes=5)
    assert issued.expires_in_s == 300
    assert tokens.issue("alice").claims.token_id != issued.claims.token_id


def test_secretstr_accepted_and_never_shown() -> None:
    tokens = TokenCodec(SecretStr(SECRET))
    assert tokens.decode(tokens.issue("bob").token).subject == "bob"
    assert SECRET not in repr(tokens)


def test_expired_token() -> None:
    tokens = codec(expires_in=timedelta(minutes=1))
    old = tokens.issue("alice", now=now() - timedelta(minutes=2))
    with pytest.raises(TokenExpired, match="expired"):
        tokens.decode(old.token)
    # within the leeway it is still accepted
    assert codec(leeway_s=120).decode(old.token).subject == "alice"


def test_tampered_payload_is_refused() -> None:
    tokens = codec()
    header, payload, signature = tokens.issue("alice", ["user"]).token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="signature does not match"):
        tokens.decode(f"{header}.{forged}.{signature}")


def test_other_secret_is_refused() -> None:
    token = signed(valid_payload(), key="y" * 64)
    with pytest.raises(InvalidToken, match="signature does not match"):
        codec().decode(token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsigned_token_is_refused(alg: str) -> None:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    token = f"{part({'alg': alg, 'typ': 'JWT'})}.{part(valid_payload())}."
    with pytest.raises(InvalidToken, match="alg 'none'"):
        codec().decode(token)
    # also as PyJWT itself writes one
    with pytest.raises(InvalidToken, match="alg 'none'"):
        codec().decode(jwt.encode(valid_payload(), None, algorithm="none"))


def test_other_algorithm_is_refused() -> None:
    token = signed(valid_payload(), algorithm="HS512")
    with pytest.raises(InvalidToken, match="signed with HS512, expected HS256"):
        codec().decode(token)
    assert codec(algorithm="HS512").decode(token).subject == "alice"


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "jti"])
def test_missing_claim_is_named(claim: str) -> None:
    payload = valid_payload()
    del payload[claim]
    with pytest.raises(InvalidToken, match=repr(claim)):
        codec().decode(signed(payload))


@pytest.mark.parametrize(
    "overrides",
    [{"roles": "admin"}, {"roles": [1, 2]}, {"jti": 7}, {"sub": ""}],
)
def test_ill_typed_claims_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidToken):
        codec().decode(signed(valid_payload(**overrides)))


def test_token_issued_in_the_future_is_refused() -> None:
    future = int((now() + timedelta(hours=1)).timestamp())
    with pytest.raises(InvalidToken):
        codec().decode(signed(valid_payload(iat=future, exp=future + 600)))


def test_issuer_and_audience() -> None:
    tokens = codec(issuer="dbsight-platform", audience="app-a")
    assert tokens.decode(tokens.issue("alice").token).subject == "alice"
    other = codec(issuer="dbsight-platform", audience="app-b").issue("alice").token
    with pytest.raises(InvalidToken, match="another audience"):
        tokens.decode(other)
    with pytest.raises(InvalidToken, match="another issuer"):
        tokens.decode(codec(issuer="elsewhere", audience="app-a").issue("alice").token)
    with pytest.raises(InvalidToken, match="'iss'"):
        tokens.decode(codec().issue("alice").token)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x.y.z"])
def test_malformed_tokens(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        codec().decode(garbage)


def test_refused_configurations() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenCodec("short")
    with pytest.raises(ValueError, match="at least 64 bytes long for HS512"):
        TokenCodec("z" * 40, algorithm="HS512")
    with pytest.raises(ValueError, match="unsupported JWT algorithm"):
        TokenCodec(SECRET, algorithm="RS256")
    with pytest.raises(ValueError, match="unsupported JWT algorithm"):
        TokenCodec(SECRET, algorithm="none")
    with pytest.raises(ValueError):
        codec().issue("")
    with pytest.raises(ValueError):
        codec().issue("alice", expires_in=timedelta(0))
