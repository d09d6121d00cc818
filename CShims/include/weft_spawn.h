// A long-lived child for tests (etcd) that dies with the thread that started it: PR_SET_PDEATHSIG,
// which swift-subprocess (how weftd runs its tools, in Sources/Spawn) does not offer.
#ifndef WEFT_SPAWN_H
#define WEFT_SPAWN_H

#include <sys/types.h>

/// fork and execve of `path` with `argv`/`envp` (NULL-terminated; `envp` NULL: this process's
/// environment) whose child gets `death_signal` when the calling thread ends (PR_SET_PDEATHSIG:
/// the thread, not the process, so the caller must be a thread that outlives the child) or is
/// killed with its process. stdin is /dev/null, stdout and stderr `output_fd`; every other
/// descriptor is closed at the exec. The child's pid, to be reaped with waitpid, or -errno (an
/// exec that failed included, the child then reaped).
pid_t weft_spawn_tied(const char *path, char *const argv[], char *const envp[], int output_fd, int death_signal);

#endif
