"""One line per invalid setting: the field, where its value came from, the rule, the value.

    invalid dbsight setting slow_query_threshold_ms (DBSIGHT_SLOW_QUERY_THRESHOLD_MS in the
    environment): must be a number greater than 0 and at most 3600000, got '-5'

(one line: no wrapping). The value is shown as written, cut at `MAX_SHOWN` characters, with
the credentials and query values of a URL in it masked (``https://***@host/?key=***``):
an OTLP endpoint may carry a token. A name that is not a setting is shown without a value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any, get_args

import annotated_types
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from ._settings_env import Variable

MAX_SHOWN = 60
ARGUMENT = "Settings argument"

_NUMBER_ERRORS = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "int_parsing",
        "int_from_float",
        "int_type",
        "float_parsing",
        "float_type",
        "finite_number",
    }
)
_LENGTH_ERRORS = frozenset({"string_too_short", "string_too_long"})
_FIXED_RULES = {
    "bool_parsing": "must be true or false (or 1/0, yes/no, on/off)",
    "bool_type": "must be true or false",
    "path_type": "must be a file system path",
}
_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")
_QUERY_VALUE = re.compile(r"(?<=[?&])([^=&#\s]*)=[^&#\s]*")


def describe_validation_error(
    error: ValidationError,
    fields: Mapping[str, FieldInfo],
    variables: Mapping[str, Variable],
) -> str:
    """A line per invalid field (its first error), in the order pydantic found them."""

    def source(field: str) -> tuple[str, object] | None:
        variable = variables.get(field)
        return (str(variable), variable.value) if variable is not None else None

    return "\n".join(problem_lines(error, fields, "dbsight setting", source, ARGUMENT))


def problem_lines(
    error: ValidationError,
    fields: Mapping[str, FieldInfo],
    subject: str,
    source: Callable[[str], tuple[str, object] | None],
    default_origin: str,
) -> list[str]:
    """A line per invalid field of a pydantic model (its first error): ``invalid SUBJECT
    FIELD (ORIGIN): RULE, got VALUE``. ``source(field)`` says where the field's value was
    written and as what (None: ``default_origin``, and the value pydantic was given); a
    model-level rule (two fields that go together) is one line about the model."""
    lines: list[str] = []
    seen: set[str] = set()
    for item in error.errors(include_url=False):
        loc = item["loc"]
        if not loc:
            lines.append(f"invalid {subject}s: {_rule(item, None)}")
            continue
        field = str(loc[0])
        if field in seen:
            continue
        seen.add(field)
        found = source(field)
        origin, value = found if found is not None else (default_origin, item.get("input"))
        if item["type"] == "extra_forbidden":
            close = difflib.get_close_matches(field, fields, n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]}?" if close else ""
            lines.append(f"unknown {subject} {field} ({origin}){hint}")
            continue
        rule = _rule(item, fields.get(field))
        inner = ".".join(str(part) for part in loc[1:])
        if inner:
            rule = f"{inner}: {rule}"
        lines.append(f"invalid {subject} {field} ({origin}): {rule}, got {shown(value)}")
    return lines


def shown(value: object) -> str:
    """``value`` as it may appear in a message: URL credentials masked, cut to `MAX_SHOWN`."""
    text = value if isinstance(value, str) else repr(value)
    text = _QUERY_VALUE.sub(r"\1=***", _USERINFO.sub("***@", text))
    if len(text) > MAX_SHOWN:
        text = text[: MAX_SHOWN - 3] + "..."
    return repr(text) if isinstance(value, str) else text


def _rule(item: Any, info: FieldInfo | None) -> str:
    kind = item["type"]
    if kind == "value_error":
        error = item.get("ctx", {}).get("error")
        if error is not None:
            return str(error)
    if info is not None:
        if kind in _NUMBER_ERRORS:
            return _number_rule(info)
        if kind in _LENGTH_ERRORS:
            return _length_rule(info)
    if kind in _FIXED_RULES:
        return _FIXED_RULES[kind]
    message = str(item["msg"])
    message = message.removeprefix("Value error, ").replace("Input should be", "must be")
    return message[:1].lower() + message[1:]


def _number_rule(info: FieldInfo) -> str:
    args = get_args(info.annotation)
    whole = info.annotation is int or (int in args and float not in args)
    noun = "a whole number" if whole else "a number"
    low: tuple[str, Any] | None = None
    high: tuple[str, Any] | None = None
    for item in info.metadata:
        if isinstance(item, annotated_types.Gt):
            low = ("greater than", item.gt)
        elif isinstance(item, annotated_types.Ge):
            low = ("at least", item.ge)
        elif isinstance(item, annotated_types.Lt):
            high = ("less than", item.lt)
        elif isinstance(item, annotated_types.Le):
            high = ("at most", item.le)
    if low is not None and high is not None and low[0] == "at least" and high[0] == "at most":
        return f"must be {noun} from {_number(low[1])} to {_number(high[1])}"
    bounds = [f"{words} {_number(bound)}" for words, bound in filter(None, (low, high))]
    return " ".join([f"must be {noun}", *([" and ".join(bounds)] if bounds else [])])


def _length_rule(info: FieldInfo) -> str:
    low, high = 0, None
    for item in info.metadata:
        if isinstance(item, annotated_types.MinLen):
            low = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            high = item.max_length
    if high is None:
        return f"must have at least {low} characters"
    return f"must have {low} to {high} characters"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
