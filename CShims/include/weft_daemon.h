// What weftd's shell asks of the kernel beyond plain POSIX calls Swift reaches directly.
#ifndef WEFT_DAEMON_H
#define WEFT_DAEMON_H

#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

// ioctl is variadic, which Swift cannot call. Returns the MTU of the named interface in the
// network namespace of `socket_fd`'s creator, or -1 with errno set.
static inline int weft_daemon_interface_mtu(int socket_fd, const char *name) {
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(socket_fd, SIOCGIFMTU, &request) < 0) return -1;
    return request.ifr_mtu;
}

#endif
