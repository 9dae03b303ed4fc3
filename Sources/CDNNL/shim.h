// oneDNN's C API (Debian: libdnnl-dev 2.6), for the bf16 matmul, convolution and reorder primitives.
#include <oneapi/dnnl/dnnl.h>
