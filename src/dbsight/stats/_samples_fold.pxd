# C types for _samples_fold.py when Cython compiles it (see dbsight._compiled): a reservoir's
# counters as C fields, and the lean path's events read through theirs. The .py is the
# source; this file only types it.
import cython

from dbsight.core._lean cimport LeanEvent

cdef class Reservoir:
    cdef public long long seen
    cdef public double next
    cdef public long long tried
    cdef public double w
    cdef public list samples
    cdef public list sizes

@cython.locals(entries=dict, entry=Reservoir, lean=LeanEvent)
cpdef count_calls(object sampler, object events)
