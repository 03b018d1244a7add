# C types for _held.py when Cython compiles it (see dbsight._compiled). The .py is the source;
# this file only types it.
import cython

from dbsight cimport _hot

cdef class LeanEnding:
    cdef public object recorder
    cdef public object pending
    cdef public double cutoff
    cdef public object gate
    cdef public dict gate_map
    cdef public object gate_key
    cdef object _append

    cpdef set_gate(self, object gate)

    @cython.locals(duration=double, started=double)
    cpdef ended(self, tuple begun, object rows)

cpdef list take(object pending, Py_ssize_t n)
