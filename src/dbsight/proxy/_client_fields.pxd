# C types for _client_fields.py when Cython compiles it (see dbsight._compiled): a proxied
# client's fields read on every transaction as C fields. The .py is the source; this file only
# types it.

cdef class RoutingFields:
    cdef public object begin

cdef class SettingsFields:
    cdef public object wanted

cdef class SessionFields:
    cdef public bytes _client_buffer
    cdef public bint _shutting_down
