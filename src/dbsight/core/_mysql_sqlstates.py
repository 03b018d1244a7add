"""The SQLSTATE MySQL and MariaDB send with a server error, by its error number.

The server puts a SQLSTATE in every error packet. PyMySQL keeps it (``sqlstate``) from 1.2
on, as mysql-connector-python always did, and then it is taken as is; PyMySQL before 1.2
(and so aiomysql and SQLAlchemy's ``mysql+pymysql`` on it), mysqlclient and asyncmy drop it
and raise with ``(error number, message)`` only. This table gives back the SQLSTATE of the errors an
application meets in practice, as the server's own error list defines it (the numbers below
2000 are the same in MySQL and MariaDB; a test checks the table against the installed
MariaDB's ``errmsg-utf8.txt``). A number not listed here has no known SQLSTATE: the metrics
label it ``unknown`` rather than guess.

MySQL reports a deadlock (1213) as ``40001``, the code PostgreSQL uses for a serialization
failure; it has no class 53: running out of memory is ``HY001``, a full disk or a lock
table ``HY000``.
"""

from __future__ import annotations

MYSQL_SQLSTATES: dict[int, str] = {
    1021: "HY000",  # ER_DISK_FULL
    1037: "HY001",  # ER_OUTOFMEMORY
    1038: "HY001",  # ER_OUT_OF_SORTMEMORY
    1040: "08004",  # ER_CON_COUNT_ERROR (too many connections)
    1041: "HY000",  # ER_OUT_OF_RESOURCES
    1044: "42000",  # ER_DBACCESS_DENIED_ERROR
    1045: "28000",  # ER_ACCESS_DENIED_ERROR
    1046: "3D000",  # ER_NO_DB_ERROR
    1048: "23000",  # ER_BAD_NULL_ERROR
    1049: "42000",  # ER_BAD_DB_ERROR
    1050: "42S01",  # ER_TABLE_EXISTS_ERROR
    1051: "42S02",  # ER_BAD_TABLE_ERROR
    1052: "23000",  # ER_NON_UNIQ_ERROR
    1053: "08S01",  # ER_SERVER_SHUTDOWN
    1054: "42S22",  # ER_BAD_FIELD_ERROR
    1062: "23000",  # ER_DUP_ENTRY
    1064: "42000",  # ER_PARSE_ERROR
    1065: "42000",  # ER_EMPTY_QUERY
    1091: "42000",  # ER_CANT_DROP_FIELD_OR_KEY
    1114: "HY000",  # ER_RECORD_FILE_FULL
    1135: "HY000",  # ER_CANT_CREATE_THREAD
    1136: "21S01",  # ER_WRONG_VALUE_COUNT_ON_ROW
    1137: "HY000",  # ER_CANT_REOPEN_TABLE
    1146: "42S02",  # ER_NO_SUCH_TABLE
    1149: "42000",  # ER_SYNTAX_ERROR
    1152: "08S01",  # ER_ABORTING_CONNECTION
    1158: "08S01",  # ER_NET_READ_ERROR
    1159: "08S01",  # ER_NET_READ_INTERRUPTED
    1160: "08S01",  # ER_NET_ERROR_ON_WRITE
    1161: "08S01",  # ER_NET_WRITE_INTERRUPTED
    1169: "23000",  # ER_DUP_UNIQUE
    1203: "42000",  # ER_TOO_MANY_USER_CONNECTIONS
    1205: "HY000",  # ER_LOCK_WAIT_TIMEOUT
    1206: "HY000",  # ER_LOCK_TABLE_FULL
    1213: "40001",  # ER_LOCK_DEADLOCK
    1216: "23000",  # ER_NO_REFERENCED_ROW
    1217: "23000",  # ER_ROW_IS_REFERENCED
    1226: "42000",  # ER_USER_LIMIT_REACHED
    1264: "22003",  # ER_WARN_DATA_OUT_OF_RANGE
    1292: "22007",  # ER_TRUNCATED_WRONG_VALUE
    1317: "70100",  # ER_QUERY_INTERRUPTED
    1364: "HY000",  # ER_NO_DEFAULT_FOR_FIELD
    1365: "22012",  # ER_DIVISION_BY_ZERO
    1366: "22007",  # ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
    1406: "22001",  # ER_DATA_TOO_LONG
    1451: "23000",  # ER_ROW_IS_REFERENCED_2
    1452: "23000",  # ER_NO_REFERENCED_ROW_2
    1586: "23000",  # ER_DUP_ENTRY_WITH_KEY_NAME
    1690: "22003",  # ER_DATA_OUT_OF_RANGE
    1792: "25006",  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
}

# Packages whose exceptions carry ``(error number, message)`` of a MySQL server.
MYSQL_DRIVER_PACKAGES = frozenset({"pymysql", "MySQLdb", "aiomysql", "asyncmy"})


def mysql_sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a MySQL driver's exception that carries only the error number, or
    None (not such an exception, or a number the table does not know)."""
    package = type(exc).__module__.partition(".")[0]
    if package not in MYSQL_DRIVER_PACKAGES:
        return None
    args = exc.args
    if args and isinstance(args[0], int):
        return MYSQL_SQLSTATES.get(args[0])
    return None
