# C types for _exchange.py when Cython compiles it (see dbsight._compiled): `Exchange` as an
# extension type with typed fields. The .py is the source; this file only types it.
import cython

from dbsight cimport _hot

from dbsight.sql cimport _shapes
from dbsight.proxy cimport _plain_answer
from dbsight.proxy cimport _writes
from dbsight.core._held cimport LeanEnding

cdef class Exchange:
    cdef public object pending
    cdef object _push
    cdef object _drop
    cdef public dict statements
    cdef public dict portals
    cdef public long status
    cdef public bint discarding
    cdef public bint unsynced
    cdef public object query_key
    cdef public object query_text
    cdef public bint query_comment
    cdef public object key
    cdef public object user
    cdef public object database
    cdef public object application_name
    cdef public object client_addr
    cdef public long statement_count
    cdef public bint dirty
    cdef public bint wrote
    cdef public bint full_reset
    cdef public bint cleared
    cdef public object last_sqlstate
    cdef public bint ddl_seen
    cdef public long ddl_count
    cdef public object capture
    cdef public object session_id
    cdef public bint _rolled_back
    cdef public long row_limit
    cdef public object row_limit_error
    cdef public object on_row_limit
    cdef public long _rows
    cdef public bint _over_limit
    cdef public dict _portal_params
    cdef public dict _statement_params
    cdef public dict _param_types
    cdef public object forget
    cdef public object on_parameter
    cdef public object before_ready
    cdef public bint pooled
    cdef public object _cycle_start
    cdef public object _query_rows
    cdef public long _returned
    cdef public object _runs
    cdef dict _running
    cdef dict _suspended
    cdef public object _buffer
    cdef public object observation
    cdef public dict _logs
    cdef public dict _analyses
    cdef public object listens
    cdef public long listen_tags
    cdef public bint rolled_back
    cdef public long _replies
    cdef public object _facts
    cdef object _flags_of
    cdef long _flags

    @cython.locals(n=Py_ssize_t, i=Py_ssize_t, seg=Py_ssize_t, e=Py_ssize_t, t=long,
                   kind=long, returned=long, row_limit=long, replies=long)
    cpdef object answers(self, object data)

    @cython.locals(i=Py_ssize_t, j=Py_ssize_t, body=bytes, commented=long,
                   read_only=bint)
    cpdef request(self, long t, bytes buf, Py_ssize_t start, Py_ssize_t end, double at,
                  object server_name=*)

    @cython.locals(returned=long, tag=Py_ssize_t, tag_end=Py_ssize_t, select=bint)
    cpdef bint _answered(self, bytes buf, tuple plain) except -1

    cpdef _open(self, object sql, object at, object encoded=*, bint lean=*, object key=*,
                long commented=*)

    cpdef _finish(self, object ctx, object rows)

    @cython.locals(space=Py_ssize_t, first=bytes)
    cpdef _command_tag(self, bytes buf, Py_ssize_t start, Py_ssize_t end)

    cpdef bint bind_renamed(self, object buf, Py_ssize_t start, Py_ssize_t j, object server,
                            double at) except -1

    cpdef expect(self, long kind, object payload=*)

@cython.locals(i=Py_ssize_t)
cpdef Py_ssize_t nul_at(bytes buf, Py_ssize_t start, Py_ssize_t end) except -1

@cython.locals(i=Py_ssize_t)
cdef Py_ssize_t _name_end(bytes buf, Py_ssize_t start, Py_ssize_t end) except -1

cdef str _name_between(bytes buf, Py_ssize_t start, Py_ssize_t after)

@cython.locals(i=Py_ssize_t, rows=cython.longlong)
cpdef object command_rows(bytes buf, Py_ssize_t start, Py_ssize_t end)

cdef object _statement_rows(object tag_rows, long returned)

cdef bint _may_listen(str sql) except -1

cdef bint _may_start_listen(bytes body) except -1

cdef long _QUERY_READ_ONLY, _QUERY_DIRTIES

cdef long _query_flags(object info) except -1

@cython.locals(n=Py_ssize_t, k=Py_ssize_t)
cdef bint _tag_is(bytes buf, Py_ssize_t at, bytes word) except -1

@cython.locals(first=long)
cpdef bint _plain_tag(bytes buf, Py_ssize_t at) except -1

cdef tuple _BIND_ENTRY, _SYNC_ENTRY, _DESCRIBE_ENTRY
cdef LeanEnding _lean_ending
