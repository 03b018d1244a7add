# C types for _table_fold.py when Cython compiles it (see dbsight._compiled): the entry's
# counters as C fields, and the lean path's events read through theirs. The .py is the
# source; this file only types it.
import cython
from libc cimport math

from dbsight cimport _hot
from dbsight.core._lean cimport LeanEvent

cdef class EntryCounters:
    cdef public object fingerprint
    cdef public object normalized
    cdef public object operation
    cdef public object system
    cdef public object tables
    cdef public long long calls
    cdef public long long rows
    cdef public long long rows_calls
    cdef public long long errors
    cdef public double total
    cdef public double min
    cdef public double max
    cdef public object samples
    cdef public dict hist
    cdef public object pending
    cdef public double first_seen
    cdef public double last_seen
    cdef public dict routes
    cdef public dict databases
    cdef public object plan_summary

cdef double _INV_GAMMA, _MIN_S
cdef long long _MIN_I
cdef Py_ssize_t _EXACT, _PENDING, _SPAN

@cython.locals(entries=dict, entry=EntryCounters, lean=LeanEvent, duration=double,
               seen=double, failed=bint,
               counted=cython.longlong, routes=dict, databases=dict, pending=object)
cpdef count_batch(object table, object events)

@cython.locals(counts="long long[:]", values="double[:]", low=Py_ssize_t, high=Py_ssize_t,
               i=Py_ssize_t, duration=double, index=cython.longlong, slot=Py_ssize_t,
               count=cython.longlong, key=object)
cpdef fold_durations(dict hist, object durations)
