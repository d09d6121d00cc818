// What the recvmmsg/sendmmsg worker asks of the kernel: batched datagram calls, a two-fd poll,
// and non-blocking mode for its TUN queue. Included from CShims.h.
#ifndef WEFT_MMSG_H
#define WEFT_MMSG_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

static const int weft_msg_trunc = MSG_TRUNC;

/// glibc's `struct mmsghdr`, which it declares only under _GNU_SOURCE (see shims.c): same layout,
/// checked there with static asserts.
struct weft_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/// Sets or clears O_NONBLOCK; returns whether it was set before (0 or 1), or -errno.
static inline int weft_set_nonblocking(int fd, int nonblocking) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    int wanted = nonblocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (wanted != flags && fcntl(fd, F_SETFL, wanted) < 0) return -errno;
    return (flags & O_NONBLOCK) ? 1 : 0;
}

/// Points message `message` at one buffer and one address slot of `family` (AF_INET: a
/// sockaddr_in, AF_INET6: a sockaddr_in6). The iovec and the address must outlive every call that
/// uses the message.
static inline void weft_mmsg_prepare(struct weft_mmsghdr *message, struct iovec *vector, void *name, int family,
                                     void *bytes, size_t count) {
    socklen_t length = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    memset(message, 0, sizeof(*message));
    memset(name, 0, length);
    ((struct sockaddr *)name)->sa_family = (sa_family_t)family;
    vector->iov_base = bytes;
    vector->iov_len = count;
    message->msg_hdr.msg_name = name;
    message->msg_hdr.msg_namelen = length;
    message->msg_hdr.msg_iov = vector;
    message->msg_hdr.msg_iovlen = 1;
}

/// In shims.c (recvmmsg and sendmmsg need _GNU_SOURCE).
/// Receives up to `count` datagrams without waiting. The number received, or -errno (-EAGAIN when
/// none is queued). Resets each message's name length to `name_length` first (the size of its
/// sockaddr_in or sockaddr_in6): the kernel overwrites it.
int weft_recvmmsg(int fd, struct weft_mmsghdr *messages, unsigned count, unsigned name_length);

/// Sends `count` datagrams; blocking, so a full socket buffer slows the reader instead of dropping.
/// The number sent (the first `n` messages; the kernel stops at the first failure), or -errno when
/// the first one failed.
int weft_sendmmsg(int fd, struct weft_mmsghdr *messages, unsigned count);

/// Waits up to `milliseconds` for either fd to be readable. Bit 0 of the result: `first` is
/// readable (or in error); bit 1: `second`. 0 on timeout or EINTR, -errno on failure.
/// A `third` fd (the IPv6 underlay's socket, or -1 for none, which poll skips) sets bit 2.
static inline int weft_poll_either(int first, int second, int third, int milliseconds) {
    struct pollfd entries[3] = {
        { .fd = first, .events = POLLIN, .revents = 0 },
        { .fd = second, .events = POLLIN, .revents = 0 },
        { .fd = third, .events = POLLIN, .revents = 0 },
    };
    int result = poll(entries, 3, milliseconds);
    if (result < 0) return errno == EINTR ? 0 : -errno;
    return (entries[0].revents ? 1 : 0) | (entries[1].revents ? 2 : 0) | (entries[2].revents ? 4 : 0);
}


#endif
