// rtnetlink wrappers beyond the request/ACK pair in CShims.h: dumps, truncation, extended ACKs.
#ifndef WEFT_NETLINK_H
#define WEFT_NETLINK_H

#include <errno.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

// Compound macros Swift does not import.
static const unsigned short weft_nlm_f_dump = NLM_F_DUMP;
static const unsigned short weft_nlm_f_multi = NLM_F_MULTI;
static const unsigned short weft_nlm_f_dump_intr = NLM_F_DUMP_INTR;
static const unsigned short weft_nlm_f_ack_tlvs = NLM_F_ACK_TLVS;
static const unsigned short weft_nlm_f_capped = NLM_F_CAPPED;

/// Receives one datagram of replies. MSG_TRUNC makes the kernel report the datagram's real size, so
/// a reply larger than `count` is an error (-EMSGSIZE) instead of silently cut messages.
static inline long weft_netlink_receive(int fd, void *bytes, size_t count) {
    ssize_t received;
    do { received = recv(fd, bytes, count, MSG_TRUNC); } while (received < 0 && errno == EINTR);
    if (received < 0) return -errno;
    return (size_t)received > count ? -EMSGSIZE : received;
}

/// Asks for extended ACKs (the kernel's reason as text) with the echoed request capped to its header.
/// Best effort: kernels before 4.12 lack them, and the errno alone still names the failure.
static inline void weft_netlink_request_extended_ack(int fd) {
    int on = 1;
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof(on));
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof(on));
}

#endif
