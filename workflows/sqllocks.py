"""Which table-level lock a migration statement takes, read from its text, for preflight (in the spirit of squawk).

The map is deliberately small and errs on the side of the stronger lock: a statement it does not know is reported
as AccessExclusiveLock. A statement takes one mode for all of its relations here, the strongest it takes on any of
them that other sessions can already see (a table being created is visible to nobody, so its own lock is left out
when the statement also locks existing tables). Sources: the PostgreSQL manual, "Explicit Locking" (table 13.2)
and the lock notes of CREATE INDEX, ALTER TABLE, REINDEX and VACUUM.

Relation names come back as SQL text in canonical form: unquoted identifiers lower-cased, quoted ones kept quoted
unless the quotes change nothing (`"Orders"` stays quoted, `"orders"` becomes `orders`), schema kept when given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

ACCESS_SHARE = "AccessShareLock"
ROW_SHARE = "RowShareLock"
ROW_EXCLUSIVE = "RowExclusiveLock"
SHARE_UPDATE_EXCLUSIVE = "ShareUpdateExclusiveLock"
SHARE = "ShareLock"
SHARE_ROW_EXCLUSIVE = "ShareRowExclusiveLock"
EXCLUSIVE = "ExclusiveLock"
ACCESS_EXCLUSIVE = "AccessExclusiveLock"

# Weakest first. Among the modes one statement combines (SUE, SRE, AE) each conflicts with all the earlier ones
# conflict with, so the later mode stands for both.
MODES: tuple[str, ...] = (
    ACCESS_SHARE,
    ROW_SHARE,
    ROW_EXCLUSIVE,
    SHARE_UPDATE_EXCLUSIVE,
    SHARE,
    SHARE_ROW_EXCLUSIVE,
    EXCLUSIVE,
    ACCESS_EXCLUSIVE,
)


_AS, _RS, _RX, _SUE, _S, _SRX, _X, _AX = MODES
# Table 13.2 of the manual, "Conflicting Lock Modes": what a lock held in each mode blocks.
CONFLICTS: Mapping[str, frozenset[str]] = {
    _AS: frozenset({_AX}),
    _RS: frozenset({_X, _AX}),
    _RX: frozenset({_S, _SRX, _X, _AX}),
    _SUE: frozenset({_SUE, _S, _SRX, _X, _AX}),
    _S: frozenset({_RX, _SUE, _SRX, _X, _AX}),
    _SRX: frozenset({_RX, _SUE, _S, _SRX, _X, _AX}),
    _X: frozenset({_RS, _RX, _SUE, _S, _SRX, _X, _AX}),
    _AX: frozenset(MODES),
}


def conflicts(a: str, b: str) -> bool:
    """Whether a lock held in mode `a` blocks a request for mode `b` on the same table (and the other way round)."""
    for mode in (a, b):
        if mode not in CONFLICTS:
            raise ValueError(f"{mode!r} is not a table-level lock mode (one of {', '.join(MODES)})")
    return b in CONFLICTS[a]


@dataclass(frozen=True, slots=True)
class StatementLock:
    """The lock a statement takes, on which relations, and whether it may run inside a transaction block."""

    mode: str
    relations: tuple[str, ...]
    kind: str
    transactional: bool = True


# --- lexing -------------------------------------------------------------------------------------------------------

_IDENT_START = r"A-Za-z_\u0080-\U0010ffff"
_WORD = re.compile(rf"[{_IDENT_START}][{_IDENT_START}0-9$]*")
_DOLLAR_TAG = re.compile(rf"\$(?:[{_IDENT_START}][{_IDENT_START}0-9]*)?\$")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")
_SPACE = re.compile(r"\s+")
_PLAIN_IDENT = re.compile(r"[a-z_][a-z0-9_$]*")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word | ident (quoted) | string | number | punct | comment
    text: str  # a word upper-cased, a quoted identifier unquoted, punctuation as is
    start: int
    end: int


def _closing(sql: str, start: int, quote: str, backslashes: bool = False) -> int:
    """The index after the quote that closes the literal opened at `start` (doubled quotes stay inside)."""
    i = start + 1
    while i < len(sql):
        ch = sql[i]
        if backslashes and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def _block_comment_end(sql: str, start: int) -> int:
    """The index after the `*/` closing the comment at `start`; PostgreSQL's block comments nest."""
    depth, i = 0, start
    while i < len(sql):
        pair = sql[i : i + 2]
        if pair == "/*":
            depth, i = depth + 1, i + 2
        elif pair == "*/":
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def _tokens(sql: str) -> Iterator[_Token]:
    """The lexical elements of `sql`, comments included (as `comment`), whitespace skipped."""
    i = 0
    while i < len(sql):
        ch = sql[i]
        if space := _SPACE.match(sql, i):
            i = space.end()
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            end = len(sql) if end < 0 else end
            yield _Token("comment", sql[i:end], i, end)
        elif sql.startswith("/*", i):
            end = _block_comment_end(sql, i)
            yield _Token("comment", sql[i:end], i, end)
        elif ch == "'":
            end = _closing(sql, i, "'")
            yield _Token("string", sql[i:end], i, end)
        elif ch == '"':
            end = _closing(sql, i, '"')
            yield _Token("ident", sql[i + 1 : end - 1].replace('""', '"'), i, end)
        elif ch == "$" and (tag := _DOLLAR_TAG.match(sql, i)):
            close = sql.find(tag.group(), tag.end())
            end = len(sql) if close < 0 else close + len(tag.group())
            yield _Token("string", sql[i:end], i, end)
        elif word := _WORD.match(sql, i):
            end = word.end()
            if word.group() in ("E", "e") and sql.startswith("'", end):  # E'...' takes backslash escapes
                end = _closing(sql, end, "'", backslashes=True)
                yield _Token("string", sql[i:end], i, end)
            else:
                yield _Token("word", word.group().upper(), i, end)
        elif number := _NUMBER.match(sql, i):
            end = number.end()
            yield _Token("number", number.group(), i, end)
        else:
            end = i + 1
            yield _Token("punct", ch, i, end)
        i = end


def split_statements(sql: str) -> list[str]:
    """The statements of a migration file, split on `;` as psql does, without empty or comment-only ones.

    Like psql, a `;` inside parentheses or inside a `BEGIN ATOMIC ... END` function body does not end a statement.
    """
    statements: list[str] = []
    parens, blocks = 0, 0
    first: _Token | None = None  # the statement's first token (comments before it are left out)
    previous: _Token | None = None
    for token in _tokens(sql):
        if token.kind == "comment":
            continue
        if token.kind == "punct" and token.text == ";" and parens == 0 and blocks == 0:
            if first is not None:
                statements.append(sql[first.start : token.start].strip())
            first, previous = None, None
            continue
        first = first or token
        if token.kind == "punct" and token.text in "()":
            parens = max(0, parens + (1 if token.text == "(" else -1))
        elif token.kind == "word" and first.text == "CREATE":
            if token.text == "ATOMIC" and previous is not None and (previous.kind, previous.text) == ("word", "BEGIN"):
                blocks += 1
            elif blocks and token.text in ("CASE", "END"):
                blocks += 1 if token.text == "CASE" else -1
        previous = token
    if first is not None:
        statements.append(sql[first.start :].strip())
    return statements


_TRANSACTION_CONTROL = frozenset({"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE"})


def is_transaction_control(statement: str) -> bool:
    """Whether the statement begins, ends or savepoints a transaction, which a migration file must not do."""
    words = [t.text if t.kind == "word" else "" for t in _tokens(statement) if t.kind != "comment"][:2]
    return bool(words) and (words[0] in _TRANSACTION_CONTROL or words == ["PREPARE", "TRANSACTION"])


# --- parsing ------------------------------------------------------------------------------------------------------


def _canonical(token: _Token) -> str:
    if token.kind == "word":
        return token.text.lower()
    if _PLAIN_IDENT.fullmatch(token.text):
        return token.text
    return '"' + token.text.replace('"', '""') + '"'


class _Cursor:
    """A read position over a statement's tokens (comments dropped)."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens, self.i = tokens, 0

    @classmethod
    def of(cls, statement: str) -> _Cursor:
        return cls([t for t in _tokens(statement) if t.kind != "comment"])

    def peek(self, offset: int = 0) -> _Token | None:
        at = self.i + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def at(self, *words: str) -> bool:
        """Whether the next tokens are these keywords."""
        for offset, word in enumerate(words):
            token = self.peek(offset)
            if token is None or token.kind not in ("word", "punct") or token.text != word:
                return False
        return True

    def accept(self, *words: str) -> bool:
        """Consume the keywords if they come next."""
        if self.at(*words):
            self.i += len(words)
            return True
        return False

    def skip_optional(self, *phrases: tuple[str, ...]) -> None:
        """Consume any of these optional phrases, in any order, as long as one matches."""
        while any(self.accept(*phrase) for phrase in phrases):
            pass

    def seek(self, word: str) -> bool:
        """Move past the next occurrence of keyword `word` at this parenthesis depth."""
        depth = 0
        while (token := self.peek()) is not None:
            self.i += 1
            if token.kind == "punct" and token.text in "()":
                depth += 1 if token.text == "(" else -1
                if depth < 0:
                    return False
            elif depth == 0 and token.kind == "word" and token.text == word:
                return True
        return False

    def skip_parens(self) -> None:
        """Consume a parenthesised group if one comes next."""
        if not self.at("("):
            return
        depth = 0
        while (token := self.peek()) is not None:
            self.i += 1
            if token.kind == "punct" and token.text == "(":
                depth += 1
            elif token.kind == "punct" and token.text == ")":
                depth -= 1
                if depth == 0:
                    return

    def name(self) -> str | None:
        """A possibly qualified relation name, in canonical form."""
        token = self.peek()
        if token is None or token.kind not in ("word", "ident"):
            return None
        parts = [_canonical(token)]
        self.i += 1
        while self.at(".") and (following := self.peek(1)) is not None and following.kind in ("word", "ident"):
            parts.append(_canonical(following))
            self.i += 2
        return ".".join(parts)

    def names(self) -> tuple[str, ...]:
        """A comma-separated list of relation names, each perhaps followed by `*` or a column list."""
        found: list[str] = []
        while (name := self.name()) is not None:
            found.append(name)
            self.accept("*")
            self.skip_parens()
            if not self.accept(","):
                break
        return tuple(found)

    def names_after_each(self, *phrase: str) -> tuple[str, ...]:
        """The relations named after every occurrence of the keywords `phrase` (a list when in parentheses)."""
        found: list[str] = []
        for index in range(len(self.tokens)):
            self.i = index
            if self.accept(*phrase):
                self.accept("ONLY")
                found.extend(self.names() if self.accept("(") else filter(None, [self.name()]))
        return tuple(dict.fromkeys(found))


_IF_EXISTS, _IF_NOT_EXISTS, _ONLY = ("IF", "EXISTS"), ("IF", "NOT", "EXISTS"), ("ONLY",)


def _strongest(modes: list[str]) -> str:
    return max(modes, key=MODES.index)


# --- one reader per kind of statement; each is called with the cursor after its leading keywords --------------------

Reader = Callable[[_Cursor], StatementLock]


def _fixed(kind: str, mode: str, transactional: bool, relations: Callable[[_Cursor], tuple[str, ...]]) -> Reader:
    def read(cur: _Cursor) -> StatementLock:
        return StatementLock(mode, relations(cur), kind, transactional)

    return read


def _name_list(cur: _Cursor) -> tuple[str, ...]:
    cur.skip_optional(_IF_EXISTS, _ONLY)
    return cur.names()


def _first_name(cur: _Cursor) -> tuple[str, ...]:
    cur.skip_optional(_ONLY)
    name = cur.name()
    return (name,) if name else ()


def _after_on(cur: _Cursor) -> tuple[str, ...]:
    return _first_name(cur) if cur.seek("ON") else ()


def _select(cur: _Cursor) -> StatementLock:
    relations: list[str] = []
    subquery: list[bool] = []  # per open parenthesis: whether it holds a query (not `extract(epoch FROM ts)`)
    locking = False
    for index, token in enumerate(cur.tokens):
        following = cur.tokens[index + 1] if index + 1 < len(cur.tokens) else None
        if token.kind == "punct" and token.text == "(":
            subquery.append(following is not None and following.text in ("SELECT", "WITH"))
        elif token.kind == "punct" and token.text == ")" and subquery:
            subquery.pop()
        elif token.kind == "word" and token.text in ("FROM", "JOIN") and all(subquery[-1:]):
            cur.i = index + 1
            cur.accept("ONLY")
            name = cur.name()
            if name is not None and not cur.at("("):  # a function in FROM is no relation
                relations.append(name)
        elif token.kind == "word" and token.text == "FOR" and following is not None:
            locking = locking or following.text in ("UPDATE", "SHARE", "NO", "KEY")
    return StatementLock(ROW_SHARE if locking else ACCESS_SHARE, tuple(dict.fromkeys(relations)), "SELECT")


def _create_table(cur: _Cursor) -> StatementLock:
    cur.skip_optional(_IF_NOT_EXISTS)
    table = cur.name()
    # Others can only be holding locks on the tables it refers to: REFERENCES adds triggers there (SRE), INHERITS
    # takes SUE on a parent, PARTITION OF takes AE on the partitioned table.
    others = [
        (SHARE_ROW_EXCLUSIVE, cur.names_after_each("REFERENCES")),
        (SHARE_UPDATE_EXCLUSIVE, cur.names_after_each("INHERITS")),
        (ACCESS_EXCLUSIVE, cur.names_after_each("PARTITION", "OF")),
    ]
    others = [(mode, tuple(n for n in names if n != table)) for mode, names in others]
    referenced = tuple(dict.fromkeys(name for _mode, names in others for name in names))
    mode = _strongest([m for m, names in others if names]) if referenced else ACCESS_EXCLUSIVE
    return StatementLock(mode, ((table,) if table else ()) + referenced, "CREATE TABLE")


# ALTER TABLE subcommands that take less than AccessExclusiveLock (the manual, ALTER TABLE, "Notes" and each form).
_ALTER_ACTIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("VALIDATE", "CONSTRAINT"), SHARE_UPDATE_EXCLUSIVE),
    (("ENABLE", "TRIGGER"), SHARE_ROW_EXCLUSIVE),
    (("ENABLE", "REPLICA", "TRIGGER"), SHARE_ROW_EXCLUSIVE),
    (("ENABLE", "ALWAYS", "TRIGGER"), SHARE_ROW_EXCLUSIVE),
    (("DISABLE", "TRIGGER"), SHARE_ROW_EXCLUSIVE),
    (("CLUSTER", "ON"), SHARE_UPDATE_EXCLUSIVE),
    (("SET", "WITHOUT", "CLUSTER"), SHARE_UPDATE_EXCLUSIVE),
)


def _alter_table(cur: _Cursor) -> StatementLock:
    cur.skip_optional(_IF_EXISTS, _ONLY)
    table = cur.name()
    cur.accept("*")
    modes: list[str] = []
    relations = [table] if table else []
    for action in _top_level_parts(cur):
        mode, referenced = _alter_action(action)
        modes.append(mode)
        relations.extend(referenced)
    return StatementLock(_strongest(modes or [ACCESS_EXCLUSIVE]), tuple(dict.fromkeys(relations)), "ALTER TABLE")


def _top_level_parts(cur: _Cursor) -> Iterator[_Cursor]:
    """The rest of the statement split at commas outside parentheses, each as its own cursor."""
    depth, start = 0, cur.i
    for index in range(cur.i, len(cur.tokens) + 1):
        token = cur.tokens[index] if index < len(cur.tokens) else None
        if token is not None and token.kind == "punct" and token.text in "()":
            depth += 1 if token.text == "(" else -1
        if token is None or (depth == 0 and token.kind == "punct" and token.text == ","):
            yield _Cursor(cur.tokens[start:index])
            start = index + 1


def _alter_action(cur: _Cursor) -> tuple[str, tuple[str, ...]]:
    """The mode one ALTER TABLE subcommand takes, and the other tables it locks (a foreign key's target)."""
    for words, mode in _ALTER_ACTIONS:
        if cur.at(*words):
            return mode, ()
    if cur.accept("ALTER"):
        cur.accept("COLUMN")
        cur.name()
        if cur.at("SET", "STATISTICS"):
            return SHARE_UPDATE_EXCLUSIVE, ()
        return ACCESS_EXCLUSIVE, ()
    if cur.accept("ADD"):
        if cur.accept("CONSTRAINT"):
            cur.name()
        if cur.at("FOREIGN", "KEY"):  # SRE on both tables, valid or NOT VALID (which only skips the scan)
            return SHARE_ROW_EXCLUSIVE, cur.names_after_each("REFERENCES")
        # ADD COLUMN ... REFERENCES: AccessExclusive here and SRE there, reported as the stronger for both.
        return ACCESS_EXCLUSIVE, cur.names_after_each("REFERENCES")
    return ACCESS_EXCLUSIVE, ()


def _create_index(concurrently: bool) -> Reader:
    def read(cur: _Cursor) -> StatementLock:
        if concurrently:
            return StatementLock(SHARE_UPDATE_EXCLUSIVE, _after_on(cur), "CREATE INDEX CONCURRENTLY", False)
        return StatementLock(SHARE, _after_on(cur), "CREATE INDEX")

    return read


def _reindex(cur: _Cursor) -> StatementLock:
    cur.skip_parens()
    target = cur.peek()
    cur.i += 1
    concurrently = cur.accept("CONCURRENTLY")
    kind = "REINDEX CONCURRENTLY" if concurrently else "REINDEX"
    if target is None or target.text not in ("INDEX", "TABLE"):  # SCHEMA, DATABASE, SYSTEM: never in a transaction
        return StatementLock(SHARE_UPDATE_EXCLUSIVE if concurrently else ACCESS_EXCLUSIVE, (), kind, False)
    # Without CONCURRENTLY it holds AccessExclusive on the index, which the planner of any query on the table needs.
    mode = SHARE_UPDATE_EXCLUSIVE if concurrently else ACCESS_EXCLUSIVE
    return StatementLock(mode, _first_name(cur), kind, not concurrently)


_VACUUM_OPTIONS = ("FULL", "FREEZE", "VERBOSE", "ANALYZE", "ANALYSE")


def _vacuum(cur: _Cursor) -> StatementLock:
    full = False
    if cur.at("("):
        start = cur.i
        cur.skip_parens()
        group = cur.tokens[start : cur.i]
        full = any(
            t.text == "FULL" and (n is None or n.text not in ("FALSE", "OFF", "0"))
            for t, n in zip(group, [*group[1:], None], strict=True)
        )
    while (token := cur.peek()) is not None and token.kind == "word" and token.text in _VACUUM_OPTIONS:
        full = full or token.text == "FULL"
        cur.i += 1
    mode = ACCESS_EXCLUSIVE if full else SHARE_UPDATE_EXCLUSIVE
    return StatementLock(mode, cur.names(), "VACUUM FULL" if full else "VACUUM", False)


def _analyze(cur: _Cursor) -> StatementLock:
    cur.skip_parens()
    cur.skip_optional(("VERBOSE",))
    return StatementLock(SHARE_UPDATE_EXCLUSIVE, cur.names(), "ANALYZE")


_LOCK_MODE_WORDS: dict[tuple[str, ...], str] = {
    ("ACCESS", "SHARE"): ACCESS_SHARE,
    ("ROW", "SHARE"): ROW_SHARE,
    ("ROW", "EXCLUSIVE"): ROW_EXCLUSIVE,
    ("SHARE", "UPDATE", "EXCLUSIVE"): SHARE_UPDATE_EXCLUSIVE,
    ("SHARE",): SHARE,
    ("SHARE", "ROW", "EXCLUSIVE"): SHARE_ROW_EXCLUSIVE,
    ("EXCLUSIVE",): EXCLUSIVE,
    ("ACCESS", "EXCLUSIVE"): ACCESS_EXCLUSIVE,
}


def _lock(cur: _Cursor) -> StatementLock:
    relations = _name_list(cur)
    mode = ACCESS_EXCLUSIVE
    if cur.accept("IN"):
        for words, named in _LOCK_MODE_WORDS.items():
            if cur.accept(*words, "MODE"):
                mode = named
                break
    return StatementLock(mode, relations, "LOCK TABLE")


# Leading keywords (`?` marks an optional one) and the reader for what follows them; the first match wins.
_READERS: tuple[tuple[str, Reader], ...] = (
    ("SELECT", _select),
    ("INSERT INTO", _fixed("INSERT", ROW_EXCLUSIVE, True, _first_name)),
    ("UPDATE", _fixed("UPDATE", ROW_EXCLUSIVE, True, _first_name)),
    ("DELETE FROM", _fixed("DELETE", ROW_EXCLUSIVE, True, _first_name)),
    ("MERGE INTO", _fixed("MERGE", ROW_EXCLUSIVE, True, _first_name)),
    ("CREATE GLOBAL? LOCAL? TEMPORARY? TEMP? UNLOGGED? TABLE", _create_table),
    ("ALTER TABLE", _alter_table),
    ("DROP TABLE", _fixed("DROP TABLE", ACCESS_EXCLUSIVE, True, _name_list)),
    ("TRUNCATE TABLE?", _fixed("TRUNCATE", ACCESS_EXCLUSIVE, True, _name_list)),
    ("CREATE UNIQUE? INDEX CONCURRENTLY", _create_index(concurrently=True)),
    ("CREATE UNIQUE? INDEX", _create_index(concurrently=False)),
    ("DROP INDEX CONCURRENTLY", _fixed("DROP INDEX CONCURRENTLY", SHARE_UPDATE_EXCLUSIVE, False, _name_list)),
    ("DROP INDEX", _fixed("DROP INDEX", ACCESS_EXCLUSIVE, True, _name_list)),
    ("REINDEX", _reindex),
    ("CREATE OR? REPLACE? CONSTRAINT? TRIGGER", _fixed("CREATE TRIGGER", SHARE_ROW_EXCLUSIVE, True, _after_on)),
    ("DROP TRIGGER", _fixed("DROP TRIGGER", ACCESS_EXCLUSIVE, True, _after_on)),
    ("VACUUM", _vacuum),
    ("ANALYZE", _analyze),
    ("ANALYSE", _analyze),
    ("LOCK TABLE?", _lock),
    (
        "REFRESH MATERIALIZED VIEW CONCURRENTLY",
        _fixed("REFRESH MATERIALIZED VIEW CONCURRENTLY", EXCLUSIVE, True, _first_name),
    ),
    ("REFRESH MATERIALIZED VIEW", _fixed("REFRESH MATERIALIZED VIEW", ACCESS_EXCLUSIVE, True, _first_name)),
)


def _match(cur: _Cursor, pattern: str) -> bool:
    start = cur.i
    for word in pattern.split():
        if word.endswith("?"):
            cur.accept(word[:-1])
        elif not cur.accept(word):
            cur.i = start
            return False
    return True


def lock_for(statement: str) -> StatementLock:
    """The lock `statement` takes; AccessExclusiveLock, kind UNKNOWN, for anything this map does not know."""
    cur = _Cursor.of(statement)
    for pattern, read in _READERS:
        if _match(cur, pattern):
            return read(cur)
    return StatementLock(ACCESS_EXCLUSIVE, (), "UNKNOWN")


def index_name(statement: str) -> str | None:
    """The index a CREATE INDEX statement creates (canonical form), None for any other or an unnamed one."""
    cur = _Cursor.of(statement)
    if not _match(cur, "CREATE UNIQUE? INDEX CONCURRENTLY?"):
        return None
    cur.skip_optional(_IF_NOT_EXISTS)
    if cur.at("ON"):
        return None
    return cur.name()


@dataclass(frozen=True, slots=True)
class MigrationProblem:
    """Why a migration file cannot run the way it is marked to run, and what to do about it."""

    message: str
    guidance: str


def migration_problem(statements: list[str], *, transactional: bool) -> MigrationProblem | None:
    """Whether these statements can run as one transaction (`transactional`) or as one autocommit statement."""
    if any(is_transaction_control(s) for s in statements):
        return MigrationProblem(
            "the file begins or ends transactions itself",
            "remove BEGIN/COMMIT: opsbot runs a transactional file in one transaction of its own",
        )
    if transactional:
        kinds = [lock.kind for lock in map(lock_for, statements) if not lock.transactional]
        if kinds:
            return MigrationProblem(
                f"{kinds[0]} cannot run inside a transaction block",
                "put the statement alone in a migration of its own, marked non-transactional",
            )
    elif len(statements) != 1:
        return MigrationProblem(
            f"a non-transactional migration must hold exactly one statement, this one holds {len(statements)}",
            "split the file: one non-transactional statement per migration",
        )
    return None
