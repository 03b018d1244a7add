# C types for _link_relay.py when Cython compiles it (see dbsight._compiled): a link's relay
# mode as the C fields and methods of its base class. The .py is the source; this file only
# types it.
import cython

from dbsight cimport _hot

cdef class LinkRelay:
    cdef public object reader
    cdef public object on_data
    cdef public object on_lost
    cdef public object paired
    cdef public bint lost
    cdef public bint direct
    cdef public bint fed
    cdef public object receiver
    cdef public object stream_feed

    cdef bytes start_relay(self, object on_data, object on_lost, object paired, bint direct)
    cdef stop_relay(self)

cdef class Sender:
    cdef public object transport
    cdef public int fd
    cdef object _buffered
    cdef object _closing

    cpdef bint is_closing(self) except -1

    @cython.locals(sent=Py_ssize_t)
    cpdef write(self, bytes data)
