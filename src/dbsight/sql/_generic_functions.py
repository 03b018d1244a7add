"""Curated side-effect-free functions for MySQL, SQLite and other sqlglot dialects.

Hand-maintained (no server catalog to generate them from).  A function call
is safe when sqlglot parsed it into one of :data:`SAFE_FUNC_CLASSES`, or when
its name (lower case) is in :data:`SAFE_FUNCTION_NAMES`.  Anything else --
in particular ``GET_LOCK``, ``RELEASE_LOCK``, ``IS_FREE_LOCK``, ``SLEEP``,
``BENCHMARK``, ``LAST_INSERT_ID``, ``FOUND_ROWS``, ``ROW_COUNT``,
``LOAD_FILE``, ``NEXTVAL``/``SETVAL``/``LASTVAL`` (MariaDB sequences),
``MASTER_POS_WAIT``, ``CONNECTION_ID``, SQLite's ``changes()``,
``last_insert_rowid()``, ``load_extension()`` and every user-defined or
schema-qualified function -- makes a statement not read-only.
"""

from __future__ import annotations

from typing import Final

# sqlglot expression classes (``type(node).__name__``) of harmless functions
# and function-like syntax.
SAFE_FUNC_CLASSES: Final[frozenset[str]] = frozenset(
    """
    Abs Acos AnyValue Array ArrayAgg Ascii Asin Atan Atan2 Avg BitLength BitwiseAndAgg
    BitwiseOrAgg BitwiseXorAgg Case Cast Ceil Chr Coalesce Collate Concat ConcatWs Convert
    ConvertTimezone Cos Cot Count CumeDist CurrentDate CurrentDatetime CurrentSchema
    CurrentTime CurrentTimestamp CurrentUser CurrentVersion Date DateAdd DateDiff
    DateSub DateTrunc Datetime Day DayOfMonth DayOfWeek DayOfYear Dayname
    Degrees DenseRank Elt Exists Exp Extract FirstValue Floor Format FromBase64
    GenerateSeries Greatest GroupConcat Hex Hour If Initcap JSONArray JSONArrayAgg
    JSONExtract JSONExtractScalar JSONKeys JSONObject JSONObjectAgg JSONRemove JSONSet
    JSONType Lag LastDay LastValue Lead Least Left Length Ln Localtime Localtimestamp Log
    Lower MD5 Max Min Minute Month Monthname NthValue Ntile Nullif NumberToStr Pad
    PercentRank Pi Pow Quarter Radians Rand Rank RegexpInstr RegexpLike RegexpReplace
    RegexpSubstr Repeat Replace Reverse Right Round RowNumber SHA SHA2 Second SessionUser
    Sign Sin Soundex Space Sqrt Stddev StddevPop StddevSamp StrPosition StrToDate
    StrToTime Substring SubstringIndex Sum Tan Time TimeFromParts TimeToStr Timestamp
    TimestampAdd TimestampDiff ToBase64 ToDays Trim Trunc TryCast TsOrDsToDate
    TsOrDsToTimestamp Typeof Unhex Unicode UnixToTime Upper UtcDate UtcTime UtcTimestamp
    Uuid Variance VariancePop Week WeekOfYear WeightString Year
    """.split()
)

# Names (lower case) of harmless functions, whichever class sqlglot gives them.
SAFE_FUNCTION_NAMES: Final[frozenset[str]] = frozenset(
    """
    abs acos adddate addtime any_value ascii asin atan atan2 avg bin bit_and bit_count
    bit_length bit_or bit_xor cast ceil ceiling char char_length character_length coalesce
    concat concat_ws conv convert convert_tz cos cot count crc32 cume_dist curdate
    current_date current_time current_timestamp current_user curtime database date
    date_add date_format date_sub datediff datetime day dayname dayofmonth dayofweek
    dayofyear degrees dense_rank elt exp extract field find_in_set first_value floor
    format format_bytes from_base64 from_days from_unixtime get_format glob greatest
    group_concat hex hour if ifnull iif inet6_aton inet6_ntoa inet_aton inet_ntoa insert
    instr interval is_ipv4 is_ipv6 isnull json json_array json_array_length
    json_arrayagg json_contains json_contains_path json_depth json_each json_extract
    json_group_array json_group_object json_insert json_keys json_length json_merge_patch
    json_merge_preserve json_object json_objectagg json_overlaps json_patch json_pretty
    json_quote json_remove json_replace json_search json_set json_tree json_type
    json_unquote json_valid json_value julianday lag last_day last_value lcase lead least
    left length like likelihood likely ln localtime localtimestamp locate log log10 log2
    lower lpad ltrim makedate maketime max md5 microsecond mid min minute mod month
    monthname now nth_value ntile nullif oct octet_length ord percent_rank period_add
    period_diff pi position pow power printf quarter quote radians rand random
    randomblob rank regexp_instr regexp_like regexp_replace regexp_substr repeat replace
    reverse right round row row_number rpad rtrim schema sec_to_time second session_user
    sha sha1 sha2 sign sin soundex space sqlite_version sqrt std stddev stddev_pop
    stddev_samp str_to_date strcmp strftime substr substring substring_index sum
    sysdate system_user tan time time_format time_to_sec timediff timestamp
    timestampadd timestampdiff to_base64 to_days to_seconds total trim truncate typeof
    ucase unhex unicode unix_timestamp unixepoch unlikely upper user utc_date utc_time
    utc_timestamp uuid var_pop var_samp variance version week weekday weekofyear
    weight_string year yearweek zeroblob
    """.split()
)
