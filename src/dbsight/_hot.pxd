# The C side of _hot.py (see its docstring): compiled modules cimport this; nothing compiles
# _hot.py itself.
from cpython.contextvars cimport get_value

cdef extern from *:
    """
    #include <time.h>
    /* CLOCK_MONOTONIC in seconds, as CPython's time.perf_counter() and time.monotonic()
       give it on Linux (whole nanoseconds, then divided by 1e9) */
    static inline double dbsight_monotonic(void) {
        struct timespec ts;
        long long ns;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        if (ns % 1000000000LL == 0) return (double)(ns / 1000000000LL);
        return (double)ns / 1e9;
    }
    """
    double perf_counter "dbsight_monotonic"() nogil
    double monotonic "dbsight_monotonic"() nogil

cdef inline object context_value(object var):
    return get_value(var)
