# The C side of _hot.py (see its docstring): compiled modules cimport this; nothing compiles
# _hot.py itself.
from cpython cimport array as carray
from cpython.contextvars cimport get_value

cdef extern from *:
    """
    #include <time.h>
    #include <errno.h>
    #include <string.h>
    #include <sys/socket.h>
    #include <sys/epoll.h>
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

    /* bytes.translate(ZEROS), one pass with no table: every digit 1-9 becomes 0 */
    static PyObject *dbsight_zeroed(PyObject *text) {
        Py_ssize_t n = PyBytes_GET_SIZE(text), i;
        const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(text);
        PyObject *out = PyBytes_FromStringAndSize(NULL, n);
        unsigned char *d;
        if (out == NULL) return NULL;
        d = (unsigned char *)PyBytes_AS_STRING(out);
        for (i = 0; i < n; i++) {
            unsigned char c = s[i];
            d[i] = (unsigned char)(c - '1') < 9 ? '0' : c;
        }
        return out;
    }

    /* a protocol message of type t whose body is buf[start:j] + middle + buf[k:end], made
       in one piece (the caller has checked start <= j <= k <= end <= len(buf)) */
    static PyObject *dbsight_message_with(long t, PyObject *buf, Py_ssize_t start,
                                          Py_ssize_t j, PyObject *middle, Py_ssize_t k,
                                          Py_ssize_t end) {
        Py_ssize_t a = j - start, m = PyBytes_GET_SIZE(middle), b = end - k;
        Py_ssize_t length = 4 + a + m + b;
        const char *s = PyBytes_AS_STRING(buf);
        PyObject *out = PyBytes_FromStringAndSize(NULL, 1 + length);
        char *d;
        if (out == NULL) return NULL;
        d = PyBytes_AS_STRING(out);
        d[0] = (char)t;
        d[1] = (char)(length >> 24);
        d[2] = (char)(length >> 16);
        d[3] = (char)(length >> 8);
        d[4] = (char)length;
        memcpy(d + 5, s + start, (size_t)a);
        memcpy(d + 5 + a, PyBytes_AS_STRING(middle), (size_t)m);
        memcpy(d + 5 + a + m, s + k, (size_t)b);
        return out;
    }

    /* buf[start:end] for 0 <= start (the slice a Python bytes gives, without the slice
       object and the generic sequence call a Cython slice of a bytes goes through) */
    static PyObject *dbsight_sliced(PyObject *buf, Py_ssize_t start, Py_ssize_t end) {
        Py_ssize_t n = PyBytes_GET_SIZE(buf);
        if (end > n) end = n;
        if (start >= end) return PyBytes_FromStringAndSize(NULL, 0);
        if (start == 0 && end == n) {
            Py_INCREF(buf);
            return buf;
        }
        return PyBytes_FromStringAndSize(PyBytes_AS_STRING(buf) + start, end - start);
    }

    /* whether buf[start:end] holds a slash and a star in a row, a block comment's start
       (memchr for each slash: no slice, no method call, and none of memmem's set-up) */
    static int dbsight_commented(PyObject *buf, Py_ssize_t start, Py_ssize_t end) {
        Py_ssize_t n = PyBytes_GET_SIZE(buf);
        const char *s, *last, *p;
        if (end > n) end = n;
        if (start < 0) start = 0;
        if (end - start < 2) return 0;
        s = PyBytes_AS_STRING(buf) + start;
        last = PyBytes_AS_STRING(buf) + end - 1;  /* the last place a slash may begin one */
        while (s < last) {
            p = (const char *)memchr(s, '/', (size_t)(last - s));
            if (p == NULL) return 0;
            if (p[1] == '*') return 1;
            s = p + 1;
        }
        return 0;
    }

    /* whether a and b differ in their digits alone: the same length, and the same byte
       wherever either is not a digit (what their `zeroed` texts being equal says, without
       making them) */
    static int dbsight_same_shape(PyObject *a, PyObject *b) {
        Py_ssize_t n = PyBytes_GET_SIZE(a), i, j, stop;
        const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(a);
        const unsigned char *t = (const unsigned char *)PyBytes_AS_STRING(b);
        unsigned long long x, y;
        if (n != PyBytes_GET_SIZE(b)) return 0;
        for (i = 0; i < n; i += 8) {  /* eight bytes at a time: most are the same */
            stop = i + 8 <= n ? i + 8 : n;
            if (stop - i == 8) {
                memcpy(&x, s + i, 8);
                memcpy(&y, t + i, 8);
                if (x == y) continue;
            }
            for (j = i; j < stop; j++) {
                if (s[j] != t[j] && ((unsigned char)(s[j] - '0') > 9
                                     || (unsigned char)(t[j] - '0') > 9))
                    return 0;
            }
        }
        return 1;
    }

    /* buf[start:end].decode("utf-8", "surrogateescape") for a statement's or a portal's
       name, from a small cache of the ASCII names decoded last (a client sends the same
       few names again and again: one hash and one memcmp, no decoding, no allocation) */
    #define DBSIGHT_NAMES 64
    #define DBSIGHT_NAME_MAX 63
    static PyObject *dbsight_names[DBSIGHT_NAMES];
    static PyObject *dbsight_name_text(PyObject *buf, Py_ssize_t start, Py_ssize_t end) {
        Py_ssize_t n = PyBytes_GET_SIZE(buf), len, i;
        const unsigned char *s;
        unsigned int h = 2166136261u;
        PyObject *cached, *text;
        if (end > n) end = n;
        if (start < 0) start = 0;
        if (start >= end) return PyUnicode_FromStringAndSize(NULL, 0);
        len = end - start;
        s = (const unsigned char *)PyBytes_AS_STRING(buf) + start;
        if (len > DBSIGHT_NAME_MAX)
            return PyUnicode_DecodeUTF8((const char *)s, len, "surrogateescape");
        for (i = 0; i < len; i++) h = (h ^ s[i]) * 16777619u;
        h = (h ^ (h >> 16)) % DBSIGHT_NAMES;
        cached = dbsight_names[h];
        if (cached != NULL && PyUnicode_GET_LENGTH(cached) == len
                && memcmp(PyUnicode_1BYTE_DATA(cached), s, (size_t)len) == 0) {
            Py_INCREF(cached);
            return cached;
        }
        text = PyUnicode_DecodeUTF8((const char *)s, len, "surrogateescape");
        if (text != NULL && PyUnicode_IS_COMPACT_ASCII(text)) {
            Py_INCREF(text);
            Py_XSETREF(dbsight_names[h], text);
        }
        return text;
    }

    /* send(2) of a whole bytes object without blocking: how many bytes went (0: none could,
       the socket's buffer is full), -1 on an error (the transport finds it again) */
    static Py_ssize_t dbsight_send(int fd, PyObject *data) {
        ssize_t sent = send(fd, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data),
                            MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent >= 0) return (Py_ssize_t)sent;
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    }

    /* recv(2) of what a non-blocking socket holds, up to RECV_SIZE bytes, into one buffer
       of the module's (no allocation of that size per read): the bytes read; None when there
       are none yet; b"" at the end of the stream or on an error (the transport finds it
       again) */
    #define DBSIGHT_RECV_SIZE 262144
    static char dbsight_recv_buffer[DBSIGHT_RECV_SIZE];
    static PyObject *dbsight_recv(int fd) {
        ssize_t got = recv(fd, dbsight_recv_buffer, DBSIGHT_RECV_SIZE, MSG_DONTWAIT);
        if (got > 0) return PyBytes_FromStringAndSize(dbsight_recv_buffer, (Py_ssize_t)got);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            Py_RETURN_NONE;
        return PyBytes_FromStringAndSize(NULL, 0);
    }

    /* ``fd`` watched for reading by the epoll ``epfd``, which keeps ``receiver`` (borrowed:
       its poller holds it while it is watched) to give back when the socket is ready */
    static int dbsight_watch(PyObject *epoll, int epfd, int fd, PyObject *receiver) {
        struct epoll_event event;
        memset(&event, 0, sizeof event);
        event.events = EPOLLIN;
        event.data.ptr = receiver;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event) < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        return 0;
    }

    /* the receivers of the sockets the epoll ``epfd`` finds readable now, without waiting: at
       most 64, as a list (each the object `dbsight_watch` was given: no descriptor made into
       an int, no look-up by it) */
    static PyObject *dbsight_ready(PyObject *epoll, int epfd, PyObject *receivers) {
        struct epoll_event events[64];
        int n, i;
        PyObject *ready, *receiver;
        n = epoll_wait(epfd, events, 64, 0);
        if (n < 0) {
            if (errno != EINTR) return PyErr_SetFromErrno(PyExc_OSError);
            n = 0;
        }
        ready = PyList_New(n);
        if (ready == NULL) return NULL;
        for (i = 0; i < n; i++) {
            receiver = (PyObject *)events[i].data.ptr;
            Py_INCREF(receiver);
            PyList_SET_ITEM(ready, i, receiver);
        }
        return ready;
    }
    """
    bytes zeroed "dbsight_zeroed"(bytes text)
    bytes message_with "dbsight_message_with"(long t, bytes buf, Py_ssize_t start,
                                              Py_ssize_t j, bytes middle, Py_ssize_t k,
                                              Py_ssize_t end)
    bytes sliced "dbsight_sliced"(bytes buf, Py_ssize_t start, Py_ssize_t end)
    Py_ssize_t send "dbsight_send"(int fd, bytes data)
    object recv "dbsight_recv"(int fd)
    int watch "dbsight_watch"(object epoll, int epfd, int fd, object receiver) except -1
    list ready "dbsight_ready"(object epoll, int epfd, dict receivers)
    bint commented "dbsight_commented"(bytes buf, Py_ssize_t start, Py_ssize_t end)
    str name_text "dbsight_name_text"(bytes buf, Py_ssize_t start, Py_ssize_t end)
    bint same_shape "dbsight_same_shape"(bytes a, bytes b)
    double perf_counter "dbsight_monotonic"() nogil
    double monotonic "dbsight_monotonic"() nogil

cdef inline size_t address(object obj):
    return <size_t><void *>obj

cdef inline object context_value(object var):
    return get_value(var)

cdef inline int append_double(object values, double value) except -1:
    # (``values`` is an array("d"): its buffer grown as ``append`` grows it, then one store)
    cdef carray.array doubles = <carray.array>values
    cdef Py_ssize_t n = len(doubles)
    carray.resize_smart(doubles, n + 1)
    doubles.data.as_doubles[n] = value
    return 0
