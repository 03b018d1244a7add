# C types for _held.py when Cython compiles it (see dbsight._compiled). The .py is the source;
# this file only types it.
import cython

from dbsight cimport _hot
from dbsight.core cimport _lean

cdef class LeanEnding:
    cdef public object recorder
    cdef public object pending
    cdef public double cutoff
    cdef public object gate
    cdef public dict gate_map
    cdef public object gate_key
    cdef public bint events
    cdef public tuple settings
    cdef object _append
    cdef double _clock
    cdef list _fingerprints

    cpdef set_gate(self, object gate)

    cpdef set_events(self, bint events, tuple settings)

    @cython.locals(duration=double, started=double, now=double)
    cpdef ended(self, tuple begun, object rows)

    @cython.locals(known=tuple, slot=Py_ssize_t)
    cdef _hold_event(self, tuple begun, object system, object info, object state,
                     double started, double now, double duration, object rows)

cpdef list take(object pending, Py_ssize_t n)

cdef object _time
cdef Py_ssize_t RECENT
