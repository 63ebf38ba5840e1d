"""Secret values are masked in free text and structured data, their names kept, ordinary text left alone."""

from __future__ import annotations

import base64
import json
import string
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from workflows.redaction import MASK, redact, redact_text

SECRET = "Zq8v!Kp2mW7x"
BASIC = base64.b64encode(f"app:{SECRET}".encode()).decode()
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Im9wcyJ9"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\nq2Vx9Lw0pQ==\n-----END RSA PRIVATE KEY-----"

# (text, the secret that must go, what must still be shown)
SHAPES = [
    (f"PGPASSWORD={SECRET} psql -h db", SECRET, "PGPASSWORD="),
    (f"export DB_PASSWORD={SECRET}", SECRET, "DB_PASSWORD="),
    (f"MYSQL_PWD={SECRET}", SECRET, "MYSQL_PWD="),
    (f"token={SECRET}", SECRET, "token="),
    (f"access_token: {SECRET}", SECRET, "access_token: "),
    (f"api_key={SECRET}", SECRET, "api_key="),
    (f"apikey={SECRET}", SECRET, "apikey="),
    (f"API-KEY: {SECRET}", SECRET, "API-KEY: "),
    (f"apiKey={SECRET}", SECRET, "apiKey="),
    (f"client_secret={SECRET}", SECRET, "client_secret="),
    (f"secret={SECRET}", SECRET, "secret="),
    (f"passwd: {SECRET}", SECRET, "passwd: "),
    (f"pwd={SECRET}", SECRET, "pwd="),
    (f"private_key={SECRET}", SECRET, "private_key="),
    (f"credentials={SECRET}", SECRET, "credentials="),
    (f"auth={SECRET}", SECRET, "auth="),
    (f"auth_token={SECRET}", SECRET, "auth_token="),
    (f"session_token={SECRET}", SECRET, "session_token="),
    (f"aws_session_token = {SECRET}", SECRET, "aws_session_token = "),
    (f"signing_secret={SECRET}", SECRET, "signing_secret="),
    (f"x-api-key: {SECRET}", SECRET, "x-api-key: "),
    (f"aws_secret_access_key={SECRET}", SECRET, "aws_secret_access_key="),
    (f'{{"password": "{SECRET}", "user": "app"}}', SECRET, '"password": "'),
    (f'{{"password":"{SECRET} with spaces"}}', "with spaces", '"password":"'),
    (f"password: '{SECRET}'", SECRET, "password: '"),
    (f"password: 'correct horse {SECRET}'", "correct horse", "password: '"),
    (f"{{'db_password': '{SECRET}'}}", SECRET, "'db_password': '"),
    (f'{{\\"password\\": \\"{SECRET}\\"}}', SECRET, '\\"password\\": \\"'),
    (f"connecting\npassword: {SECRET}\nretrying", SECRET, "password: "),
    (f"--password {SECRET}", SECRET, "--password "),
    (f"--password={SECRET}", SECRET, "--password="),
    (f"--token {SECRET}", SECRET, "--token "),
    (f"--api-key {SECRET}", SECRET, "--api-key "),
    (f"--secret {SECRET}", SECRET, "--secret "),
    (f"--db-password '{SECRET} y'", SECRET, "--db-password '"),
    (f"Authorization: Basic {BASIC}", BASIC, "Authorization: Basic "),
    (f"Authorization: Bearer {SECRET}", SECRET, "Authorization: Bearer "),
    (f"Authorization: Token {SECRET}", SECRET, "Authorization: Token "),
    (f"Authorization Basic {BASIC}", BASIC, "Authorization Basic "),
    (f"Proxy-Authorization: Bearer {SECRET}", SECRET, "Proxy-Authorization: Bearer "),
    (f"{{'Authorization': 'Bearer {SECRET}', 'Accept': 'json'}}", SECRET, "'Accept': 'json'"),
    (f"postgresql+psycopg://admin:{SECRET}@db.internal:5432/billing", SECRET, "@db.internal:5432/billing"),
    (f"redis://:{SECRET}@cache:6379", SECRET, "redis://:"),
    (f"https://api.example.com/v1?password={SECRET}&page=2", SECRET, "&page=2"),
    (f"https://api.example.com/v1?page=2&token={SECRET}", SECRET, "?page=2&token="),
    (f"host=db user=admin password={SECRET} dbname=billing", SECRET, "dbname=billing"),
    (f"host=db password='{SECRET} x' dbname=billing", SECRET, "dbname=billing"),
    (f"ALTER ROLE app_user WITH PASSWORD '{SECRET}'", SECRET, "ALTER ROLE app_user WITH PASSWORD"),
    ("pushed with ghp_16C7e42F292c6912E7710c838347Ae178B4a today", "16C7e42F292c", "pushed with"),
    ("token gho_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c", "token"),
    ("ghu_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c", ""),
    ("ghs_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c", ""),
    ("ghr_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c", ""),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "0123456789_abc", ""),
    ("clone with glpat-xY9zA8bC7dE6fG5hI4jK ok", "xY9zA8bC7dE6", "clone with"),
    ("bot xoxb-1234567890-0987654321-AbCdEfGhIjKl", "AbCdEfGhIjKl", "bot"),
    ("xoxp-1234567890-0987654321-AbCdEfGhIjKl", "AbCdEfGhIjKl", ""),
    *((f"{p}-1234567890-AbCdEfGhIjKl", "AbCdEfGhIjKl", "") for p in ("xoxa", "xoxr", "xoxs", "xoxe")),
    ("app token xapp-1-A0123456789-0123456789-abcdef", "abcdef", "app token"),
    ("key AKIAIOSFODNN7EXAMPLE used", "IOSFODNN7EXAMPLE", "key"),
    ("ASIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE", ""),
    ("OPENAI sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12", "Ab12Cd34Ef56", "OPENAI"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWD", "stripe"),
    ("stripe rk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWD", "stripe"),
    ("maps AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "9tSrke72PouQ", "maps"),
    (f"id_token {JWT}", "SflKxwRJSMeK", "id_token"),
    (f"key:\n{PEM}\nend", "MIIEowIBAAKC", "key:"),
    (f"key:\n{PEM[:60]}", "MIIEowIBAAKC", "key:"),  # cut before its END line
    (f'password="{SECRET} and the rest, cut', "and the rest", 'password="'),  # cut before its closing quote
]

ORDINARY = [
    "idempotency_token=abc123def456",
    "client_token=4f1c2a9e-7d21-4d0b-9d6e-2b7a7f1d9c33",
    "lease_token=lt-0042",
    "dsn_env: BILLING_DSN",
    "replica=billing-db-r1",
    "instance_class=db.t3.medium",
    "refill the token bucket every second",
    "password rotation is due",
    "rotate the password for app_user",
    "plan_hash=9f2c1ab34de5f6a7b8c9d0e1f2a3b4c5",
    "intent 7f3a9c0d12ab34cd approved",
    "arn:aws:iam::123456789012:role/x",
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/billing-AbCdEf",
    "requested by U0123ABC",
    "the secret is stored in Secrets Manager",
    "the config holds no secrets: a database is named by the variable holding its DSN",
    "One pass: classify due intents, then exit",
    "Basic authentication failed for app_user",
    "password_file=/run/secrets/pg",
    "token_bucket_rate=100",
    "psql --no-password -d billing",
    "mysql -h db -u app -p billing",
    "risk-assessment-for-the-billing-cluster",
    "see https://console.aws.amazon.com/rds/home?region=us-east-1#database:id=billing",
]

SECRET_KEYS = [
    "PGPASSWORD",
    "DB_PASSWORD",
    "db_password",
    "MYSQL_PWD",
    "password",
    "passwd",
    "pwd",
    "token",
    "access_token",
    "auth_token",
    "session_token",
    "aws_session_token",
    "api_key",
    "apikey",
    "apiKey",
    "API-KEY",
    "x-api-key",
    "client_secret",
    "clientSecret",
    "secret",
    "signing_secret",
    "private_key",
    "credentials",
    "auth",
    "basic_auth",
    "dsn",
]
PLAIN_KEYS = [
    "idempotency_token",
    "client_token",
    "lease_token",
    "dsn_env",
    "token_bucket_rate",
    "password_file",
    "secret_arn",
    "auth_method",
    "replica",
    "instance_class",
    "plan_hash",
]
SEPARATORS = ["=", ":", ": ", " = ", " : ", "\t=\t"]
FLAGS = ["password", "db-password", "token", "api-key", "secret", "client-secret", "auth-token"]
QUERY_KEYS = ["password", "token", "access_token", "api_key", "secret", "sig"]
SECRET_ALPHABET = string.ascii_letters + string.digits + "!#$%^&*()-_+[]{}.,/~"

secrets = st.text(alphabet=SECRET_ALPHABET, min_size=8, max_size=40)
prefixes = st.sampled_from(["", "error: ", "connecting with ", "step failed; ", "{", "[", "(", "\t"])
suffixes = st.sampled_from(["", " done", "\nretrying in 5s", " user=app", "\n", "  "])


def _shapes(secret: str, key: str, sep: str, flag: str, query_key: str) -> list[tuple[str, list[str]]]:
    """Texts holding `secret` in every supported shape, each with the forms of it that must not survive."""
    quoted = f"'{secret} and more'"
    basic = base64.b64encode(f"app:{secret}".encode()).decode()
    return [
        (f"{key}{sep}{secret}", [secret]),
        (f'{key}{sep}"{secret}"', [secret]),
        (f"{key}{sep}'{secret}'", [secret]),
        (f"{key}{sep}{quoted}", [secret]),
        (f'"{key}"{sep}"{secret} x y"', [secret]),
        (json.dumps({key: secret}), [secret]),
        (json.dumps({"job": {"env": {key: secret}, "n": 1}}), [secret]),
        (f"--{flag} {secret}", [secret]),
        (f"--{flag}={secret}", [secret]),
        (f"--{flag} {quoted}", [secret]),
        (f"Authorization: Bearer {secret}", [secret]),
        (f"Proxy-Authorization: Token {secret}", [secret]),
        (f'"Authorization": "Bearer {secret}"', [secret]),
        (f"Authorization: Basic {basic}", [basic]),
        (f"postgresql://app:{secret}@db.internal:5432/billing", [secret]),
        (f"mysql://:{secret}@db", [secret]),
        (f"https://api.example.com/v1?page=2&{query_key}={quote(secret, safe='')}&x=1", [quote(secret, safe="")]),
        (f"host=db user=app password={secret} dbname=billing", [secret]),
        (f"starting\n{key}{sep}{secret}\nstill starting", [secret]),
        (f"ALTER ROLE app WITH PASSWORD '{secret}'", [secret]),
    ]


@st.composite
def embedded(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A text with one generated secret in one of many shapes, and the forms of it that must not survive."""
    secret = draw(secrets)
    names = (
        draw(st.sampled_from(SECRET_KEYS)),
        draw(st.sampled_from(SEPARATORS)),
        draw(st.sampled_from(FLAGS)),
        draw(st.sampled_from(QUERY_KEYS)),
    )
    index = draw(st.integers(0, len(_shapes("", *names)) - 1))
    prefix, suffix = draw(prefixes), draw(suffixes)
    body, forms = _shapes(secret, *names)[index]
    surroundings = prefix + _shapes("", *names)[index][0] + suffix
    # The secret must not be part of the text around it (a key named like it, say).
    assume(all(form not in surroundings for form in forms))
    # A value after a space that starts with `-` reads as another flag (argparse agrees), so it is left.
    assume(not (body.startswith("--") and " " in body and secret.startswith("-")))
    return prefix + body + suffix, forms


@pytest.mark.parametrize(("text", "secret", "shown"), SHAPES)
def test_secret_values_are_masked_and_their_names_kept(text: str, secret: str, shown: str) -> None:
    """Each listed shape loses its secret value and keeps the name or context around it."""
    out = redact_text(text)
    assert secret not in out and shown in out and MASK in out, out


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_operational_text_is_unchanged(text: str) -> None:
    """Ids, hashes, ARNs, resource names and sentences about secrets pass through untouched."""
    assert redact_text(text) == text


@pytest.mark.parametrize("key", [*SECRET_KEYS, "Authorization", "SecretAccessKey", "SessionToken"])
def test_values_under_secret_key_names_are_masked(key: str) -> None:
    """A value stored under a secret-looking key is masked whole, whatever its content."""
    assert redact({key: "plain words", "n": 1}) == {key: MASK, "n": 1}


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_values_under_descriptive_key_names_are_kept(key: str) -> None:
    """Keys that only name, locate or rate-limit a secret keep their values."""
    assert redact({key: "prod/billing"}) == {key: "prod/billing"}


def test_items_of_a_list_under_a_secret_key_are_masked() -> None:
    """A list stored under a secret name is a list of secrets."""
    assert redact({"tokens": ["a1", "b2"], "flags": [True, "ok"]}) == {"tokens": [MASK, MASK], "flags": [True, "ok"]}


@settings(max_examples=300, deadline=None)
@given(embedded())
def test_generated_secrets_never_survive_in_text(case: tuple[str, list[str]]) -> None:
    """A generated secret in any supported shape, with text around it, is absent from the redacted text."""
    text, forms = case
    out = redact_text(text)
    for form in forms:
        assert form not in out, out


def _nested(secret: str, text: str, key: str, plain: str) -> dict[str, Any]:
    """Structured data holding `secret` under secret keys and `text` in strings at several depths."""
    return {
        key: secret,
        plain: [text, {key: secret, "detail": text}],
        "items": ({"note": text}, [[text]]),
        "nested": {"deeper": {key: {"value": secret, key: secret}}},
        f"{key}s": [secret, secret],
    }


@settings(max_examples=200, deadline=None)
@given(embedded(), secrets, st.sampled_from(SECRET_KEYS), st.sampled_from(PLAIN_KEYS))
def test_generated_secrets_never_survive_in_structured_data(
    case: tuple[str, list[str]], secret: str, key: str, plain: str
) -> None:
    """Nested mappings and lists with secrets under secret keys or inside strings never show them."""
    text, forms = case
    skeleton = json.dumps(_nested("", "", key, plain))
    assume(secret not in text and all(form not in skeleton for form in [*forms, secret]))
    dumped = json.dumps(redact(_nested(secret, text, key, plain)))
    for form in [*forms, secret]:
        assert form not in dumped, dumped


FRAGMENTS = [
    *("password", "PGPASSWORD", "token", "api-key", "secret", "idempotency_token", "Authorization", "Proxy-"),
    *("HTTP_AUTHORIZATION", "Bearer ", "Basic ", "Token ", "dXNlcjpwYXNzd29yZA==", "WITH PASSWORD ", "identified by "),
    *("=", ":", ": ", '"', "'", "''", "\\", '\\"', " ", "\t", "\n", "@", "://", "u:", "?", "&", "#", ",", ";", "}"),
    *("--", "-", "--password ", "-password=", "no-", "?token=", "&password=", "#access_token=", "***", "abc123XYZ"),
    *("eyJ", ".", "ghp_", "xoxb-", "sk-", "AKIA", "AIza", "0123456789abcdefghij", "redis://", "aaaaaaaa"),
    *("-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "-----BEGIN PGP PRIVATE KEY BLOCK-----"),
]
messy_text = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.sampled_from(SECRET_KEYS + PLAIN_KEYS),
        st.sampled_from(SEPARATORS),
        st.text(max_size=8),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), messy_text))
@example('BEARER 00000000"PASSWD"=0')  # a mask that ends just before a key
def test_redaction_is_idempotent(text: str) -> None:
    """Redacting already redacted text changes nothing."""
    once = redact_text(text)
    assert redact_text(once) == once


SECRETISH_WORDS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
    "auth",
    "dsn",
    "sig",
    "bearer",
    "basic",
    "identified",
    "private",
    "akia",
    "asia",
    "aiza",
    "eyj",
)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters="=:@_-")))
def test_text_without_separators_or_secret_words_is_unchanged(text: str) -> None:
    """Text with no assignment, URL or flag punctuation and no secret-ish word passes through as it was."""
    assume(not any(word in text.lower() for word in SECRETISH_WORDS))
    assert redact_text(text) == text
