# C types for _plain_answer.py when Cython compiles it (see dbsight._compiled); the .py is
# the source, this file only types it.
import cython

cdef long _QUERY, _PARSE, _BIND, _DESCRIBE, _SYNC, _EXECUTE

cdef inline Py_ssize_t _length(bytes buf, Py_ssize_t i)

@cython.locals(n=Py_ssize_t, count=Py_ssize_t, i=Py_ssize_t, k=Py_ssize_t, rows=Py_ssize_t,
               tag=Py_ssize_t, tag_end=Py_ssize_t, e=Py_ssize_t, length=Py_ssize_t,
               t=cython.uchar, kind=long, at=Py_ssize_t, entry=tuple)
cpdef object plain_answer(bytes buf, object pending)
