# C types for _table_fold.py when Cython compiles it (see dbsight._compiled): the entry's
# counters as C fields, and the lean path's events read through theirs. The .py is the
# source; this file only types it.
import cython
from libc cimport math

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
    cdef public double first_seen
    cdef public double last_seen
    cdef public dict routes
    cdef public dict databases
    cdef public object plan_summary

cdef double _INV_GAMMA, _MIN_S
cdef long long _MIN_I
cdef Py_ssize_t _EXACT

@cython.locals(entries=dict, entry=EntryCounters, lean=LeanEvent, duration=double,
               seen=double, failed=bint, index=cython.longlong, key=object,
               counted=cython.longlong, routes=dict, databases=dict, hist=dict)
cpdef count_batch(object table, object events)
