#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <png.h>

// libpng reports errors through a callback that must not return. Swift frames cannot be unwound by
// longjmp, so every libpng call happens inside the functions below: their setjmp catches the error in
// C and they return a message instead.

typedef struct {
    jmp_buf escape;
    char message[256];
    const unsigned char *input;   // decoding: the file's bytes
    size_t input_size, input_offset;
    unsigned char *output;        // encoding: a growing buffer
    size_t output_size, output_capacity;
} tlk_png_state;

static void tlk_png_error(png_structp png, png_const_charp text) {
    tlk_png_state *state = (tlk_png_state *)png_get_error_ptr(png);
    snprintf(state->message, sizeof state->message, "%s", text);
    longjmp(state->escape, 1);
}

static void tlk_png_warning(png_structp png, png_const_charp text) { (void)png; (void)text; }

static void tlk_png_read(png_structp png, png_bytep out, png_size_t count) {
    tlk_png_state *state = (tlk_png_state *)png_get_io_ptr(png);
    if (count > state->input_size - state->input_offset) png_error(png, "the file is truncated");
    memcpy(out, state->input + state->input_offset, count);
    state->input_offset += count;
}

/// One decoded PNG: 8-bit interleaved samples with 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)
/// channels; palettes are expanded, tRNS becomes an alpha channel, 16-bit samples keep their high byte,
/// gamma is ignored (as Pillow does). `text` holds the text chunks, each as
/// [kind byte: 0 Latin-1, 1 UTF-8] key NUL value NUL; `exif` the eXIf payload (TIFF). All malloc'ed.
typedef struct {
    int width, height, channels, bit_depth, color_type;
    unsigned char *pixels;
    unsigned char *text;
    size_t text_size;
    int text_count;
    unsigned char *exif;
    size_t exif_size;
} tlk_png_image;

static inline void tlk_png_image_free(tlk_png_image *image) {
    free(image->pixels);
    free(image->text);
    free(image->exif);
    image->pixels = image->text = image->exif = NULL;
}

static inline int tlk_png_collect_text(png_structp png, png_infop info, tlk_png_image *image) {
    png_textp texts = NULL;
    int count = png_get_text(png, info, &texts, NULL);
    if (count <= 0) return 1;
    size_t total = 0;
    for (int i = 0; i < count; i++) total += 3 + strlen(texts[i].key) + (texts[i].text ? strlen(texts[i].text) : 0);
    unsigned char *out = (unsigned char *)realloc(image->text, image->text_size + total);
    if (out == NULL) return 0;
    image->text = out;
    for (int i = 0; i < count; i++) {
        unsigned char *p = out + image->text_size;
        size_t k = strlen(texts[i].key), v = texts[i].text ? strlen(texts[i].text) : 0;
        p[0] = texts[i].compression >= PNG_ITXT_COMPRESSION_NONE ? 1 : 0;
        memcpy(p + 1, texts[i].key, k);
        p[1 + k] = 0;
        if (v) memcpy(p + 2 + k, texts[i].text, v);
        p[2 + k + v] = 0;
        image->text_size += 3 + k + v;
        image->text_count += 1;
    }
    return 1;
}

/// Decodes a PNG held in memory. Returns 0 on success (the caller frees with tlk_png_image_free), or 1
/// with a message and nothing to free.
static inline int tlk_png_decode(const unsigned char *data, size_t size, unsigned long max_pixels,
                                 tlk_png_image *image, char *message, size_t message_capacity) {
    tlk_png_state state;
    memset(&state, 0, sizeof state);
    memset(image, 0, sizeof *image);
    state.input = data;
    state.input_size = size;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, tlk_png_error, tlk_png_warning);
    if (png == NULL) {
        snprintf(message, message_capacity, "libpng could not start");
        return 1;
    }
    png_infop info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;
    png_infop volatile end = NULL;
    if (info == NULL || setjmp(state.escape)) {
        snprintf(message, message_capacity, "%s", info == NULL ? "libpng could not start" : state.message);
        png_infop end_info = end;
        png_destroy_read_struct(&png, info ? &info : NULL, end_info ? &end_info : NULL);
        free(rows);
        tlk_png_image_free(image);
        return 1;
    }
    png_set_read_fn(png, &state, tlk_png_read);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    image->bit_depth = png_get_bit_depth(png, info);
    image->color_type = png_get_color_type(png, info);
    if ((unsigned long)w * (unsigned long)h > max_pixels) png_error(png, "the image is too large");
    if (image->color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (image->color_type == PNG_COLOR_TYPE_GRAY && image->bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (image->bit_depth == 16) png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    image->width = (int)w;
    image->height = (int)h;
    image->channels = png_get_channels(png, info);
    size_t stride = png_get_rowbytes(png, info);
    if (stride != (size_t)w * (size_t)image->channels) png_error(png, "unexpected row layout");
    image->pixels = (unsigned char *)malloc(stride * h);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
    if (image->pixels == NULL || rows == NULL) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = image->pixels + (size_t)y * stride;
    png_read_image(png, rows);
    if (!tlk_png_collect_text(png, info, image)) png_error(png, "out of memory");
    end = png_create_info_struct(png);
    if (end != NULL) {
        png_read_end(png, end);
        if (!tlk_png_collect_text(png, end, image)) png_error(png, "out of memory");
    }
#ifdef PNG_eXIf_SUPPORTED
    png_bytep exif = NULL;
    png_uint_32 exif_size = 0;
    // eXIf may come before or after the image data.
    if ((png_get_eXIf_1(png, info, &exif_size, &exif) || (end && png_get_eXIf_1(png, end, &exif_size, &exif)))
        && exif_size > 0) {
        image->exif = (unsigned char *)malloc(exif_size);
        if (image->exif == NULL) png_error(png, "out of memory");
        memcpy(image->exif, exif, exif_size);
        image->exif_size = exif_size;
    }
#endif
    free(rows);
    rows = NULL;
    png_infop end_info = end;
    png_destroy_read_struct(&png, &info, end_info ? &end_info : NULL);
    return 0;
}

static void tlk_png_write(png_structp png, png_bytep data, png_size_t count) {
    tlk_png_state *state = (tlk_png_state *)png_get_io_ptr(png);
    if (state->output_size + count > state->output_capacity) {
        size_t capacity = state->output_capacity ? state->output_capacity : 65536;
        while (capacity < state->output_size + count) capacity *= 2;
        unsigned char *grown = (unsigned char *)realloc(state->output, capacity);
        if (grown == NULL) png_error(png, "out of memory");
        state->output = grown;
        state->output_capacity = capacity;
    }
    memcpy(state->output + state->output_size, data, count);
    state->output_size += count;
}

static void tlk_png_flush(png_structp png) { (void)png; }

/// Encodes 8-bit interleaved RGB as a PNG with text chunks (`text`: `text_count` records of
/// [kind byte: 0 tEXt (Latin-1 bytes), 1 iTXt (UTF-8)] key NUL value NUL). Returns 0 and a malloc'ed
/// buffer in *out (the caller frees it), or 1 with a message.
static inline int tlk_png_encode_rgb(const unsigned char *rgb, int width, int height, const unsigned char *text,
                                     int text_count, unsigned char **out, size_t *out_size,
                                     char *message, size_t message_capacity) {
    tlk_png_state state;
    memset(&state, 0, sizeof state);
    *out = NULL;
    *out_size = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, tlk_png_error, tlk_png_warning);
    if (png == NULL) {
        snprintf(message, message_capacity, "libpng could not start");
        return 1;
    }
    png_infop info = png_create_info_struct(png);
    png_textp volatile chunks = NULL;
    if (info == NULL || setjmp(state.escape)) {
        snprintf(message, message_capacity, "%s", info == NULL ? "libpng could not start" : state.message);
        png_destroy_write_struct(&png, info ? &info : NULL);
        free(chunks);
        free(state.output);
        return 1;
    }
    png_set_write_fn(png, &state, tlk_png_write, tlk_png_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (text_count > 0) {
        chunks = (png_textp)calloc((size_t)text_count, sizeof(png_text));
        if (chunks == NULL) png_error(png, "out of memory");
        const unsigned char *p = text;
        for (int i = 0; i < text_count; i++) {
            int utf8 = p[0] == 1;
            chunks[i].compression = utf8 ? PNG_ITXT_COMPRESSION_NONE : PNG_TEXT_COMPRESSION_NONE;
            chunks[i].key = (png_charp)(p + 1);
            chunks[i].text = (png_charp)(p + 2 + strlen((const char *)p + 1));
            chunks[i].text_length = strlen(chunks[i].text);
            p = (const unsigned char *)chunks[i].text + chunks[i].text_length + 1;
        }
        png_set_text(png, info, chunks, text_count);
    }
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * (size_t)width * 3));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(chunks);
    *out = state.output;
    *out_size = state.output_size;
    return 0;
}
