// The few wrappers whose libc declarations glibc hides behind _GNU_SOURCE. The headers in
// include/ must not define _GNU_SOURCE: Swift builds its Glibc module without it, and a module
// that sees the same system headers with other feature macros gets conflicting definitions
// (e.g. fd_set's fds_bits vs __fds_bits) that break the build at random. So these are defined
// here, in a translation unit of their own, and declared in the headers with Weft's own types.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/close_range.h>
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

int weft_recvmmsg(int fd, struct weft_mmsghdr *messages, unsigned count, unsigned name_length) {
    for (unsigned index = 0; index < count; index++) {
        messages[index].msg_hdr.msg_namelen = name_length;
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

pid_t weft_spawn_tied(const char *path, char *const argv[], char *const envp[], int output_fd, int death_signal) {
    // The child reports a failed exec through this pipe; a successful one closes it (O_CLOEXEC).
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) return -errno;
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) { int error = errno; close(report[0]); close(report[1]); return -error; }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        // Between fork and exec in a threaded process: async-signal-safe calls only.
        int error = 0;
        if (prctl(PR_SET_PDEATHSIG, death_signal) < 0) error = errno;
        // The process died before the prctl took hold: no signal will come.
        if (!error && getppid() != parent) _exit(127);
        sigset_t none;
        sigemptyset(&none);
        if (!error) error = sigprocmask(SIG_SETMASK, &none, NULL) < 0 ? errno : 0;
        for (int signal = 1; !error && signal < NSIG; signal++) {
            if (signal != SIGKILL && signal != SIGSTOP) (void)sigaction(signal, &(struct sigaction){.sa_handler = SIG_DFL}, NULL);
        }
        if (!error && dup2(null_fd, 0) < 0) error = errno;
        if (!error && dup2(output_fd, 1) < 0) error = errno;
        if (!error && dup2(output_fd, 2) < 0) error = errno;
        // Not closed here: the report pipe must stay open until the exec, which closes them all.
        if (!error && close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) error = errno;
        if (!error) {
            execve(path, argv, envp ? envp : environ);
            error = errno;
        }
        (void)!write(report[1], &error, sizeof error);
        _exit(127);
    }
    int error = pid < 0 ? errno : 0;
    close(null_fd);
    close(report[1]);
    if (pid > 0) {
        int failure = 0;
        ssize_t count;
        do {
            count = read(report[0], &failure, sizeof failure);
        } while (count < 0 && errno == EINTR);
        if (count == sizeof failure) {
            error = failure;
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        }
    }
    close(report[0]);
    return error ? -error : pid;
}
