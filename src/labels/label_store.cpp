#include "labels/label_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "labels/replay.h"

namespace lpld::labels {
namespace {
// "LPLDLBL" and the format version's digit.
const char* magic(int version) { return version == 1 ? "LPLDLBL1" : "LPLDLBL2"; }
// A partial file's magic until commit: it has the store's full size from the start, and must
// not pass for a store before every record is in.
constexpr char kPartialMagic[] = "LPLDPART";
// The header is zlib-compressed JSON: the image list dominates it, and with 10 classes a
// whole label pool can be smaller than the raw list (40x of 100 images: 15 KB of logits).
std::string compress(const std::string& text) {
  uLongf size = compressBound(text.size());
  std::string out(size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                reinterpret_cast<const Bytef*>(text.data()), text.size(), 9) != Z_OK)
    throw std::runtime_error("label store: zlib compression failed");
  out.resize(size);
  return out;
}

std::string decompress(const unsigned char* data, size_t size, const std::string& path) {
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) fail_file(path, "zlib init failed");
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(size);
  std::string out;
  char buf[65536];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    // ImageNet-21K at IPC 200 lists ~2.1 M images (~100 MB of JSON); 4 GB bounds a bomb
    if (out.size() > (uint64_t{4} << 30)) rc = Z_DATA_ERROR;
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) fail_file(path, "header does not decompress (damaged)");
  return out;
}

}  // namespace

namespace {
void write_all(int fd, const void* data, size_t size, uint64_t offset, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_file(path, std::string("write failed: ") + std::strerror(errno));
    }
    p += n, offset += static_cast<uint64_t>(n), size -= static_cast<size_t>(n);
  }
}

// The bytes before the first record: magic, header length, compressed header, its checksum.
std::string header_bytes(const LabelHeader& h) {
  const std::string text = compress(h.to_json().dump());
  const uint64_t len = text.size(), hash = xxh64(text.data(), text.size());
  std::string out(magic(h.format_version), 8);
  out.append(reinterpret_cast<const char*>(&len), 8);
  out += text;
  out.append(reinterpret_cast<const char*>(&hash), 8);
  return out;
}
}  // namespace

LabelStoreWriter::LabelStoreWriter(const std::string& path, const LabelHeader& header, Role role)
    : path_(path), partial_(path + ".partial"), header_(header) {
  std::string head = header_bytes(header_);
  std::memcpy(head.data(), kPartialMagic, 8);
  table_offset_ = head.size();
  data_offset_ = table_offset_ + static_cast<uint64_t>(header_.image_labels_bytes());
  const bool owner = owner_ = role != Role::kJoin;
  if (role == Role::kOwner) lock_ = FileLock::acquire_or_fail(path + ".lock", path);
  fd_ = ::open(partial_.c_str(), O_RDWR | O_CLOEXEC | (owner ? O_CREAT : 0), 0644);
  if (fd_ < 0)
    fail_file(partial_, std::string(owner ? "cannot create: " : "cannot open rank 0's file: ") +
                            std::strerror(errno));
  std::string existing(head.size(), '\0');
  const bool same_header =
      ::pread(fd_, existing.data(), existing.size(), 0) == static_cast<ssize_t>(existing.size()) &&
      existing == head;
  if (!owner && !same_header)
    fail_file(partial_, "its header differs from this rank's: the ranks run different configs");
  adopted_ = same_header;
  if (!same_header) {
    // a stale file of another header: none of its bytes may pass for a record of this one
    if (::ftruncate(fd_, 0) != 0)
      fail_file(partial_, std::string("cannot truncate: ") + std::strerror(errno));
    write_all(fd_, head.data(), head.size(), 0, partial_);
  }
  if (owner && ::ftruncate(fd_, static_cast<off_t>(
                                    record_offset(header_, data_offset_, header_.steps_kept))) != 0)
    fail_file(partial_, std::string("cannot size: ") + std::strerror(errno));
  done_.assign(static_cast<size_t>(header_.steps_kept), 0);
}

bool LabelStoreWriter::intact(int64_t step) {
  TORCH_CHECK(step >= 0 && step < header_.steps_kept, "label store: step beyond the kept pool");
  if (done_[step]) return true;
  if (!adopted_) return false;
  const size_t bytes = static_cast<size_t>(header_.record_bytes(header_.step_size(step)) - 8);
  std::string buf(bytes + 8, '\0');
  const uint64_t off = record_offset(header_, data_offset_, step);
  if (::pread(fd_, buf.data(), buf.size(), static_cast<off_t>(off)) !=
      static_cast<ssize_t>(buf.size()))
    return false;
  uint64_t stored = 0;
  std::memcpy(&stored, buf.data() + bytes, 8);
  done_[step] = xxh64(buf.data(), bytes, static_cast<uint64_t>(step)) == stored;
  return done_[step];
}

int64_t LabelStoreWriter::resume_step() {
  int64_t step = 0;
  while (step < header_.steps_kept && intact(step)) ++step;
  return step;
}

LabelStoreWriter::~LabelStoreWriter() {
  if (fd_ >= 0) ::close(fd_);  // the partial file stays: a re-run resumes it
}

void LabelStoreWriter::write(int64_t step, const torch::Tensor& logits, const StepPlan& plan) {
  TORCH_CHECK(step >= 0 && step < header_.steps_kept, "label store: step beyond the kept pool");
  const int64_t n = header_.step_size(step);
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == n && logits.size(1) == header_.num_classes,
              "label store: logits of step ", step, " have the wrong shape");
  TORCH_CHECK(plan.step == step, "label store: the plan of another step");
  std::string rec = header_.codec.encode(logits);
  if (header_.views_stored) rec += encode_views(header_, plan);
  const uint64_t digest = plan_digest(plan);
  rec.append(reinterpret_cast<const char*>(&digest), 8);
  const uint64_t hash = xxh64(rec.data(), rec.size(), static_cast<uint64_t>(step));
  rec.append(reinterpret_cast<const char*>(&hash), 8);
  TORCH_CHECK(static_cast<int64_t>(rec.size()) == header_.record_bytes(n),
              "label store: record size mismatch");
  write_all(fd_, rec.data(), rec.size(), record_offset(header_, data_offset_, step), partial_);
  done_[step] = 1;
}

bool LabelStoreWriter::image_labels_intact() {
  if (table_done_ || !header_.image_labels) return true;
  if (!adopted_) return false;
  const size_t bytes = static_cast<size_t>(header_.image_labels_bytes() - 8);
  std::string buf(bytes + 8, '\0');
  if (::pread(fd_, buf.data(), buf.size(), static_cast<off_t>(table_offset_)) !=
      static_cast<ssize_t>(buf.size()))
    return false;
  uint64_t stored = 0;
  std::memcpy(&stored, buf.data() + bytes, 8);
  table_done_ = xxh64(buf.data(), bytes, kImageLabelsSeed) == stored;
  return table_done_;
}

void LabelStoreWriter::write_image_labels(const torch::Tensor& logits) {
  TORCH_CHECK(owner_ && header_.image_labels, "label store: no fallback table to write");
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == header_.num_images &&
                  logits.size(1) == header_.num_classes,
              "label store: image labels have the wrong shape");
  std::string table = header_.codec.encode(logits);
  const uint64_t hash = xxh64(table.data(), table.size(), kImageLabelsSeed);
  table.append(reinterpret_cast<const char*>(&hash), 8);
  TORCH_CHECK(static_cast<int64_t>(table.size()) == header_.image_labels_bytes(),
              "label store: fallback table size mismatch");
  write_all(fd_, table.data(), table.size(), table_offset_, partial_);
  table_done_ = true;
}

void LabelStoreWriter::sync() {
  if (::fsync(fd_) != 0) fail_file(partial_, std::string("fsync failed: ") + std::strerror(errno));
}

void LabelStoreWriter::commit() {
  TORCH_CHECK(owner_, "label store: only the owner commits");
  adopted_ = true;  // what another rank wrote is checked like a killed run's records
  for (int64_t step = 0; step < header_.steps_kept; ++step)
    if (!intact(step))
      fail_file(partial_, fmt::format("step {} of {} is missing or damaged: a rank or run did "
                                      "not write it; re-run relabel to fill it in",
                                      step, header_.steps_kept));
  if (!image_labels_intact())
    fail_file(partial_, "the image labels (fallback table) are missing or damaged; re-run relabel");
  write_all(fd_, magic(header_.format_version), 8, 0, partial_);
  sync();
  ::close(fd_);
  fd_ = -1;
  if (::rename(partial_.c_str(), path_.c_str()) != 0)
    fail_file(path_,
              std::string("cannot rename the partial file into place: ") + std::strerror(errno));
  if (lock_) lock_->release_and_remove();
}

namespace {
// Reads exactly `size` bytes at `offset`; false at the end of the file.
bool read_at(int fd, void* dst, size_t size, uint64_t offset) {
  char* p = static_cast<char*>(dst);
  while (size > 0) {
    const ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n, size -= static_cast<size_t>(n), offset += static_cast<uint64_t>(n);
  }
  return true;
}
}  // namespace

// Records are read with pread, not through a mapping: a mapping's touched pages stay in the
// resident set, so an epoch over a 100 GB store would show as 100 GB of memory.
LabelStore::LabelStore(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail_file(path, std::string("cannot open label store: ") + std::strerror(errno));
  try {
    struct stat st {};
    ::fstat(fd_, &st);
    size_ = static_cast<uint64_t>(st.st_size);
    check_file(size_ >= 24, path, "too short to be a label store (truncated?)");
    char head[16];
    check_file(read_at(fd_, head, 16, 0), path, "cannot read the header");
    check_file(std::memcmp(head, kPartialMagic, 8) != 0, path,
               "an unfinished relabel's partial store; re-run the relabel to finish it");
    check_file(std::memcmp(head, magic(1), 7) == 0 && (head[7] == '1' || head[7] == '2'), path,
               "not an lpld label store (bad magic)");
    uint64_t len = 0, hash = 0;
    std::memcpy(&len, head + 8, 8);
    check_file(len <= size_ - 24, path, "header length exceeds the file (truncated or damaged)");
    std::string text(len, '\0');
    check_file(read_at(fd_, text.data(), len, 16) && read_at(fd_, &hash, 8, 16 + len), path,
               "cannot read the header");
    check_file(xxh64(text.data(), len) == hash, path, "header checksum mismatch (damaged)");
    json j;
    try {
      j = json::parse(decompress(reinterpret_cast<const unsigned char*>(text.data()), len, path));
    } catch (const json::exception& e) {
      fail_file(path, std::string("header is not valid JSON: ") + e.what());
    }
    header_ = LabelHeader::from_json(j, path);
    check_file(head[7] - '0' == header_.format_version, path,
               "magic and header disagree on the format version");
    header_end_ = 24 + len;
    data_offset_ = header_end_ + static_cast<uint64_t>(header_.image_labels_bytes());
    const uint64_t expected = record_offset(header_.steps_kept);
    check_file(size_ == expected, path,
               fmt::format("file is {} bytes, the header implies {} ({})", size_, expected,
                           size_ < expected ? "truncated" : "trailing data"));
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

LabelStore::~LabelStore() {
  if (fd_ >= 0) ::close(fd_);
}

uint64_t LabelStore::record_offset(int64_t step) const {
  return labels::record_offset(header_, data_offset_, step);
}

uint64_t LabelStore::logit_bytes() const {
  uint64_t rows = 0;
  for (int64_t step = 0; step < header_.steps_kept; ++step)
    rows += static_cast<uint64_t>(header_.step_size(step) *
                                  header_.codec.row_bytes(header_.num_classes));
  return rows;
}

std::string LabelStore::record(int64_t step) const {
  if (step < 0 || step >= header_.steps_kept)
    throw std::out_of_range(fmt::format("{}: step {} is not in the label pool (0..{})", path_, step,
                                        header_.steps_kept - 1));
  const size_t bytes = static_cast<size_t>(header_.record_bytes(header_.step_size(step)) - 8);
  std::string rec(bytes + 8, '\0');
  if (!read_at(fd_, rec.data(), rec.size(), record_offset(step)))
    fail_file(path_, fmt::format("record of step {} cannot be read", step));
  uint64_t stored = 0;
  std::memcpy(&stored, rec.data() + bytes, 8);
  if (xxh64(rec.data(), bytes, static_cast<uint64_t>(step)) != stored)
    fail_file(path_, fmt::format("record of step {} is damaged (checksum mismatch)", step));
  rec.resize(bytes);
  return rec;
}

LabelStore::Step LabelStore::read_step(int64_t step) const {
  const std::string rec = record(step);
  Step out;
  out.rows = header_.codec.decode(rec.data(), header_.step_size(step), header_.num_classes);
  out.rows.values = out.rows.values.clone();  // decode views the record's bytes
  if (out.rows.indices.defined()) out.rows.indices = out.rows.indices.clone();
  if (header_.format_version >= 2) std::memcpy(&out.digest, rec.data() + rec.size() - 8, 8);
  return out;
}

torch::Tensor LabelStore::probs(int64_t step, double T) const {
  return teacher_probs(rows(step), header_.num_classes, T);
}

torch::Tensor LabelStore::logits(int64_t step) const {
  check_arg(!header_.codec.indexed(header_.num_classes), "--labels",
            path_ + " keeps only the top " + std::to_string(header_.codec.topk) +
                " logits of each row; use its teacher distributions (probs)");
  return rows(step).values;
}

std::string LabelStore::views_block(int64_t step) const {
  check_arg(header_.views_stored, "--labels", path_ + " does not store its views");
  const std::string rec = record(step);
  const int64_t n = header_.step_size(step);
  return rec.substr(static_cast<size_t>(n * header_.codec.row_bytes(header_.num_classes)),
                    static_cast<size_t>(header_.views_bytes(n)));
}

LabelCodec::Rows LabelStore::image_rows() const {
  check_arg(header_.image_labels, "--labels",
            path_ + " has no image labels (relabel it with --image-labels)");
  const size_t bytes = static_cast<size_t>(header_.image_labels_bytes() - 8);
  std::string table(bytes + 8, '\0');
  if (!read_at(fd_, table.data(), table.size(), header_end_))
    fail_file(path_, "the image labels cannot be read");
  uint64_t stored = 0;
  std::memcpy(&stored, table.data() + bytes, 8);
  if (xxh64(table.data(), bytes, kImageLabelsSeed) != stored)
    fail_file(path_, "the image labels are damaged (checksum mismatch)");
  auto rows = header_.codec.decode(table.data(), header_.num_images, header_.num_classes);
  rows.values = rows.values.clone();  // decode views the table's bytes
  if (rows.indices.defined()) rows.indices = rows.indices.clone();
  return rows;
}

void LabelStore::verify() const {
  if (header_.image_labels) image_rows();
  for (int64_t s = 0; s < header_.steps_kept; ++s) record(s);
}

json LabelStore::bytes_by_part() const {
  const auto& h = header_;
  const int64_t C = h.num_classes;
  uint64_t values = 0, params = 0, indices = 0, views = 0, images = 0;
  for (int64_t step = 0; step < h.steps_kept; ++step) {
    const int64_t n = h.step_size(step);
    values += n * h.codec.value_bytes(C);
    params += n * h.codec.param_bytes();
    indices += n * (h.codec.row_bytes(C) - h.codec.value_bytes(C) - h.codec.param_bytes());
    views += h.views_bytes(n);
  }
  for (int64_t step = 0; step < h.total_steps(); ++step) images += h.step_size(step);
  const uint64_t per_step = (h.format_version >= 2 ? 8 : 0) + 8;
  // The 1x fp16 store of the same run: every step, full logits in fp16, the same header.
  const uint64_t fp16_1x = header_end_ + images * C * 2 + h.total_steps() * 16;
  return {{"header", header_end_},
          {"image_labels", h.image_labels_bytes()},
          {"values", values},
          {"quantization_params", params},
          {"indices", indices},
          {"views", views},
          {"digests_and_checksums", per_step * h.steps_kept},
          {"total", size_},
          {"fp16_1x", fp16_1x},
          {"compression_vs_fp16_1x", static_cast<double>(fp16_1x) / static_cast<double>(size_)}};
}

}  // namespace lpld::labels
