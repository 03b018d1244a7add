# C types for _breaker.py when Cython compiles it (see dbsight._compiled): `CircuitBreaker` as
# an extension type (the relay records a transaction's success in C). The .py is the source;
# this file only types it.
import cython

cdef class CircuitBreaker:
    cdef public double window_s
    cdef public long min_requests
    cdef public double error_rate
    cdef public double cooldown_s
    cdef public long trial_requests
    cdef public str state
    cdef public double _bucket_s
    cdef public object _buckets
    cdef public list _newest
    cdef public double _newest_until
    cdef public long _requests
    cdef public long _failures
    cdef public object _opened_at
    cdef public long _times_opened
    cdef public object _trials
    cdef public long _trial_successes

    cpdef object record(self, bint ok, double now)
