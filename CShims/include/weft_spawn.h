// Running a tool (nft, a CNI delegate) as a child process, with nothing of weftd's leaking into it
// and nothing of it left open in weftd.
#ifndef WEFT_SPAWN_H
#define WEFT_SPAWN_H

#include <sys/types.h>

/// posix_spawn of `path` with `argv`/`envp` (NULL-terminated). The child's stdin is `input_path`
/// opened read-only (/dev/null when NULL); its stdout and stderr are pipes whose read ends come
/// back in `*output_fd` and `*errors_fd` (O_CLOEXEC, to be read to EOF and closed by the caller);
/// every other descriptor is closed in the child. On failure nothing is left open and the result
/// is -errno; on success the child's pid, to be reaped with waitpid.
pid_t weft_spawn(const char *path, char *const argv[], char *const envp[], const char *input_path,
                 int *output_fd, int *errors_fd);

/// fork and execve of `path` with `argv`/`envp` (NULL-terminated; `envp` NULL: this process's
/// environment) whose child gets `death_signal` when the calling thread ends (PR_SET_PDEATHSIG:
/// the thread, not the process, so the caller must be a thread that outlives the child) or is
/// killed with its process. stdin is /dev/null, stdout and stderr `output_fd`; every other
/// descriptor is closed at the exec. The child's pid, to be reaped with waitpid, or -errno (an
/// exec that failed included, the child then reaped).
pid_t weft_spawn_tied(const char *path, char *const argv[], char *const envp[], int output_fd, int death_signal);

#endif
