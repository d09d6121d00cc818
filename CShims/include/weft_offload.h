// UDP GSO / GRO control messages for the uring worker's offload path (Sources/Engine/UringOffload.swift).
#ifndef WEFT_OFFLOAD_H
#define WEFT_OFFLOAD_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <liburing.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/// Bytes of control buffer one UDP_SEGMENT or UDP_GRO cmsg (a 16-bit or int value) needs.
static const unsigned int weft_segment_control_size = CMSG_SPACE(sizeof(uint16_t));
static const unsigned int weft_gro_control_size = CMSG_SPACE(sizeof(int));

/// Writes a UDP_SEGMENT cmsg carrying `segment_size` into `control` (weft_segment_control_size bytes).
static inline void weft_segment_control(void *control, uint16_t segment_size) {
    memset(control, 0, CMSG_SPACE(sizeof(uint16_t)));
    struct cmsghdr *header = (struct cmsghdr *)control;
    header->cmsg_level = SOL_UDP;
    header->cmsg_type = UDP_SEGMENT;
    header->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(header), &segment_size, sizeof(segment_size));
}

/// The gso_size of a UDP_GRO receive from a multishot recvmsg buffer, or 0 when the kernel
/// attached none (a single datagram).
static inline int weft_recvmsg_gro_size(void *buffer, int length, struct msghdr *message) {
    struct io_uring_recvmsg_out *out = io_uring_recvmsg_validate(buffer, length, message);
    if (out == NULL) return 0;
    for (struct cmsghdr *header = io_uring_recvmsg_cmsg_firsthdr(out, message); header != NULL;
         header = io_uring_recvmsg_cmsg_nexthdr(out, message, header)) {
        if (header->cmsg_level == SOL_UDP && header->cmsg_type == UDP_GRO && header->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int size;
            memcpy(&size, CMSG_DATA(header), sizeof(size));
            return size;
        }
    }
    return 0;
}

/// 0 when the kernel knows UDP_SEGMENT (Linux 4.18), else -errno (ENOPROTOOPT). Sets the socket
/// default to 0 (no segmentation), so it changes nothing: each send carries its own size.
static inline int weft_probe_segmentation(int fd) {
    int none = 0;
    return setsockopt(fd, SOL_UDP, UDP_SEGMENT, &none, sizeof(none)) < 0 ? -errno : 0;
}

/// The path MTU the kernel knows for `address` (network order), including what ICMP
/// fragmentation-needed from a router taught it: `fd` (a UDP socket) is connected there, which
/// looks the route up afresh, IP_MTU read, and the socket disconnected. -errno on failure.
static inline int weft_path_mtu(int fd, uint32_t address, uint16_t port) {
    struct sockaddr_in peer;
    memset(&peer, 0, sizeof(peer));
    peer.sin_family = AF_INET;
    peer.sin_addr.s_addr = address;
    peer.sin_port = port;
    if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0) return -errno;
    int mtu = 0;
    socklen_t length = sizeof(mtu);
    int result = getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &length) < 0 ? -errno : mtu;
    struct sockaddr unspecified;
    memset(&unspecified, 0, sizeof(unspecified));
    unspecified.sa_family = AF_UNSPEC;
    connect(fd, &unspecified, sizeof(unspecified));
    return result;
}

/// IP_MTU_DISCOVER: IP_PMTUDISC_DO on the sockets the datagrams leave by, so a send larger than
/// the path MTU the kernel knows fails with EMSGSIZE (our cue) instead of being fragmented
/// unseen; IP_PMTUDISC_OMIT on the one that sends what must go out anyway, without DF.
static const int weft_pmtu_do = IP_PMTUDISC_DO;
static const int weft_pmtu_omit = IP_PMTUDISC_OMIT;

static inline int weft_set_path_mtu_discovery(int fd, int mode) {
    return setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &mode, sizeof(mode)) < 0 ? -errno : 0;
}

#endif
