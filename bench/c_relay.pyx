# cython: language_level=3
"""The relaying of ``bench/bare_c_relay.py``: every relayed socket in one epoll of its own,
each ready socket read into one buffer and written to its peer, in C — no Python object
made or called per chunk. The event loop watches that epoll (``fileno``) and calls
``readable`` when it has something, as dbsight's receivers are woken (`dbsight.proxy._receiver`).

A peer that does not take a whole chunk at once (its socket buffer full) is waited for with
``poll`` until it does: the relay stops for that long, which a bench's small answers never
make it do, and which a proxy could not afford. Written for the bench, not shipped.
"""

from libc.errno cimport EAGAIN, EINTR, errno


cdef extern from "sys/epoll.h" nogil:
    ctypedef union epoll_data_t:
        int fd
    struct epoll_event:
        unsigned int events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    int EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLLIN, EPOLL_CLOEXEC

cdef extern from "sys/socket.h" nogil:
    ssize_t recv(int fd, void *buf, size_t n, int flags)
    ssize_t send(int fd, const void *buf, size_t n, int flags)
    int MSG_NOSIGNAL

cdef extern from "poll.h" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd *fds, unsigned long nfds, int timeout)
    short POLLOUT

cdef extern from "unistd.h" nogil:
    int close(int fd)

cdef enum:
    MAX_FD = 65536
    BUFFER_SIZE = 262144
    MAX_EVENTS = 64

cdef int epfd = epoll_create1(EPOLL_CLOEXEC)
cdef int peer[MAX_FD]  # a relayed socket's peer, by descriptor (-1: none)
cdef char buf[BUFFER_SIZE]

for _fd in range(MAX_FD):
    peer[_fd] = -1


def fileno() -> int:
    """The epoll's descriptor, for the event loop to watch."""
    return epfd


def add_pair(int a, int b) -> None:
    """Relay the non-blocking sockets ``a`` and ``b`` to each other (the relay owns them)."""
    if a < 0 or b < 0 or a >= MAX_FD or b >= MAX_FD:
        raise ValueError("descriptor out of range")
    cdef epoll_event ev
    peer[a] = b
    peer[b] = a
    ev.events = EPOLLIN
    ev.data.fd = a
    epoll_ctl(epfd, EPOLL_CTL_ADD, a, &ev)
    ev.data.fd = b
    epoll_ctl(epfd, EPOLL_CTL_ADD, b, &ev)


cdef void _end(int fd) noexcept nogil:
    """Close ``fd`` and its peer."""
    cdef int other = peer[fd]
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL)
    peer[fd] = -1
    close(fd)
    if other >= 0:
        epoll_ctl(epfd, EPOLL_CTL_DEL, other, NULL)
        peer[other] = -1
        close(other)


cdef bint _send_all(int fd, const char *data, ssize_t size) noexcept nogil:
    """All of ``data`` to ``fd``, waiting while its buffer is full; False on an error."""
    cdef ssize_t sent
    cdef pollfd wait
    while size > 0:
        sent = send(fd, data, size, MSG_NOSIGNAL)
        if sent > 0:
            data += sent
            size -= sent
        elif sent < 0 and errno == EAGAIN:
            wait.fd = fd
            wait.events = POLLOUT
            poll(&wait, 1, -1)
        elif sent < 0 and errno == EINTR:
            continue
        else:
            return False
    return True


def readable() -> None:
    """The loop's call: each ready socket read once, its bytes written to its peer."""
    cdef epoll_event events[MAX_EVENTS]
    cdef int n = epoll_wait(epfd, events, MAX_EVENTS, 0)
    cdef int i, fd, other
    cdef ssize_t got
    for i in range(n):
        fd = events[i].data.fd
        other = peer[fd]
        if other < 0:  # (ended by an earlier one this time)
            continue
        got = recv(fd, buf, BUFFER_SIZE, 0)
        if got > 0:
            if not _send_all(other, buf, got):
                _end(fd)
        elif got == 0 or (errno != EAGAIN and errno != EINTR):
            _end(fd)
