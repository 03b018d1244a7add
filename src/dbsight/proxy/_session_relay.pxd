# C types for _session_relay.py when Cython compiles it (see dbsight._compiled): `SessionRelay`
# as an extension type, its exchange typed (its methods reached in C). The .py is the source;
# this file only types it.
import cython

from dbsight cimport _hot

from dbsight.proxy._client_fields cimport SessionFields
from dbsight.proxy._exchange cimport Exchange
from dbsight.proxy._link_relay cimport Sender

cdef bytes _CLIENT
cdef long _COPY_DATA

cdef class SessionRelay:
    cdef SessionFields session
    cdef Exchange exchange
    cdef Sender client
    cdef Sender server
    cdef Py_ssize_t max_size
    cdef bytes buffer

    @cython.locals(n=Py_ssize_t, i=Py_ssize_t, end=Py_ssize_t, length=Py_ssize_t, t=long,
                   at=double, max_size=Py_ssize_t, exchange=Exchange, buf=bytes)
    cpdef client_data(self, bytes data)

    @cython.locals(exchange=Exchange)
    cpdef server_data(self, bytes data)

    cpdef stop_observing(self, str where, object exc)
