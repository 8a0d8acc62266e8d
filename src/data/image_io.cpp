// Single-image decoding and encoding: PNG through libpng's simplified API, JPEG through
// libjpeg(-turbo). The format is chosen by the file's magic bytes, never its extension.
//
// libjpeg reports fatal errors through error_exit, which must not return; we longjmp back
// to a setjmp point. To keep that well defined in C++, everything the jump can skip over
// lives in a struct owned by the caller (JpegDecoder/JpegEncoder below), and the functions
// that call setjmp hold no objects with destructors.
#include "data/image_io.h"

#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

// After <cstdio>: jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "core/error.h"
#include "core/io.h"

namespace lpld::data {
namespace {

// Refuse absurd header sizes before allocating (a corrupt header must not exhaust memory).
constexpr uint64_t kMaxPixels = uint64_t{1} << 28;

bool is_png(const uint8_t* p, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return n >= 8 && std::memcmp(p, sig, 8) == 0;
}
bool is_jpeg(const uint8_t* p, size_t n) {
  return n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF;
}

// The first `c` of `stored` interleaved channels of an [H, W, stored] buffer -> uint8
// [C, H, W]. A plain loop rather than torch ops: this runs on loader threads, where torch's
// intra-op thread pool would only oversubscribe the cores.
torch::Tensor hwc_to_chw(const uint8_t* data, int64_t h, int64_t w, int64_t c, int64_t stored) {
  auto out = torch::empty({c, h, w}, torch::kUInt8);
  uint8_t* dst = out.data_ptr<uint8_t>();
  const int64_t plane = h * w;
  if (c == 1 && stored == 1) {
    std::memcpy(dst, data, static_cast<size_t>(plane));
    return out;
  }
  for (int64_t i = 0; i < plane; ++i) {
    for (int64_t ch = 0; ch < c; ++ch) dst[ch * plane + i] = data[i * stored + ch];
  }
  return out;
}

void check_dims(const std::string& name, uint64_t w, uint64_t h, uint64_t c) {
  check_file(w > 0 && h > 0, name, "image has zero width or height");
  check_file(w * h * c <= kMaxPixels, name,
             "image too large (" + std::to_string(w) + "x" + std::to_string(h) + ")");
}

// ---- PNG ----

struct PngImage {
  png_image image;
  PngImage() {
    std::memset(&image, 0, sizeof(image));
    image.version = PNG_IMAGE_VERSION;
  }
  ~PngImage() { png_image_free(&image); }  // no-op once libpng freed it
};

torch::Tensor decode_png(const uint8_t* data, size_t size, const std::string& name) {
  PngImage png;
  if (!png_image_begin_read_from_memory(&png.image, data, size)) {
    fail_file(name, std::string("invalid PNG: ") + png.image.message);
  }
  const bool color = (png.image.format & PNG_FORMAT_FLAG_COLOR) != 0;
  const bool alpha = (png.image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  // Read alpha (when present) and drop it ourselves: asking libpng for a format without
  // alpha would composite over a background instead.
  png.image.format =
      (color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY) | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0);
  // 16-bit files without gamma information are taken as sRGB, i.e. simply reduced to 8 bits
  // rather than converted from linear light.
  png.image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  const int64_t h = png.image.height, w = png.image.width;
  const int64_t stored = PNG_IMAGE_SAMPLE_CHANNELS(png.image.format);
  check_dims(name, w, h, stored);
  std::vector<uint8_t> buffer(PNG_IMAGE_SIZE(png.image));
  if (!png_image_finish_read(&png.image, nullptr, buffer.data(), 0, nullptr)) {
    fail_file(name, std::string("invalid PNG: ") + png.image.message);
  }
  return hwc_to_chw(buffer.data(), h, w, color ? 3 : 1, stored);
}

std::array<int64_t, 3> probe_png(const uint8_t* data, size_t size, const std::string& name) {
  PngImage png;
  if (!png_image_begin_read_from_memory(&png.image, data, size)) {
    fail_file(name, std::string("invalid PNG: ") + png.image.message);
  }
  const int64_t c = (png.image.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
  return {c, static_cast<int64_t>(png.image.height), static_cast<int64_t>(png.image.width)};
}

// ---- JPEG ----

struct JpegError {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

// Warnings are ignored (many real JPEGs have harmless ones) except the two that say the data
// ended before the image did: the file ends (JWRN_JPEG_EOF), or a marker comes where data
// should (JWRN_HIT_MARKER). libjpeg would pad the rest with gray; a damaged image must be an
// error. Fuzzing found the second (bench/fuzz_findings.md): 251 bytes that declared 64515 x 776
// pixels and ended after a few bytes of data were decoded into 50 M gray pixels.
void jpeg_emit_message(j_common_ptr cinfo, int level) {
  const int code = cinfo->err->msg_code;
  if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER)) jpeg_error_exit(cinfo);
}

struct JpegDecoder {
  jpeg_decompress_struct cinfo;
  JpegError err;
  bool created = false;
  bool cmyk = false;
  std::vector<uint8_t> pixels;
  int64_t width = 0, height = 0, channels = 0;
  ~JpegDecoder() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

void jpeg_setup(JpegDecoder* d) {
  d->err.message[0] = '\0';
  d->cinfo.err = jpeg_std_error(&d->err.pub);
  d->err.pub.error_exit = jpeg_error_exit;
  d->err.pub.emit_message = jpeg_emit_message;
}

// Returns false on a libjpeg error (message in d->err.message). Holds no C++ objects.
bool jpeg_run_decode(JpegDecoder* d, const uint8_t* data, size_t size, bool header_only,
                     int64_t min_side = 0) {
  if (setjmp(d->err.jump)) return false;
  jpeg_create_decompress(&d->cinfo);
  d->created = true;
  jpeg_mem_src(&d->cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&d->cinfo, TRUE);
  const J_COLOR_SPACE space = d->cinfo.jpeg_color_space;
  if (space == JCS_GRAYSCALE) {
    d->cinfo.out_color_space = JCS_GRAYSCALE;
    d->channels = 1;
  } else if (space == JCS_CMYK || space == JCS_YCCK) {
    // libjpeg cannot convert CMYK to RGB; we do it below.
    d->cinfo.out_color_space = JCS_CMYK;
    d->cmyk = true;
    d->channels = 3;
  } else {
    d->cinfo.out_color_space = JCS_RGB;
    d->channels = 3;
  }
  d->width = d->cinfo.image_width;
  d->height = d->cinfo.image_height;
  if (header_only) return true;
  if (d->width <= 0 || d->height <= 0 ||
      static_cast<uint64_t>(d->width) * d->height * 4 > kMaxPixels) {
    return true;  // the caller reports the size problem
  }
  if (min_side > 0) {  // the smallest M/8 scale whose short side stays >= min_side
    const int64_t side = std::min(d->width, d->height);
    int m = 1;
    while (m < 8 && (side * m + 7) / 8 < min_side) ++m;
    d->cinfo.scale_num = static_cast<unsigned int>(m);
    d->cinfo.scale_denom = 8;
  }
  jpeg_start_decompress(&d->cinfo);
  d->width = d->cinfo.output_width;
  d->height = d->cinfo.output_height;
  const int64_t out_c = d->cinfo.output_components;
  const int64_t stride = d->width * out_c;
  d->pixels.resize(static_cast<size_t>(stride * d->height));
  while (d->cinfo.output_scanline < d->cinfo.output_height) {
    JSAMPROW row = d->pixels.data() + static_cast<size_t>(d->cinfo.output_scanline) * stride;
    jpeg_read_scanlines(&d->cinfo, &row, 1);
  }
  jpeg_finish_decompress(&d->cinfo);
  return true;
}

torch::Tensor decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                          int64_t min_side) {
  JpegDecoder d;
  jpeg_setup(&d);
  if (!jpeg_run_decode(&d, data, size, /*header_only=*/false, min_side)) {
    fail_file(name, std::string("invalid JPEG: ") + d.err.message);
  }
  check_dims(name, d.width, d.height, 4);
  const int64_t h = d.height, w = d.width;
  if (!d.cmyk) return hwc_to_chw(d.pixels.data(), h, w, d.channels, d.channels);
  // Adobe writes inverted CMYK (the common case for CMYK JPEGs); others store it plainly.
  const bool inverted = d.cinfo.saw_Adobe_marker;
  std::vector<uint8_t> rgb(static_cast<size_t>(h * w * 3));
  for (int64_t i = 0; i < h * w; ++i) {
    const uint8_t* p = &d.pixels[static_cast<size_t>(i * 4)];
    const int k = inverted ? p[3] : 255 - p[3];
    for (int ch = 0; ch < 3; ++ch) {
      const int v = inverted ? p[ch] : 255 - p[ch];
      rgb[static_cast<size_t>(i * 3 + ch)] = static_cast<uint8_t>((v * k + 127) / 255);
    }
  }
  return hwc_to_chw(rgb.data(), h, w, 3, 3);
}

std::array<int64_t, 3> probe_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  JpegDecoder d;
  jpeg_setup(&d);
  if (!jpeg_run_decode(&d, data, size, /*header_only=*/true)) {
    fail_file(name, std::string("invalid JPEG: ") + d.err.message);
  }
  return {d.channels, d.height, d.width};
}

struct JpegEncoder {
  jpeg_compress_struct cinfo;
  JpegError err;
  bool created = false;
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  ~JpegEncoder() {
    if (created) jpeg_destroy_compress(&cinfo);
    std::free(out);
  }
};

bool jpeg_run_encode(JpegEncoder* e, const uint8_t* hwc, int64_t h, int64_t w, int64_t c,
                     int quality) {
  if (setjmp(e->err.jump)) return false;
  jpeg_create_compress(&e->cinfo);
  e->created = true;
  jpeg_mem_dest(&e->cinfo, &e->out, &e->out_size);
  e->cinfo.image_width = static_cast<JDIMENSION>(w);
  e->cinfo.image_height = static_cast<JDIMENSION>(h);
  e->cinfo.input_components = static_cast<int>(c);
  e->cinfo.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&e->cinfo);
  jpeg_set_quality(&e->cinfo, quality, TRUE);
  jpeg_start_compress(&e->cinfo, TRUE);
  while (e->cinfo.next_scanline < e->cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(hwc + static_cast<size_t>(e->cinfo.next_scanline) * w * c);
    jpeg_write_scanlines(&e->cinfo, &row, 1);
  }
  jpeg_finish_compress(&e->cinfo);
  return true;
}

// uint8 [C, H, W], C = 1 or 3 -> contiguous [H, W, C].
torch::Tensor to_hwc(const torch::Tensor& image, const char* what) {
  if (image.dim() != 3 || image.scalar_type() != torch::kUInt8 ||
      (image.size(0) != 1 && image.size(0) != 3) || image.size(1) <= 0 || image.size(2) <= 0) {
    throw std::invalid_argument(std::string(what) +
                                ": expected a uint8 [C, H, W] image with C = 1 or 3, got " +
                                c10::toString(image.scalar_type()) + " " + c10::str(image.sizes()));
  }
  return image.to(torch::kCPU).permute({1, 2, 0}).contiguous();
}

}  // namespace

torch::Tensor decode_image(const std::string& bytes, const std::string& name_for_errors,
                           int64_t min_side) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.empty()) fail_file(name_for_errors, "empty file");
  if (is_png(p, bytes.size())) return decode_png(p, bytes.size(), name_for_errors);
  if (is_jpeg(p, bytes.size())) return decode_jpeg(p, bytes.size(), name_for_errors, min_side);
  fail_file(name_for_errors, "not a PNG or JPEG file");
}

torch::Tensor read_image(const std::string& path, int64_t min_side) {
  return decode_image(read_file(path), path, min_side);
}

std::array<int64_t, 3> probe_image(const std::string& path) {
  // Headers normally sit in the first few KiB; read more only if that was not enough.
  constexpr size_t kPrefix = 64 * 1024;
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_file(path, "cannot open (missing or unreadable)");
  std::string head(kPrefix, '\0');
  in.read(head.data(), static_cast<std::streamsize>(kPrefix));
  head.resize(static_cast<size_t>(in.gcount()));
  const bool whole = head.size() < kPrefix;
  const auto* p = reinterpret_cast<const uint8_t*>(head.data());
  if (head.empty()) fail_file(path, "empty file");
  const bool png = is_png(p, head.size());
  if (!png && !is_jpeg(p, head.size())) fail_file(path, "not a PNG or JPEG file");
  auto probe = [&](const std::string& bytes) {
    const auto* q = reinterpret_cast<const uint8_t*>(bytes.data());
    return png ? probe_png(q, bytes.size(), path) : probe_jpeg(q, bytes.size(), path);
  };
  if (whole) return probe(head);
  try {
    return probe(head);
  } catch (const std::runtime_error&) {
    return probe(read_file(path));
  }
}

std::string encode_png(const torch::Tensor& image) {
  const torch::Tensor hwc = to_hwc(image, "encode_png");
  PngImage png;
  png.image.width = static_cast<png_uint_32>(hwc.size(1));
  png.image.height = static_cast<png_uint_32>(hwc.size(0));
  png.image.format = hwc.size(2) == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  const void* pixels = hwc.data_ptr<uint8_t>();
  if (!png_image_write_to_memory(&png.image, nullptr, &size, 0, pixels, 0, nullptr)) {
    throw std::runtime_error(std::string("encode_png: ") + png.image.message);
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&png.image, out.data(), &size, 0, pixels, 0, nullptr)) {
    throw std::runtime_error(std::string("encode_png: ") + png.image.message);
  }
  out.resize(size);
  return out;
}

void write_png(const std::string& path, const torch::Tensor& image) {
  write_file_atomic(path, encode_png(image));
}

std::string encode_jpeg(const torch::Tensor& image, int quality) {
  const torch::Tensor hwc = to_hwc(image, "encode_jpeg");
  JpegEncoder e;
  e.err.message[0] = '\0';
  e.cinfo.err = jpeg_std_error(&e.err.pub);
  e.err.pub.error_exit = jpeg_error_exit;
  if (!jpeg_run_encode(&e, hwc.data_ptr<uint8_t>(), hwc.size(0), hwc.size(1), hwc.size(2),
                       std::clamp(quality, 1, 100))) {
    throw std::runtime_error(std::string("encode_jpeg: ") + e.err.message);
  }
  return std::string(reinterpret_cast<const char*>(e.out), e.out_size);
}

}  // namespace lpld::data
