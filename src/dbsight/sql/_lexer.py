"""Quote- and comment-aware literal masking in one regular-expression pass.

:func:`scan` turns a SQL text into its *masked key*:

* every literal becomes a class marker (``\\x00I`` integer, ``\\x00F`` other
  number, ``\\x00S`` string, ``\\x00B`` bit/hex string) and every placeholder
  (``$1``, ``%s``, ``%(name)s``, ``?``, ``:name`` ...) becomes ``\\x00P``; a
  string's prefix (``E``, ``U&``, ``N``, ``B``, ``X``) stays in front of its
  marker;
* comments are removed and every run of whitespace becomes one space;
* ``IN (v, v, ...)`` lists of two or more bare values become ``IN (\\x00L)``
  and repeated ``VALUES`` rows of bare values are cut to the first row plus
  ``\\x00V``.

Everything else -- keywords, identifiers (quoted or not), operators,
punctuation -- is copied verbatim, so two texts that differ in anything but
literal values, placeholder style, whitespace, comments or list lengths get
different keys.  :func:`normalized_from_key` renders a key as the public
``normalized`` form (markers become ``$1, $2, ...``).

The scanner also reports whether it is *sure* of its reading.  It is not sure
when the meaning of the text could depend on server settings or when this
lexer cannot mirror the server's lexer exactly: an odd run of backslashes
before a quote in a standard string (its end then depends on
standard_conforming_strings / NO_BACKSLASH_ESCAPES), unterminated quotes or
comments, adjacent string literals, trailing junk after a number or
parameter, NUL characters, MySQL executable comments, MySQL double-quoted
strings.  Texts that are not sure must never be served from (or stored in)
the masked-key cache: a wrong collision could send a write to a replica.  It
also flags texts that are *broken* (the server rejects them: not worth
parsing) and *ambiguous* (their statement boundaries depend on server
settings: never read-only).

Finally it returns the *rewrites* needed before a real parser sees the text:
placeholder styles foreign to the dialect (``%s``, ``:name`` ... for
PostgreSQL) are replaced by a native one (``$n`` for PostgreSQL, ``?``
otherwise), and MySQL executable-comment markers are blanked out so that
their content is parsed as the code it is.

Performance: the pattern starts with a character class of every character a
token of interest can start with, so ``re`` skips ordinary text in C; lone
spaces are not matched at all and runs of spaces are squeezed afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, NamedTuple

from ._dialects import Dialect

# Characters that may continue an identifier (PostgreSQL: letters, digits, _, $
# and every non-ASCII character).  Used in look-behinds so that digits, quotes
# and dollars inside identifiers are never taken for the start of a literal.
_IDC: Final = r"A-Za-z0-9_$\x80-\U0010FFFF"
_IDSTART: Final = r"A-Za-z_\x80-\U0010FFFF"
_WS: Final = r"[ \t\n\r\f\v]"

M_INT: Final = "\x00I"
M_NUM: Final = "\x00F"
M_STR: Final = "\x00S"
M_BITS: Final = "\x00B"
M_PARAM: Final = "\x00P"

Rewrites = list[tuple[int, int, str]]


class ScanResult(NamedTuple):
    """What one pass of the lexer found out about a text."""

    key: str
    sure: bool  # may be served from / stored in the masked-key cache
    rewrites: Rewrites | None  # placeholder rewrites needed before parsing
    broken: bool  # unterminated quote/comment: the server rejects it, do not parse
    # the statement boundaries depend on server settings (standard_conforming_strings,
    # NO_BACKSLASH_ESCAPES, ANSI_QUOTES, MySQL version comments): never read-only
    ambiguous: bool


# (first character class, rest of the token, kind)
_Part = tuple[str, str, str]


def _nested_block_comment_body(depth: int) -> str:
    """The part after ``/`` of a block comment holding up to ``depth`` levels
    of nested comments (PostgreSQL nests them, MySQL and SQLite do not).

    Deeper nesting does not match; the scanner then treats the rest of the
    text as an unterminated comment (masked away, not sure, not parsed).
    """
    inner = r"[^*/]++|\*(?!/)|/(?!\*)"
    pat = rf"/\*(?:{inner})*+\*/"
    for _ in range(depth - 1):
        pat = rf"/\*(?:{inner}|{pat})*+\*/"
    return rf"\*(?:{inner}|{pat})*+\*/"


_FLAT_BLOCK_COMMENT_BODY: Final = r"\*[^*]*+\*++(?:[^/*][^*]*+\*++)*+/"


def _gap_parts(line_body: str, block_body: str, *, hash_comments: bool = False) -> list[_Part]:
    """Runs of whitespace and comments, each rewritten as one space.

    A run only starts at a non-space whitespace character or at a comment;
    runs of plain spaces are squeezed after the substitution.  ``line_body``
    follows the first ``-`` of ``--``, ``block_body`` the ``/`` of ``/*``.
    """
    alternatives = [rf"-(?:{line_body})", rf"/(?:{block_body})"]
    if hash_comments:
        alternatives.append(r"\#[^\n]*+")
    comment = f"(?:{'|'.join(alternatives)})"
    tail = rf"{_WS}*+(?:{comment}{_WS}*+)*+"
    parts: list[_Part] = [
        (r"\t\n\r\f\v", tail, "gap"),
        (r"\-", f"(?:{line_body}){tail}", "gap"),
        ("/", f"(?:{block_body}){tail}", "gap"),
    ]
    if hash_comments:
        parts.append(("#", rf"[^\n]*+{tail}", "gap"))
    return parts


_NUMBER_REST: Final = (
    rf"(?<![{_IDC}]\d)"
    r"(?:(?<=0)[xX](?:_?[0-9A-Fa-f])++|(?<=0)[oO](?:_?[0-7])++|(?<=0)[bB](?:_?[01])++"
    r"|(?:_?\d)*+(?:\.(?!\.)(?:\d(?:_?\d)*+)?)?(?:[eE][+-]?\d(?:_?\d)*+)?)"
)
_NUMBER: Final = ("0-9", _NUMBER_REST, "num+junk")
_DOT_NUMBER: Final = (r"\.", r"\d(?:_?\d)*+(?:[eE][+-]?\d(?:_?\d)*+)?", "num+junk")
_PYFORMAT: Final = ("%", rf"(?<!%%)(?:\([^()]*\))?[sbt](?![{_IDC}])", "foreign")
_COLON_NAME: Final = (":", rf"(?<![:\[{_IDC}]:)[A-Za-z_][A-Za-z0-9_]*+", "foreign")
_QUOTED_IDENT: Final = [('"', r'[^"]*+(?:""[^"]*+)*+"', "ident"), ('"', "", "badident")]
_BACKTICK_IDENT: Final = [("`", r"[^`]*+(?:``[^`]*+)*+`", "ident"), ("`", "", "badident")]
_SQ_BODY: Final = r"[^']*+(?:''[^']*+)*+'"


# Branch groups are tried in this order (most frequent first characters first).
_FIRST_ORDER: Final = ("0-9", '"', "'", r"\.", r"\t\n\r\f\v", "`", r"\[")


def _build(
    parts: list[_Part], chain_idents: bool = True
) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """Join the parts into one pattern; return it and the kind of each group.

    The pattern is ``[all first characters](?:(?<=[c])(?:rest()|...)|...)``:
    the leading character class lets ``re`` skip uninteresting text in C, the
    branches are grouped by their first character, and the empty group
    closing each branch makes ``m.lastindex`` name the branch that matched.  A
    kind ending in ``+junk`` gets two closing groups, the first taken when an
    identifier character follows the token (``1abc``, ``$1x``), which the
    server lexes differently or rejects.
    """
    firsts: list[str] = []
    by_first: dict[str, list[tuple[str, str]]] = {}
    for first, rest, kind in parts:
        if first not in by_first:
            firsts.append(first)
            by_first[first] = []
        by_first[first].append((rest, kind))
    firsts.sort(key=lambda f: _FIRST_ORDER.index(f) if f in _FIRST_ORDER else len(_FIRST_ORDER))
    all_firsts = "".join(firsts)
    # Text that no branch could start a token in (single spaces, letters,
    # punctuation ...): quoted identifiers separated only by such text are
    # matched as one run, e.g. `"t"."a", "t"."b"` (one callback, not four).
    filler = rf"(?:[^{all_firsts} \t\n\r\f\v.]|\.(?![0-9])| (?! ))"
    groups: list[str] = []
    kinds: list[str] = [""]
    for first in firsts:
        branches: list[str] = []
        for rest, kind in by_first[first]:
            kinds.extend([""] * re.compile(rest).groups)
            if kind == "ident" and chain_idents:
                branches.append(rf"{rest}(?:{filler}*+[{first}]{rest})*+()")
                kinds.append(kind)
            elif kind.endswith("+junk"):
                base = kind[: -len("+junk")]
                branches.append(rf"{rest}(?:[{_IDC}]()|())")
                kinds.extend([base + "_junk", base])
            else:
                branches.append(f"{rest}()")
                kinds.append(kind)
        groups.append(f"(?<=[{first}])(?:{'|'.join(branches)})")
    pattern = f"[{all_firsts}](?:{'|'.join(groups)})"
    return re.compile(pattern), tuple(kinds)


def _pg_parts() -> list[_Part]:
    tag = rf"(?:[{_IDSTART}][A-Za-z0-9_\x80-\U0010FFFF]*+)?"
    return [
        *_gap_parts(r"-[^\n\r]*+", _nested_block_comment_body(3)),
        ("/", r"\*[\s\S]*+", "badcomment"),
        # A quote may be prefixed: E'..' has backslash escapes, U&'..' and N'..'
        # are standard strings, B'..'/X'..' bit strings.  The prefix letter is
        # not part of the match (it stays in the key) but selects the body.
        ("'", rf"(?<=[eE]')(?<![{_IDC}][eE]')(?:[^'\\]++|\\[\s\S]|'')*+'", "str"),
        ("'", rf"(?<=[uU]&')(?<![{_IDC}][uU]&'){_SQ_BODY}", "str"),
        ("'", rf"(?<=[bBxX]')(?<![{_IDC}][bBxX]')[^']*+'", "bits"),
        ("'", _SQ_BODY, "sstr"),
        ("'", r"[\s\S]*+", "badstr"),
        ("$", rf"(?<![{_IDC}]\$)(?P<tag>{tag})\$[\s\S]*?\$(?P=tag)\$", "str"),
        ("$", rf"(?<![{_IDC}]\$){tag}\$[\s\S]*+", "badstr"),
        ("$", rf"(?<![{_IDC}]\$)\d++", "param+junk"),
        *_QUOTED_IDENT,
        _NUMBER,
        _DOT_NUMBER,
        _PYFORMAT,
        _COLON_NAME,
        ("?", "", "pgqmark"),
    ]


def _mysql_parts(executable_comments: bool) -> list[_Part]:
    # MySQL strings accept both doubled quotes and backslash escapes (an odd
    # run of backslashes before a quote makes the scan unsure and ambiguous:
    # NO_BACKSLASH_ESCAPES moves the end of the string).  Double-quoted
    # strings are identifiers under ANSI_QUOTES, so they are masked (for
    # logging) but make the scan unsure too.
    sq = r"[^'\\]*+(?:(?:\\[\s\S]|'')[^'\\]*+)*+'"
    dq = r'[^"\\]*+(?:(?:\\[\s\S]|"")[^"\\]*+)*+"'
    line = r"-(?=[\x00-\x20])[^\n]*+|-\Z"
    block = (
        r"\*(?!M?!)[^*]*+\*++(?:[^/*][^*]*+\*++)*+/"
        if executable_comments
        else _FLAT_BLOCK_COMMENT_BODY
    )
    parts: list[_Part] = []
    if executable_comments:
        parts.append(("/", r"\*M?![0-9]{0,6}", "myexec"))
    parts += _gap_parts(line, block, hash_comments=True)
    parts.append(("/", r"\*[\s\S]*+", "badcomment"))
    if executable_comments:
        parts.append(("*", "/", "myclose"))
    parts += [
        ("'", sq, "sstr"),
        ('"', dq, "dqstr"),
        ("'\"", r"[\s\S]*+", "badstr"),
        *_BACKTICK_IDENT,
        _NUMBER,
        _DOT_NUMBER,
        _PYFORMAT,
        _COLON_NAME,
        ("?", "", "param"),
    ]
    return parts


def _sqlite_parts() -> list[_Part]:
    return [
        *_gap_parts(r"-[^\n]*+", _FLAT_BLOCK_COMMENT_BODY),
        ("/", r"\*[\s\S]*+", "badcomment"),
        ("'", _SQ_BODY, "str"),  # no backslash escapes in SQLite
        ("'", r"[\s\S]*+", "badstr"),
        *_QUOTED_IDENT,
        *_BACKTICK_IDENT,
        (r"\[", r"[^\]]*+\]", "ident"),
        (r"\[", r"[\s\S]*+", "badstr"),  # unterminated: masked to the end
        _NUMBER,
        _DOT_NUMBER,
        _PYFORMAT,
        _COLON_NAME,
        ("@$", rf"(?<![{_IDC}][@$])[A-Za-z_][A-Za-z0-9_]*+", "foreign"),
        ("?", r"\d++", "foreign"),
        ("?", "", "param"),
    ]


def _generic_parts() -> list[_Part]:
    # sqlglot's default dialect nests block comments, like PostgreSQL
    return [
        *_gap_parts(r"-[^\n\r]*+", _nested_block_comment_body(3)),
        ("/", r"\*[\s\S]*+", "badcomment"),
        ("'", rf"(?<=[bBxX]')(?<![{_IDC}][bBxX]')[^']*+'", "bits"),
        ("'", _SQ_BODY, "sstr"),
        ("'", r"[\s\S]*+", "badstr"),
        *_QUOTED_IDENT,
        *_BACKTICK_IDENT,
        ("$", rf"(?<![{_IDC}]\$)\d++", "foreign+junk"),
        _NUMBER,
        _DOT_NUMBER,
        _PYFORMAT,
        _COLON_NAME,
        ("?", "", "param"),
    ]


# Characters PostgreSQL accepts in operator names.
_PG_OP_CHARS: Final = frozenset("~!@#^&|`?+-*/%<>=")
# After these characters a PostgreSQL ``?`` is in operand position, so it is a
# driver placeholder rather than a jsonb/geometric operator.
_QMARK_AFTER_CHARS: Final = frozenset("(,[=<>+-*/%|&^~!@#")
_QMARK_AFTER_WORDS: Final = frozenset(
    """SELECT WHERE AND OR NOT ON HAVING WHEN THEN ELSE CASE LIMIT OFFSET BY RETURNING
    SET VALUES IN IS LIKE ILIKE TO BETWEEN DISTINCT ALL ANY SOME FROM FOR ESCAPE FIRST
    NEXT DEFAULT""".split()
)


def _is_ident_char(c: str) -> bool:
    return not c.isascii() or c.isalnum() or c == "_" or c == "$"


def _pg_qmark_is_placeholder(text: str, start: int) -> bool:
    """Decide whether a PostgreSQL ``?`` is a placeholder or an operator."""
    nxt = text[start + 1 : start + 2]
    if nxt and nxt in _PG_OP_CHARS:
        return False  # part of ?| ?& ?- ?# ?-| ?|| ...
    i = start - 1
    while i >= 0 and text[i] in " \t\n\r\f\v":
        i -= 1
    if i < 0:
        return True
    c = text[i]
    if c in _QMARK_AFTER_CHARS:
        return True
    if _is_ident_char(c):
        j = i
        while j > 0 and _is_ident_char(text[j - 1]):
            j -= 1
        return text[j : i + 1].upper() in _QMARK_AFTER_WORDS
    return False


_STRING_KINDS: Final = frozenset({"str", "sstr", "dqstr", "bits", "badstr"})
# An odd run of backslashes before a quote: only there do the string's bounds
# differ between "backslash escapes" and "backslash is a plain character".
_ODD_BACKSLASH_SQ: Final = re.compile(r"(?<!\\)(?:\\\\)*\\'")
_ODD_BACKSLASH_DQ: Final = re.compile(r'(?<!\\)(?:\\\\)*\\"')
_PAREN_AFTER: Final = re.compile(r"[ \t\n\r\f\v]*\(")
# Two string literals separated by nothing but spaces (and perhaps a prefix):
# PostgreSQL joins them across a newline and rejects them otherwise, MySQL
# always joins them.  Not worth mirroring.
_ADJACENT_STRINGS: Final = re.compile(r"\x00[SB] *+(?:[A-Za-z_0-9]*+&?)\x00[SB]")
_SPACES: Final = re.compile(" {2,}")


class _Scanner:
    """The compiled pattern(s) of one dialect plus the replacement rules."""

    __slots__ = ("_patterns", "_native_param", "_open_comment_ok")

    def __init__(self, dialect: Dialect, chain_idents: bool = True) -> None:
        self._native_param = "$" if dialect == "postgresql" else "?"
        # SQLite accepts a block comment left open at the end of the text
        self._open_comment_ok = dialect == "sqlite"
        self._patterns: tuple[
            tuple[re.Pattern[str], tuple[str, ...]],
            tuple[re.Pattern[str], tuple[str, ...]] | None,
        ]
        chain = chain_idents
        if dialect == "postgresql":
            self._patterns = (_build(_pg_parts(), chain), None)
        elif dialect == "mysql":
            self._patterns = (
                _build(_mysql_parts(False), chain),
                _build(_mysql_parts(True), chain),
            )
        elif dialect == "sqlite":
            self._patterns = (_build(_sqlite_parts(), chain), None)
        else:
            self._patterns = (_build(_generic_parts(), chain), None)

    def scan(self, text: str) -> ScanResult:
        """Mask ``text``; see :class:`ScanResult`."""
        unsure = False
        broken = False
        ambiguous = False
        if "\x00" in text:
            # PostgreSQL stops reading at NUL; never trust such a text.
            text = text.replace("\x00", "\ufffd")
            unsure = True
        pattern, kinds = self._patterns[0]
        if self._patterns[1] is not None and ("/*!" in text or "/*M!" in text):
            pattern, kinds = self._patterns[1]
        native = self._native_param
        open_comment_ok = self._open_comment_ok
        rewrites: Rewrites = []
        in_exec = False
        spaced_ident = False

        def replace(m: re.Match[str]) -> str:
            nonlocal unsure, broken, ambiguous, in_exec, spaced_ident
            kind = kinds[m.lastindex]  # type: ignore[index]
            if kind == "gap":
                return " "
            if kind == "ident":
                s = m.group()
                if "  " in s:
                    spaced_ident = True
                return s
            if kind in _STRING_KINDS:
                if kind == "sstr":
                    s = m.group()
                    if "\\" in s and _ODD_BACKSLASH_SQ.search(s):
                        # `'a\'`: where it ends depends on standard_conforming_strings
                        # (PostgreSQL) or NO_BACKSLASH_ESCAPES (MySQL)
                        unsure = ambiguous = True
                    return M_STR
                if kind == "bits":
                    return M_BITS
                if kind == "dqstr":
                    # MySQL: a string, or an identifier under ANSI_QUOTES
                    unsure = True
                    s = m.group()
                    if ("\\" in s and _ODD_BACKSLASH_DQ.search(s)) or _PAREN_AFTER.match(
                        text, m.end()
                    ):
                        ambiguous = True  # `"f"(...)` calls f under ANSI_QUOTES
                    return M_STR
                if kind == "badstr":
                    unsure = broken = True
                return M_STR
            if kind == "num":
                s = m.group()
                if "." in s or (("e" in s or "E" in s) and s[1:2] not in ("x", "X")):
                    return M_NUM
                return M_INT
            if kind == "param":
                return M_PARAM
            if kind == "foreign":
                rewrites.append((m.start(), m.end(), native))
                return M_PARAM
            if kind == "pgqmark":
                if not _pg_qmark_is_placeholder(text, m.start()):
                    return "?"
                rewrites.append((m.start(), m.end(), native))
                return M_PARAM
            if kind.endswith("_junk"):
                # `1abc`, `$1abc`: the server rejects or re-lexes these
                unsure = True
                s = m.group()
                if kind == "foreign_junk":
                    rewrites.append((m.start(), m.end() - 1, native))
                return (M_INT if kind == "num_junk" else M_PARAM) + s[-1]
            if kind == "badcomment":
                # unterminated (or, in PostgreSQL, nested more than 3 deep)
                unsure = True
                if not open_comment_ok:
                    broken = True
                return " "
            if kind == "badident":
                unsure = True
                broken = True
                return m.group()
            if kind == "myexec":
                # /*!NNNNN ... */ runs only on servers of version >= NNNNN
                unsure = ambiguous = True
                in_exec = True
                rewrites.append((m.start(), m.end(), " "))
                return " "
            if kind == "myclose":
                if in_exec:
                    in_exec = False
                    rewrites.append((m.start(), m.end(), " "))
                    return " "
                return m.group()
            raise AssertionError(kind)  # pragma: no cover

        key = pattern.sub(replace, text)
        if in_exec:
            broken = True  # an executable comment left open
        if "  " in key and not spaced_ident:
            key = _SPACES.sub(" ", key)
        key = key.strip(" ").rstrip("; ")
        if key.count("\x00") >= 2:
            if ("\x00S" in key or "\x00B" in key) and _ADJACENT_STRINGS.search(key):
                unsure = True
            key = _collapse_lists(key)
        return ScanResult(key, not unsure, rewrites or None, broken, ambiguous)


# A parenthesised list of bare values, perhaps followed by more such lists.
_LISTS: Final = re.compile(
    r"\( ?\x00[A-Z](?: ?, ?\x00[A-Z])*+ ?\)"
    r"(?P<more>(?: ?, ?\( ?\x00[A-Z](?: ?, ?\x00[A-Z])*+ ?\))*+)"
)
_ROW_RE: Final = re.compile(r"\([^()]*\)")


def _word_before(key: str, pos: int) -> str:
    """The word that ends right before ``pos`` (spaces skipped), upper-cased."""
    end = pos
    while end > 0 and key[end - 1] == " ":
        end -= 1
    start = end
    while start > 0 and _is_ident_char(key[start - 1]):
        start -= 1
    return key[start:end].upper()


def _collapse_repl(m: re.Match[str]) -> str:
    key = m.string
    start = m.start()
    more = m.group("more")
    if not more:
        # `IN (v, v, ...)` -- but not `FOR VALUES IN (...)` of a partition
        if m.group().count("\x00") < 2 or _word_before(key, start) != "IN":
            return m.group()
        j = start
        while key[j - 1] == " ":
            j -= 1
        if _word_before(key, j - 2) == "VALUES":
            return m.group()
        return "(\x00L)"
    if _word_before(key, start) != "VALUES":
        return m.group()
    rows = _ROW_RE.findall(m.group())
    width = rows[0].count("\x00")
    for row in rows:
        if row.count("\x00") != width:
            return m.group()  # rows of different widths: leave them alone
    return rows[0] + "\x00V"


def _collapse_lists(key: str) -> str:
    return _LISTS.sub(_collapse_repl, key)


# A marker, with the prefix of a prefixed string literal (E'', U&'', N'', B'',
# X'', MySQL _charset'') in front of it.
_MARKER: Final = re.compile(
    rf"(?:(?<![{_IDC}])(?:[eEnNbBxX]|[uU]&|_[A-Za-z0-9]+)(?=\x00[SB]))?\x00(.)", re.DOTALL
)


def normalized_from_key(key: str) -> str:
    """Render a masked key as the public normalized text."""
    if "\x00" not in key:
        return key
    n = 0

    def number(m: re.Match[str]) -> str:
        nonlocal n
        c = m.group(1)
        if c == "V":
            return " /*, ... */"
        n += 1
        if c == "L":
            return f"${n} /*, ... */"
        return f"${n}"

    return _MARKER.sub(number, key)


def apply_rewrites(text: str, rewrites: Rewrites | None) -> str:
    """Return ``text`` with foreign placeholders made native.

    PostgreSQL placeholders are numbered ``$1, $2, ...`` in order; the numbers
    do not matter to the analysis.
    """
    if not rewrites:
        return text
    parts: list[str] = []
    pos = 0
    n = 0
    for start, end, repl in rewrites:
        parts.append(text[pos:start])
        if repl == "$":
            n += 1
            # spaces on both sides: `x=%s` must not glue into an operator
            parts.append(f" ${n} ")
        elif repl == "?":
            parts.append(" ? ")
        else:
            parts.append(repl * (end - start))
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


_SCANNERS: Final[dict[str, _Scanner]] = {}


def scanner_for(dialect: Dialect) -> Callable[[str], ScanResult]:
    """The bound ``scan`` method for a dialect (built once)."""
    sc = _SCANNERS.get(dialect)
    if sc is None:
        sc = _SCANNERS[dialect] = _Scanner(dialect)
    return sc.scan


def scanner_built(dialect: Dialect) -> bool:
    """Whether the patterns of ``dialect`` are compiled already."""
    return dialect in _SCANNERS


def scan(text: str, dialect: Dialect) -> ScanResult:
    """Mask ``text``; see :class:`ScanResult`."""
    return scanner_for(dialect)(text)
