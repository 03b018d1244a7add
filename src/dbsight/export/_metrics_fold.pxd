# C types for _metrics_fold.py when Cython compiles it (see dbsight._compiled): a series'
# counters as C fields, and the lean path's events read through theirs. The .py is the
# source; this file only types it.
import cython

from dbsight.core._lean cimport LeanEvent

cdef class OperationSeries:
    cdef public object labels
    cdef public long long ok
    cdef public long long error
    cdef public double sum
    cdef public list buckets
    cdef public long long slow
    cdef public dict by_sqlstate

cdef double _FIRST_BOUND
cdef Py_ssize_t _BOUNDS
cdef tuple _UPPER

@cython.locals(index=Py_ssize_t, bound_of=dict, bound=dict, series=OperationSeries,
               lean=LeanEvent, duration=double, slow_s=double, upper=double)
cpdef count_ok(object sink, object events)
