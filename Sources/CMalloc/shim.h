// glibc malloc tuning (mallopt), not exported by the Glibc module.
#include <malloc.h>
