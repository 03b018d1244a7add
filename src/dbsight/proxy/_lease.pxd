# C types for _lease.py when Cython compiles it (see dbsight._compiled): `Lease` as an
# extension type (the relays reach its fields and transaction mode's take and give-back in C).
# The .py is the source; this file only types it.
import cython

from dbsight.proxy._client_fields cimport RoutingFields, SettingsFields
from dbsight.proxy._link_relay cimport LinkRelay
from dbsight.proxy._pool cimport BackendPool
from dbsight.proxy._server_fields cimport ServerFields
from dbsight.proxy._session_info cimport SessionInfo

cdef class Lease:
    cdef public object _holder
    cdef public double _timeout
    cdef public object _topology
    cdef public RoutingFields _routing
    cdef public object _statements
    cdef public SessionInfo _info
    cdef public object _background
    cdef public bint _cached
    cdef public bint sticky
    cdef public object own
    cdef public bint pinned
    cdef public set custom
    cdef public BackendPool pool
    cdef public dict replicas
    cdef public object conn
    cdef public object parked
    cdef public object target
    cdef public object server_transport
    cdef public bint begun
    cdef public object retry
    cdef public object waiting
    cdef public bint paused
    cdef public object _client_transport
    cdef public object _client_reading
    cdef public LinkRelay _client_link
    cdef public object _on_server_data
    cdef public object _on_server_lost
    cdef public object _unpark_here
    cdef public object _on_client_data
    cdef public object _ended
    cdef public object _came_here
    cdef public SettingsFields _settings

    @cython.locals(conn=ServerFields, settings=SettingsFields)
    cpdef object take_primary(self)

    @cython.locals(conn=ServerFields)
    cpdef give_back_clean(self, double now=*)

    @cython.locals(conn=ServerFields)
    cpdef _unpark(self)

    @cython.locals(pool=BackendPool)
    cpdef attach(self, ServerFields conn, object target)

    cpdef detach(self, ServerFields conn)

    cpdef wait_for(self, object target)

    cpdef _go_on(self)
