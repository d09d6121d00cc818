// The complete list of what Weft asks of C: every function here is a small static inline wrapper
// with the weft_ prefix, or a system header Swift imports directly.
#ifndef WEFT_CSHIMS_H
#define WEFT_CSHIMS_H

#include <errno.h>
#include <stdint.h>
#include <pcap/pcap.h>

static inline int weft_errno(void) { return errno; }

#endif
#include "weft_daemon.h"
