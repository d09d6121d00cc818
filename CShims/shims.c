// The few wrappers whose libc declarations glibc hides behind _GNU_SOURCE. The headers in
// include/ must not define _GNU_SOURCE: Swift builds its Glibc module without it, and a module
// that sees the same system headers with other feature macros gets conflicting definitions
// (e.g. fd_set's fds_bits vs __fds_bits) that break the build at random. So these are defined
// here, in a translation unit of their own, and declared in the headers with Weft's own types.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "CShims.h"

_Static_assert(sizeof(struct weft_mmsghdr) == sizeof(struct mmsghdr), "weft_mmsghdr must match struct mmsghdr");
_Static_assert(offsetof(struct weft_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len),
               "weft_mmsghdr must match struct mmsghdr");

int weft_enter_network_namespace(int fd) {
    return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
}

int weft_pipe(int ends[2]) {
    return pipe2(ends, O_CLOEXEC) < 0 ? -errno : 0;
}

int weft_recvmmsg(int fd, struct weft_mmsghdr *messages, unsigned count) {
    for (unsigned index = 0; index < count; index++) {
        messages[index].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
    }
    int received;
    do {
        received = recvmmsg(fd, (struct mmsghdr *)messages, count, MSG_DONTWAIT, NULL);
    } while (received < 0 && errno == EINTR);
    return received < 0 ? -errno : received;
}

int weft_sendmmsg(int fd, struct weft_mmsghdr *messages, unsigned count) {
    int sent;
    do {
        sent = sendmmsg(fd, (struct mmsghdr *)messages, count, 0);
    } while (sent < 0 && errno == EINTR);
    return sent < 0 ? -errno : sent;
}
