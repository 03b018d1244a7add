# C types for _receiver.py when Cython compiles it (see dbsight._compiled): a ready socket's
# receiver called in C. The .py is the source; this file only types it.
import cython

from dbsight cimport _hot

cdef class Poller:
    cdef public object loop
    cdef public object epoll
    cdef public int fd
    cdef public dict receivers

    @cython.locals(receiver=Receiver)
    cpdef readable(self)

cdef class Receiver:
    cdef public object transport
    cdef public object on_data
    cdef public int fd
    cdef public bint paused
    cdef object _loop
    cdef object _poller

    cpdef readable(self)
