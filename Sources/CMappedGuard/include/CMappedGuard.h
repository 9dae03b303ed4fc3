#ifndef CMAPPEDGUARD_H
#define CMAPPEDGUARD_H

#include <stddef.h>

/// Guards read-only file mappings against the file shrinking under them. A page past the new end of
/// file raises SIGBUS on access; for a guarded mapping the handler maps zero pages over the rest of it,
/// so the access completes, and marks the mapping as faulted for the reader to report. Faults outside
/// guarded mappings go to the previous handler (or end the process as they would have).

/// Starts guarding [base, base + length); returns a slot for the calls below, or -1 when all are taken.
int tl_guard_register(const void *base, size_t length);

/// Whether the mapping in `slot` has faulted since it was registered.
int tl_guard_faulted(int slot);

/// Stops guarding `slot` (before the mapping is unmapped); returns whether it had faulted.
int tl_guard_unregister(int slot);

#endif
