# C types for _pool.py when Cython compiles it (see dbsight._compiled): `BackendPool` as an
# extension type (a pooled client's lease takes back and parks its connection in C). The .py
# is the source; this file only types it.
import cython

from dbsight cimport _hot

from dbsight.proxy._pool_wait cimport CalledBack, Waiter, called_back
from dbsight.proxy._server_fields cimport ServerFields

cdef class BackendPool:
    cdef public object spec
    cdef public str name
    cdef public long min_size
    cdef public long max_size
    cdef public double acquire_timeout_s
    cdef public object idle_timeout_s
    cdef public object max_lifetime_s
    cdef public double reset_timeout_s
    cdef public double maintenance_interval_s
    cdef public object max_prepared
    cdef public object retry
    cdef public object _idle
    cdef public set _used
    cdef public long _parked
    cdef public long _connecting
    cdef public object _waiters
    cdef public object _timer
    cdef public double _timer_at
    cdef public object _loop
    cdef public object _call_soon
    cdef public set _tasks
    cdef public object _maintenance
    cdef public bint _closed
    cdef public object _gauge_name
    cdef public long total_acquired
    cdef public long total_connects
    cdef public long connect_errors
    cdef public long total_timeouts
    cdef public long total_closed
    cdef public double total_wait_s
    cdef public double max_wait_seen_s
    cdef public long total_resets
    cdef public long total_clean_releases
    cdef public long total_deallocated
    cdef object __weakref__

    cpdef object try_acquire(self)

    cpdef bint park(self, ServerFields conn, object unpark, double now=*) except -1

    cpdef bint take_back(self, ServerFields conn, object unpark=*) except -1

    cpdef release_clean(self, ServerFields conn, bint relayed=*)

    cpdef CalledBack wait(self, object then, object timeout=*)

    @cython.locals(waiter=Waiter, waited=double)
    cpdef _deliver(self, object conn)

    cpdef _enqueue(self, Waiter waiter)

    cpdef _grow(self)
