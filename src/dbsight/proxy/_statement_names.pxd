# C types for _statement_names.py when Cython compiles it (see dbsight._compiled):
# `StatementNames` as an extension type whose `rename` the relay reaches in C, the exchange it
# tells typed. The .py is the source; this file only types it.
import cython

from dbsight cimport _hot

from dbsight.proxy cimport _exchange
from dbsight.proxy._exchange cimport Exchange
from dbsight.proxy._server_fields cimport ServerFields

cdef long _BIND, _PARSE, _CLOSE, _STATEMENT

cdef class StatementNames:
    cdef public dict statements
    cdef public object answer
    cdef public object on_prepared
    cdef public object generation

    @cython.locals(j=Py_ssize_t, k=Py_ssize_t, entry=tuple, body=bytes, message=bytes,
                   inject=bytes)
    cpdef object rename(self, object conn, Exchange exchange, long t, bytes buf,
                        Py_ssize_t start, Py_ssize_t end, double at)

    cpdef tuple _on_connection(self, object conn, Exchange exchange, str name)

    cpdef tuple _entry_on_connection(self, ServerFields conn, Exchange exchange, str name,
                                     tuple entry)


