# C types for _statement_effects.py when Cython compiles it (see dbsight._compiled):
# `StatementEffects` as an extension type whose `sent` the relays reach in C, and the Query
# flags' lookup typed. The .py is the source; this file only types it.
import cython

from dbsight cimport _hot

from dbsight.proxy._exchange cimport Exchange
from dbsight.sql cimport _shapes

cdef long _EXECUTE, _PARSE

cdef class StatementEffects:
    cdef public object settings
    cdef public object held
    cdef public object server_statements
    cdef public bint watch_custom
    cdef public bint sticky
    cdef public bint settings_said

    cpdef bint settings_read(self) except -1

    @cython.locals(flags=long, key=bytes, text=bytes)
    cpdef sent(self, object conn, Exchange exchange, long t, bytes buf, Py_ssize_t start,
               Py_ssize_t end)

# the remembered answers, as C-typed dictionaries (their lookups with no Python call)
cdef dict _flags, _text_flags
cdef Py_ssize_t _FLAGS_MAX
cdef bytes _last_text
cdef long _last_flags

@cython.locals(flags=object)
cpdef long text_flags(str sql) except -1

cpdef long settings_flags(str sql) except -1

@cython.locals(flags=object)
cpdef long query_flags(bytes buf, Py_ssize_t start, Py_ssize_t end, object key=*) except -1
