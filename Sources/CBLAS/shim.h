// OpenBLAS CBLAS and LAPACKE (Debian: libopenblas-dev, liblapacke-dev).
#include <cblas.h>
#include <lapacke.h>

// OpenBLAS: stops the worker threads of its pool; the next threaded call starts them again.
int blas_thread_shutdown_(void);
