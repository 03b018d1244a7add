# C types for _lean.py when Cython compiles it (see dbsight._compiled): `LeanEvent` as an
# extension type whose timings are C doubles, which the sinks' compiled loops read directly
# (they cimport it). The .py is the source; this file only types it.
import cython

cdef class LeanEvent:
    cdef public object system
    cdef public object fingerprint
    cdef public double duration_s
    cdef public object rows
    cdef public double started_at
    cdef public object route
    cdef public object database
    cdef public object _held
    cdef public object _function
    cdef public object _info
    cdef public object _settings
    cdef public object _full

@cython.locals(i=Py_ssize_t, duration=double, started_at=double, started=double,
               clock=double)
cpdef lean_events(list batch, dict infos, object info_of, object app, bint keep_params)

@cython.locals(event=LeanEvent)
cdef LeanEvent new_event(object system, object fingerprint, double duration, object rows,
                         double started_at, object route, object database, object held,
                         object function, object info, object settings)

cpdef str lean_text(object sql)
