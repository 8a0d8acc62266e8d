// The label store: every soft label of a relabel run in one file, random access by step id
// (pread of one record). Byte layout of format 2 (docs/label-store.md; format 1 is still read):
//
//   "LPLDLBL2"                        8 bytes magic (format 2; "LPLDLBL1": format 1)
//   header_len                        u64 little-endian
//   header                            header_len bytes of zlib-compressed JSON (LabelHeader)
//   header_hash                       u64 xxh64 of the header bytes
//   image labels (--image-labels)     N codec rows (each image's whole view), u64 xxh64 (seed
//                                     kImageLabelsSeed) of them: the fallback table
//   records, step 0 .. steps_kept-1   n_s rows of the codec (codec.h: kept logits, their
//                                     quantization parameters and class indices), then the
//                                     views if stored (--store-views), then a u64 digest of the
//                                     views the step replays, then a u64 xxh64 (seed = step
//                                     id) of all the record's bytes before it
//
// n_s is batch_size, except the last batch of each epoch (N mod batch_size when nonzero).
// Crops, flips, CutMix and the epoch orders are regenerated from (seed, step) by replay.h
// (its replay version is in the header); the digest lets a reader check that what it renders
// is what the labels were made for. Format 1 records: fp16/bf16/fp32 logits [n_s, C] and the
// checksum, no digest.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "core/io.h"
#include "core/lock.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "labels/codec.h"
#include "labels/views.h"

namespace lpld::labels {

struct StepPlan;  // replay.h

constexpr int kLabelStoreVersion = 2;  // what the writer writes; 1 and 2 are read
// The fallback table's checksum seed (a record's is its step id, >= 0).
constexpr uint64_t kImageLabelsSeed = ~uint64_t{0};

struct LabelHeader {
  int64_t num_images = 0, num_classes = 0, channels = 0, image_size = 0;
  int64_t epochs = 0;
  ViewOptions views;       // batch size, crop, CutMix (labels/views.h)
  int64_t steps_kept = 0;  // the label pool: steps 0 .. steps_kept-1
  double prune_ratio = 0;
  LabelCodec codec;  // format 1: full logits in codec.values (fp16 | bf16 | fp32)
  int format_version = kLabelStoreVersion;
  int replay_version = 1;     // of the views (replay.h kReplayVersion); format 1 stores: 1
  bool views_stored = false;  // the views are in every record (format 2, --store-views)
  // The fallback table (--image-labels, issue #30): the teacher's logits for each image's whole,
  // unaugmented view, one codec row per image, between the header and the records. Training
  // labels a step whose labels were pruned from it (train/epoch.h). Written only when true.
  bool image_labels = false;
  uint64_t seed = 0;
  data::Normalization norm;
  std::vector<std::string> images;  // relative paths, index order
  std::vector<int64_t> labels;      // class of each image
  std::string image_set_hash, teacher_hash;
  std::string blas;  // the BLAS the logits were computed with (core/runtime.h; "" in old stores)
  json config = json::object();  // resolved relabel config

  int64_t batches_per_epoch() const {
    return (num_images + views.batch_size - 1) / views.batch_size;
  }
  int64_t total_steps() const { return epochs * batches_per_epoch(); }
  int64_t step_size(int64_t step) const;  // images in step `step`
  // Bytes of a record of n images: rows, stored views, digest, checksum.
  int64_t views_bytes(int64_t n) const;
  int64_t record_bytes(int64_t n) const;
  // Bytes of the fallback table: N rows and a checksum (0 without image labels).
  int64_t image_labels_bytes() const;
  json to_json() const;
  static LabelHeader from_json(const json& j, const std::string& path);
};

// Byte offset of step `step`'s record in a store whose records start at `data_offset`
// (records are fixed-size but for each epoch's last, smaller batch).
uint64_t record_offset(const LabelHeader& header, uint64_t data_offset, int64_t step);

// Writes a store through `path + ".partial"`, under the lock `path + ".lock"` (a second writer
// of the same store fails at once, naming the holder). The partial file has its full size from
// the start and every record goes to its fixed offset, in any order: one process writes them
// all, or the ranks of a distributed run each write theirs into the same file (the owner, rank
// 0, creates it and holds the lock; the others join it). A partial file that a killed run left
// with the same header is adopted: a record that verifies is kept (intact()). commit() checks
// that every kept step is there and renames the file into place. Memory use is one record.
class LabelStoreWriter {
 public:
  enum class Role {
    kOwner,        // creates the partial file and holds path.lock
    kOwnerLocked,  // the same, the caller holding path.lock already (core/stage_output.h)
    kJoin,         // writes its records into the owner's file
  };
  LabelStoreWriter(const std::string& path, const LabelHeader& header, Role role = Role::kOwner);
  ~LabelStoreWriter();
  LabelStoreWriter(const LabelStoreWriter&) = delete;
  LabelStoreWriter& operator=(const LabelStoreWriter&) = delete;
  // Whether step `step`'s record is already in the adopted partial file, intact (it then
  // counts as written). Not concurrently with write().
  bool intact(int64_t step);
  // The first step whose record is not intact (scans the file).
  int64_t resume_step();
  // logits: [n_s, classes], any float dtype and device, encoded by the header's codec;
  // `plan`: the step's views (their digest, and the views themselves when stored).
  void write(int64_t step, const torch::Tensor& logits, const StepPlan& plan);
  // The fallback table (header.image_labels): logits [N, classes] of every image's whole view.
  // Written by the owner; image_labels_intact() says whether an adopted file holds it already.
  void write_image_labels(const torch::Tensor& logits);
  bool image_labels_intact();
  // Flushes this process's records to the file system (a joining rank, before the owner commits).
  void sync();
  // The owner: verifies every record that another rank wrote or a killed run left, then
  // renames the partial file into place.
  void commit();
  const LabelHeader& header() const { return header_; }

 private:
  std::string path_, partial_;
  std::unique_ptr<FileLock> lock_;  // kOwner's
  bool owner_ = false;
  int fd_ = -1;
  LabelHeader header_;
  uint64_t table_offset_ = 0, data_offset_ = 0;
  bool adopted_ = false;       // the partial file may hold records (a killed run's, a rank's)
  std::vector<uint8_t> done_;  // per kept step: written here or found intact
  bool table_done_ = false;    // the fallback table: written here or found intact
};

class LabelStore {
 public:
  // Opens and validates the file: magic, header checksum and fields, exact size.
  // Throws runtime_error naming `path` and the problem.
  explicit LabelStore(const std::string& path);
  ~LabelStore();
  LabelStore(const LabelStore&) = delete;
  LabelStore& operator=(const LabelStore&) = delete;

  const LabelHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  // A kept step's rows as the codec stored them (float32, CPU) and the digest of its views
  // (0 in format-1 stores), from one read; checks the record's checksum.
  struct Step {
    LabelCodec::Rows rows;
    uint64_t digest = 0;
  };
  Step read_step(int64_t step) const;
  LabelCodec::Rows rows(int64_t step) const { return read_step(step).rows; }
  // The teacher distribution of a step at temperature T, [n_s, classes] (codec.h).
  torch::Tensor probs(int64_t step, double T) const;
  // float32 [n_s, classes] logits; stores without top-k only (an invalid_argument otherwise).
  torch::Tensor logits(int64_t step) const;
  uint64_t digest(int64_t step) const { return read_step(step).digest; }
  // The fallback table's rows, all N images in index order (image_labels stores; an
  // invalid_argument naming --labels otherwise); checks its checksum.
  LabelCodec::Rows image_rows() const;
  // The record's stored views (views_stored stores): the views block's bytes (replay.h).
  std::string views_block(int64_t step) const;
  // Checks every record; throws runtime_error at the first damaged one.
  void verify() const;

  uint64_t file_bytes() const { return size_; }
  uint64_t logit_bytes() const;  // the codec's rows alone (values, parameters, indices)
  uint64_t header_bytes() const { return header_end_; }
  // Bytes by part (header, values, quantization parameters, indices, views, digests,
  // checksums, the fallback table, total) and the compression against the 1x fp16 store of the same
  // run.
  json bytes_by_part() const;

 private:
  uint64_t record_offset(int64_t step) const;
  std::string record(int64_t step) const;  // verified bytes, checksum excluded
  std::string path_;
  LabelHeader header_;
  int fd_ = -1;
  uint64_t size_ = 0, header_end_ = 0, data_offset_ = 0;  // data: after the fallback table
};

}  // namespace lpld::labels
