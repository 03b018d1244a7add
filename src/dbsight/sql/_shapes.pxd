# C types for _shapes.py when Cython compiles it (see dbsight._compiled): the proxy's lookup of
# each relayed statement by its bytes. The .py is the source; this file only types it.
import cython

from dbsight cimport _hot

@cython.locals(template=bytes, fixed=tuple, i=Py_ssize_t)
cpdef object shape_hit(tuple entry, object encoded)

cdef class HitCounter:
    cdef public long long hits
    cdef public object last
    cdef public object last_of
    cdef public list recent

cdef Py_ssize_t RECENT

@cython.locals(n=Py_ssize_t, a=long, b=long)
cpdef Py_ssize_t recent_slot(bytes encoded)

@cython.locals(entry=tuple, last=tuple, near=tuple, other=tuple, mine=bint, slot=Py_ssize_t,
               recent=list)
cpdef object shaped(dict shapes, HitCounter counted, object encoded, object key=*)

cpdef bytes zeroed(bytes encoded)
