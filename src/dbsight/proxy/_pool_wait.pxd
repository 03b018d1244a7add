# C types for _pool_wait.py when Cython compiles it (see dbsight._compiled): a pool's waiters
# as extension types, whose methods the compiled pool calls in C. The .py is the source; this
# file only types it.
import cython

cdef class Waiter:
    cdef public double since
    cdef public double limit
    cdef public double deadline

    cpdef bint done(self) except -1
    cpdef set_result(self, object conn)
    cpdef set_exception(self, object error)
    cpdef cancel(self)
    cpdef object handed(self)

cdef class AwaitedWaiter(Waiter):
    cdef public object future

cdef class CalledBack(Waiter):
    cdef public object pool
    cdef public object then
    cdef public object call_soon
    cdef public object conn
    cdef public object error
    cdef public long state

@cython.locals(slot=CalledBack)
cpdef CalledBack called_back(
    object pool, object then, object call_soon, double since, double limit
)
