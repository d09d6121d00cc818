// io_uring wrappers beyond CShims.h's basics, for the uring worker (Sources/Engine/Uring*.swift).
#ifndef WEFT_URING_H
#define WEFT_URING_H

#include <stdint.h>
#include <string.h>
#include <liburing.h>

static const unsigned int weft_recvmsg_out_size = sizeof(struct io_uring_recvmsg_out);

/// Like weft_ring_init, with the completion queue sized apart from the submission queue
/// (IORING_SETUP_CQSIZE): multishot receives post many completions per submission.
static inline int weft_ring_init_sized(struct io_uring *ring, unsigned submission_entries, unsigned completion_entries, unsigned flags) {
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    params.flags = flags | IORING_SETUP_CQSIZE;
    params.cq_entries = completion_entries;
    return io_uring_queue_init_params(submission_entries, ring, &params);
}

/// Submits, then (with IORING_SETUP_DEFER_TASKRUN) runs the deferred task work that posts completions.
static inline int weft_submit_and_get_events(struct io_uring *ring) { return io_uring_submit_and_get_events(ring); }

/// Cancels the first request submitted with `user_data`.
static inline void weft_prep_cancel(struct io_uring_sqe *sqe, uint64_t user_data) {
    io_uring_prep_cancel64(sqe, user_data, 0);
}

#endif
