# C types for _writes.py when Cython compiles it (see dbsight._compiled): `may_write` as a C
# call for the compiled exchange (a client's BEGIN and first write ask it every transaction).
# The .py is the source; this file only types it.

cdef dict _anywhere
cdef Py_ssize_t _ANYWHERE_MAX

cpdef bint may_write(object info) except -1
