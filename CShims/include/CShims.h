// The complete list of what Weft asks of C: every function here is a small static inline wrapper
// with the weft_ prefix, or a system header Swift imports directly.
#ifndef WEFT_CSHIMS_H
#define WEFT_CSHIMS_H

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <liburing.h>
#include <pcap/pcap.h>

static inline int weft_errno(void) { return errno; }

// MARK: TUN

// Debian's linux-libc-dev may predate the USO flags (kernel 6.2).
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

static const unsigned int weft_tun_offload_csum = TUN_F_CSUM;
static const unsigned int weft_tun_offload_tso4 = TUN_F_TSO4;
static const unsigned int weft_tun_offload_tso6 = TUN_F_TSO6;
static const unsigned int weft_tun_offload_uso4 = TUN_F_USO4;
static const unsigned int weft_tun_offload_uso6 = TUN_F_USO6;

/// Opens one queue of the multi-queue TUN `name` (created by the first call). Returns the fd or -errno.
/// Every queue of a device must be opened with the same flags, so `vnet_header` is per device.
static inline int weft_tun_open_queue(const char *name, int vnet_header) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    request.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE | (vnet_header ? IFF_VNET_HDR : 0);
    if (ioctl(fd, TUNSETIFF, &request) < 0) { int error = errno; close(fd); return -error; }
    return fd;
}

static inline int weft_tun_set_vnet_header_size(int fd, int size) {
    return ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 ? -errno : 0;
}

static inline int weft_tun_set_offload(int fd, unsigned int offloads) {
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads) < 0 ? -errno : 0;
}

// MARK: Sockets

static inline int weft_setsockopt_int(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof(value)) < 0 ? -errno : 0;
}

static inline int weft_getsockopt_int(int fd, int level, int name, int *value) {
    socklen_t length = sizeof(*value);
    return getsockopt(fd, level, name, value, &length) < 0 ? -errno : 0;
}

/// SO_RCVBUFFORCE / SO_SNDBUFFORCE need CAP_NET_ADMIN; without it the capped SO_RCVBUF / SO_SNDBUF.
static inline int weft_socket_set_buffer(int fd, int receive, int bytes) {
    int forced = receive ? SO_RCVBUFFORCE : SO_SNDBUFFORCE;
    if (setsockopt(fd, SOL_SOCKET, forced, &bytes, sizeof(bytes)) == 0) return 0;
    int plain = receive ? SO_RCVBUF : SO_SNDBUF;
    return setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof(bytes)) < 0 ? -errno : 1;
}

static inline int weft_udp_socket(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

/// Addresses and ports in network order.
static inline int weft_bind_ipv4(int fd, uint32_t address, uint16_t port) {
    struct sockaddr_in socket_address;
    memset(&socket_address, 0, sizeof(socket_address));
    socket_address.sin_family = AF_INET;
    socket_address.sin_addr.s_addr = address;
    socket_address.sin_port = port;
    return bind(fd, (struct sockaddr *)&socket_address, sizeof(socket_address)) < 0 ? -errno : 0;
}

/// An IPv6 UDP socket that carries IPv6 only (IPV6_V6ONLY): the IPv4 underlay has its own.
static inline int weft_udp6_socket(void) {
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

/// `address`: 16 bytes, network order; `port` network order.
static inline int weft_bind_ipv6(int fd, const void *address, uint16_t port) {
    struct sockaddr_in6 socket_address;
    memset(&socket_address, 0, sizeof(socket_address));
    socket_address.sin6_family = AF_INET6;
    memcpy(&socket_address.sin6_addr, address, 16);
    socket_address.sin6_port = port;
    return bind(fd, (struct sockaddr *)&socket_address, sizeof(socket_address)) < 0 ? -errno : 0;
}

static inline long weft_sendto_ipv6(int fd, const void *bytes, size_t count, const void *address, uint16_t port) {
    struct sockaddr_in6 socket_address;
    memset(&socket_address, 0, sizeof(socket_address));
    socket_address.sin6_family = AF_INET6;
    memcpy(&socket_address.sin6_addr, address, 16);
    socket_address.sin6_port = port;
    ssize_t sent = sendto(fd, bytes, count, 0, (struct sockaddr *)&socket_address, sizeof(socket_address));
    return sent < 0 ? -errno : sent;
}

/// The bound port, network order; or -errno. Either family: the port sits at the same offset.
static inline int weft_local_port(int fd) {
    struct sockaddr_in socket_address;
    socklen_t length = sizeof(socket_address);
    if (getsockname(fd, (struct sockaddr *)&socket_address, &length) < 0) return -errno;
    return socket_address.sin_port;
}

static inline long weft_sendto_ipv4(int fd, const void *bytes, size_t count, uint32_t address, uint16_t port) {
    struct sockaddr_in socket_address;
    memset(&socket_address, 0, sizeof(socket_address));
    socket_address.sin_family = AF_INET;
    socket_address.sin_addr.s_addr = address;
    socket_address.sin_port = port;
    ssize_t sent = sendto(fd, bytes, count, 0, (struct sockaddr *)&socket_address, sizeof(socket_address));
    return sent < 0 ? -errno : sent;
}

/// Receives one datagram; the sender's address and port (network order) land in the out-parameters.
static inline long weft_recvfrom_ipv4(int fd, void *bytes, size_t count, int flags, uint32_t *address, uint16_t *port) {
    struct sockaddr_in socket_address;
    socklen_t length = sizeof(socket_address);
    ssize_t received = recvfrom(fd, bytes, count, flags, (struct sockaddr *)&socket_address, &length);
    if (received < 0) return -errno;
    *address = socket_address.sin_addr.s_addr;
    *port = socket_address.sin_port;
    return received;
}

static inline long weft_read(int fd, void *bytes, size_t count) {
    ssize_t result = read(fd, bytes, count);
    return result < 0 ? -errno : result;
}

static inline long weft_write(int fd, const void *bytes, size_t count) {
    ssize_t result = write(fd, bytes, count);
    return result < 0 ? -errno : result;
}

/// 1 when readable within `milliseconds`, 0 on timeout, -errno on failure.
static inline int weft_poll_readable(int fd, int milliseconds) {
    struct pollfd entry = { .fd = fd, .events = POLLIN, .revents = 0 };
    int result = poll(&entry, 1, milliseconds);
    return result < 0 ? -errno : result;
}

/// Moves the calling thread into the network namespace behind `fd` (a /var/run/netns file). 0 or -errno.
/// In shims.c: setns needs _GNU_SOURCE, which this header must not define (see shims.c).
int weft_enter_network_namespace(int fd);

/// pipe2(O_CLOEXEC), in shims.c for the same reason. 0 or -errno.
int weft_pipe(int ends[2]);

// MARK: Netlink

static inline int weft_netlink_route_socket(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    return fd < 0 ? -errno : fd;
}

/// Sends one request to the kernel (pid 0).
static inline long weft_netlink_send(int fd, const void *bytes, size_t count) {
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    ssize_t sent = sendto(fd, bytes, count, 0, (struct sockaddr *)&kernel, sizeof(kernel));
    return sent < 0 ? -errno : sent;
}

// MARK: io_uring

static const unsigned int weft_setup_single_issuer = IORING_SETUP_SINGLE_ISSUER;
static const unsigned int weft_setup_defer_taskrun = IORING_SETUP_DEFER_TASKRUN;
static const unsigned int weft_setup_coop_taskrun = IORING_SETUP_COOP_TASKRUN;
static const unsigned int weft_cqe_more = IORING_CQE_F_MORE;
static const unsigned int weft_cqe_buffer = IORING_CQE_F_BUFFER;
static const unsigned int weft_cqe_buffer_shift = IORING_CQE_BUFFER_SHIFT;

/// Returns 0 or -errno; `ring` is caller-owned storage.
static inline int weft_ring_init(struct io_uring *ring, unsigned entries, unsigned flags) {
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    params.flags = flags;
    return io_uring_queue_init_params(entries, ring, &params);
}

static inline void weft_ring_exit(struct io_uring *ring) { io_uring_queue_exit(ring); }

static inline struct io_uring_sqe *weft_get_sqe(struct io_uring *ring) { return io_uring_get_sqe(ring); }

static inline int weft_submit(struct io_uring *ring) { return io_uring_submit(ring); }

/// Submits and waits for `count` completions or `milliseconds` (negative: no limit). -ETIME on timeout.
static inline int weft_submit_and_wait(struct io_uring *ring, unsigned count, int milliseconds) {
    if (milliseconds < 0) return io_uring_submit_and_wait(ring, count);
    struct __kernel_timespec timeout = { .tv_sec = milliseconds / 1000, .tv_nsec = (milliseconds % 1000) * 1000000L };
    struct io_uring_cqe *first = NULL;
    return io_uring_submit_and_wait_timeout(ring, &first, count, &timeout, NULL);
}

static inline unsigned weft_peek_batch(struct io_uring *ring, struct io_uring_cqe **cqes, unsigned count) {
    return io_uring_peek_batch_cqe(ring, cqes, count);
}

static inline void weft_cq_advance(struct io_uring *ring, unsigned count) { io_uring_cq_advance(ring, count); }

static inline void weft_sqe_set_user_data(struct io_uring_sqe *sqe, uint64_t value) { io_uring_sqe_set_data64(sqe, value); }

static inline void weft_prep_read(struct io_uring_sqe *sqe, int fd, void *bytes, unsigned count) {
    io_uring_prep_read(sqe, fd, bytes, count, 0);
}

static inline void weft_prep_write(struct io_uring_sqe *sqe, int fd, const void *bytes, unsigned count) {
    io_uring_prep_write(sqe, fd, bytes, count, 0);
}

/// One write gathered from `count` iovecs (a coalesced super-packet's header and payload pieces).
static inline void weft_prep_writev(struct io_uring_sqe *sqe, int fd, const struct iovec *vectors, unsigned count) {
    io_uring_prep_writev(sqe, fd, vectors, count, 0);
}

static inline void weft_prep_sendmsg(struct io_uring_sqe *sqe, int fd, const struct msghdr *message, unsigned flags) {
    io_uring_prep_sendmsg(sqe, fd, message, flags);
}

/// Multishot recvmsg into buffers picked from group `group`; `message` only gives name/control lengths
/// and must outlive the request.
static inline void weft_prep_recvmsg_multishot(struct io_uring_sqe *sqe, int fd, struct msghdr *message, uint16_t group) {
    io_uring_prep_recvmsg_multishot(sqe, fd, message, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = group;
}

/// IORING_OP_READ_MULTISHOT (49, kernel 6.7) by hand: liburing 2.3 has neither the opcode nor a helper.
/// The kernel demands len 0, addr 0, off 0 and a buffer group.
static inline void weft_prep_read_multishot(struct io_uring_sqe *sqe, int fd, uint16_t group) {
    io_uring_prep_rw(IORING_OP_NOP, sqe, fd, NULL, 0, 0);
    sqe->opcode = 49;
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = group;
}

/// Registers `ring_memory` (page-aligned, `entries` × struct io_uring_buf) as buffer group `group`.
static inline int weft_register_buffer_ring(struct io_uring *ring, void *ring_memory, unsigned entries, uint16_t group) {
    struct io_uring_buf_reg registration;
    memset(&registration, 0, sizeof(registration));
    registration.ring_addr = (unsigned long)ring_memory;
    registration.ring_entries = entries;
    registration.bgid = group;
    return io_uring_register_buf_ring(ring, &registration, 0);
}

static inline int weft_unregister_buffer_ring(struct io_uring *ring, uint16_t group) {
    return io_uring_unregister_buf_ring(ring, group);
}

static inline size_t weft_buffer_ring_entry_size(void) { return sizeof(struct io_uring_buf); }

static inline void weft_buffer_ring_init(void *ring_memory) { io_uring_buf_ring_init((struct io_uring_buf_ring *)ring_memory); }

/// Stages buffer `id` at slot tail + `offset`; visible to the kernel only after weft_buffer_ring_advance.
static inline void weft_buffer_ring_add(void *ring_memory, void *bytes, unsigned count, uint16_t id, unsigned entries, int offset) {
    io_uring_buf_ring_add((struct io_uring_buf_ring *)ring_memory, bytes, count, id, io_uring_buf_ring_mask(entries), offset);
}

static inline void weft_buffer_ring_advance(void *ring_memory, int count) {
    io_uring_buf_ring_advance((struct io_uring_buf_ring *)ring_memory, count);
}

/// Parses a multishot recvmsg buffer: payload offset and length; the sender (network order). -1 if malformed.
static inline int weft_recvmsg_parse(void *buffer, int length, struct msghdr *message, int *payload_offset, unsigned *payload_length, uint32_t *address, uint16_t *port) {
    struct io_uring_recvmsg_out *out = io_uring_recvmsg_validate(buffer, length, message);
    if (out == NULL) return -1;
    unsigned char *payload = (unsigned char *)io_uring_recvmsg_payload(out, message);
    *payload_offset = (int)(payload - (unsigned char *)buffer);
    *payload_length = io_uring_recvmsg_payload_length(out, length, message);
    if (out->namelen >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in *name = (struct sockaddr_in *)io_uring_recvmsg_name(out);
        *address = name->sin_addr.s_addr;
        *port = name->sin_port;
    } else {
        *address = 0; *port = 0;
    }
    return (out->flags & MSG_TRUNC) ? 1 : 0;
}

/// `weft_recvmsg_parse` for the IPv6 socket: the sender's 16 address bytes land at `address`.
static inline int weft_recvmsg_parse6(void *buffer, int length, struct msghdr *message, int *payload_offset, unsigned *payload_length, void *address) {
    struct io_uring_recvmsg_out *out = io_uring_recvmsg_validate(buffer, length, message);
    if (out == NULL) return -1;
    unsigned char *payload = (unsigned char *)io_uring_recvmsg_payload(out, message);
    *payload_offset = (int)(payload - (unsigned char *)buffer);
    *payload_length = io_uring_recvmsg_payload_length(out, length, message);
    if (out->namelen >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 *name = (struct sockaddr_in6 *)io_uring_recvmsg_name(out);
        memcpy(address, &name->sin6_addr, 16);
    } else {
        memset(address, 0, 16);
    }
    return (out->flags & MSG_TRUNC) ? 1 : 0;
}

#endif
#include "weft_mmsg.h"
#include "weft_uring.h"
#include "weft_daemon.h"
#include "weft_netlink.h"
#include "weft_offload.h"
#include "weft_spawn.h"
