#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

// libjpeg reports fatal errors through error_exit, which must not return. Swift frames cannot be
// unwound by longjmp, so every libjpeg call happens inside tlk_jpeg_decode: its setjmp catches the
// error in C and the function returns a message instead.

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf escape;
    char message[JMSG_LENGTH_MAX];
} tlk_jpeg_error;

static void tlk_jpeg_error_exit(j_common_ptr cinfo) {
    tlk_jpeg_error *error = (tlk_jpeg_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, error->message);
    longjmp(error->escape, 1);
}

// Warnings (level -1) are corrupt-data notices. A truncated file is refused, as Pillow refuses it;
// the other notices (stray bytes before a marker, ...) are tolerated, as Pillow tolerates them.
static void tlk_jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) tlk_jpeg_error_exit(cinfo);
}

static void tlk_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

/// Decodes a JPEG held in memory into 8-bit interleaved samples: 1 channel (grayscale), 3 (RGB) or
/// 4 (CMYK, already un-inverted when an Adobe marker says the file stores it inverted).
/// On success returns 0 and a malloc'ed buffer of width * height * channels bytes in *pixels (the
/// caller frees it). On failure returns 1 with a message, and *pixels is NULL.
static inline int tlk_jpeg_decode(const unsigned char *data, unsigned long size, unsigned long max_pixels,
                                  int *width, int *height, int *channels, unsigned char **pixels,
                                  char *message, size_t message_capacity) {
    struct jpeg_decompress_struct cinfo;
    tlk_jpeg_error error;
    unsigned char *volatile buffer = NULL;
    *pixels = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&error.base);
    error.base.error_exit = tlk_jpeg_error_exit;
    error.base.emit_message = tlk_jpeg_emit_message;
    error.base.output_message = tlk_jpeg_output_message;
    error.message[0] = 0;
    if (setjmp(error.escape)) {
        snprintf(message, message_capacity, "%s", error.message);
        jpeg_destroy_decompress(&cinfo);
        free(buffer);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, size);
    jpeg_read_header(&cinfo, TRUE);
    int components;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo.out_color_space = JCS_GRAYSCALE; components = 1; break;
    case JCS_CMYK: case JCS_YCCK: cinfo.out_color_space = JCS_CMYK; components = 4; break;
    default: cinfo.out_color_space = JCS_RGB; components = 3; break;
    }
    jpeg_start_decompress(&cinfo);
    unsigned long w = cinfo.output_width, h = cinfo.output_height;
    if (w == 0 || h == 0 || w * h > max_pixels || cinfo.output_components != components) {
        snprintf(message, message_capacity, "%lux%lu with %d components is not a supported JPEG layout", w, h,
                 cinfo.output_components);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    size_t stride = (size_t)w * (size_t)components;
    buffer = (unsigned char *)malloc(stride * h);
    if (buffer == NULL) {
        snprintf(message, message_capacity, "out of memory for %lux%lu pixels", w, h);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = buffer + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    if (components == 4 && cinfo.saw_Adobe_marker) {
        for (size_t i = 0; i < stride * h; i++) buffer[i] = (unsigned char)(255 - buffer[i]);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *width = (int)w;
    *height = (int)h;
    *channels = components;
    *pixels = buffer;
    return 0;
}
