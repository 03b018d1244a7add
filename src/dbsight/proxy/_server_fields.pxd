# C types for _server_fields.py when Cython compiles it (see dbsight._compiled): a server
# connection's per-transaction fields as C fields. The .py is the source; this file only
# types it.

from dbsight.proxy._link_relay cimport LinkRelay, Sender

cdef class ServerFields:
    cdef public object transport
    cdef public LinkRelay link
    cdef public object settings
    cdef public object prepared
    cdef public double created_at
    cdef public double last_used_at
    cdef public bint broken
    cdef public bint closed
    cdef public object parked_by
    cdef public Sender sender
