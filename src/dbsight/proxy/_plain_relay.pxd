# C types for _plain_relay.py when Cython compiles it (see dbsight._compiled): `PlainRelay` as
# an extension type, its exchange, statement effects and names typed (reached in C). The .py
# is the source; this file only types it.
import cython

from dbsight cimport _hot

from dbsight.proxy._exchange cimport Exchange
from dbsight.proxy._statement_effects cimport StatementEffects
from dbsight.proxy._statement_names cimport StatementNames
from dbsight.proxy._lease cimport Lease
from dbsight.proxy._breaker cimport CircuitBreaker
from dbsight.proxy._client_fields cimport SessionFields
from dbsight.proxy._session_info cimport SessionInfo
from dbsight.proxy._link_relay cimport Sender
from dbsight.proxy._server_fields cimport ServerFields

# the message types it tells apart: C integers, compared with no Python object
cdef long _S, _E, _T, _R, _SLASH, _DASH
cdef long PARSE, BIND, DESCRIBE, CLOSE, QUERY, EXECUTE, COPY_DATA, TERMINATE, _IDLE
cdef bytes _CLIENT

cdef class PlainRelay:
    cdef SessionFields session
    cdef Exchange exchange
    cdef Lease lease
    cdef StatementEffects effects
    cdef StatementNames statements
    cdef CircuitBreaker breaker
    cdef object topology
    cdef object settings
    cdef SessionInfo info
    cdef object listen
    cdef list notifications
    cdef public bint shutting_down
    cdef Sender client_sender
    cdef Py_ssize_t max_size

    @cython.locals(n=Py_ssize_t, i=Py_ssize_t, seg=Py_ssize_t, end=Py_ssize_t,
                   length=Py_ssize_t, t=long, at=double, exchange=Exchange,
                   conn=ServerFields, sender=Sender)
    cpdef client_data(self, bytes data)

    @cython.locals(exchange=Exchange)
    cpdef server_data(self, bytes data)

    @cython.locals(exchange=Exchange, now=double)
    cpdef bint end_clean(self) except -1

@cython.locals(j=Py_ssize_t, c=long, d=long, e=long)
cpdef bint maybe_own(bytes data, Py_ssize_t start, Py_ssize_t end) except -1
