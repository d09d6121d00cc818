// The few wrappers whose libc declarations glibc hides behind _GNU_SOURCE. The headers in
// include/ must not define _GNU_SOURCE: Swift builds its Glibc module without it, and a module
// that sees the same system headers with other feature macros gets conflicting definitions
// (e.g. fd_set's fds_bits vs __fds_bits) that break the build at random. So these are defined
// here, in a translation unit of their own, and declared in the headers with Weft's own types.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
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

pid_t weft_spawn(const char *path, char *const argv[], char *const envp[], const char *input_path,
                 int *output_fd, int *errors_fd) {
    int output[2], errors[2];
    if (pipe2(output, O_CLOEXEC) < 0) return -errno;
    if (pipe2(errors, O_CLOEXEC) < 0) { int error = errno; close(output[0]); close(output[1]); return -error; }
    // weftd blocks the signals it waits for (SIGTERM, SIGINT, ...) and the child would inherit
    // that mask: give it an empty mask and every signal's default action, as a shell would.
    posix_spawnattr_t attributes;
    int error = posix_spawnattr_init(&attributes);
    if (error) { close(output[0]); close(output[1]); close(errors[0]); close(errors[1]); return -error; }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_t actions;
    error = posix_spawn_file_actions_init(&actions);
    if (error == 0) {
        // dup2 clears O_CLOEXEC on the child's 1 and 2; closefrom(3) drops whatever weftd holds
        // without O_CLOEXEC (sockets of libraries, inherited descriptors), so nft never keeps one.
        if (!error) error = posix_spawn_file_actions_addopen(&actions, 0, input_path ? input_path : "/dev/null", O_RDONLY, 0);
        if (!error) error = posix_spawn_file_actions_adddup2(&actions, output[1], 1);
        if (!error) error = posix_spawn_file_actions_adddup2(&actions, errors[1], 2);
        if (!error) error = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
        pid_t pid = -1;
        if (!error) error = posix_spawn(&pid, path, &actions, &attributes, argv, envp);
        posix_spawn_file_actions_destroy(&actions);
        if (!error) {
            close(output[1]);
            close(errors[1]);
            *output_fd = output[0];
            *errors_fd = errors[0];
            posix_spawnattr_destroy(&attributes);
            return pid;
        }
    }
    posix_spawnattr_destroy(&attributes);
    close(output[0]); close(output[1]); close(errors[0]); close(errors[1]);
    return -error;
}
