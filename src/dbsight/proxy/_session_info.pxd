# C types for _session_info.py when Cython compiles it (see dbsight._compiled): `SessionInfo` as
# an extension type, its fields C fields (the relay and the lease set its state in C). The .py
# is the source; this file only types it.

cdef class SessionInfo:
    cdef public object application_name
    cdef public object client
    cdef public object connected_at
    cdef public object database
    cdef public object exchange
    cdef public object state
    cdef public object user
