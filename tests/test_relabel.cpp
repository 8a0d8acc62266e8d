// Relabel and the label store: replayed views reproduce the stored logits, the pool size,
// damage and truncation detection, and atomic writes.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/io.h"
#include "core/rng.h"
#include "data/image_io.h"
#include "fixtures.h"
#include "labels/image_set.h"
#include "labels/label_pool.h"
#include "labels/label_store.h"
#include "labels/replay.h"
#include "labels/views.h"
#include "models/checkpoint.h"
#include "recover/recover.h"
#include "relabel/relabel.h"
#include "squeeze/squeeze.h"

using namespace lpld;
namespace fs = std::filesystem;

namespace {
// Synthetic images made once for this binary.
const std::string& toy_images() {
  static test::TempDir dir;
  static std::string path = [] {
    recover::RecoverConfig c;
    c.teacher = test::toy().teacher;
    c.out = dir.path("images");
    c.ipc = 4;
    c.iterations = 20;
    recover::recover(c, Progress::null());
    return c.out;
  }();
  return path;
}

relabel::RelabelConfig small(const std::string& out, double ratio = 0) {
  relabel::RelabelConfig c;
  c.teacher = test::toy().teacher;
  c.images = toy_images();
  c.out = out;
  c.epochs = 5;
  c.views.batch_size = 5;  // 12 images: batches 5, 5, 2
  c.prune_ratio = ratio;
  return c;
}
}  // namespace

// The views are one type (labels/views.h): relabel's options go into the store's header as
// they are, and a train config set otherwise is refused option by option.
TEST(LabelStore, ViewOptionsGoFromTheConfigIntoTheHeaderAndClashesAreNamed) {
  test::TempDir dir;
  auto c = small(dir.path("v.lpld"), 0.5);
  c.views.cutmix_alpha = 0.5, c.views.crop.scale_lo = 0.25;
  relabel::relabel(c, Progress::null());
  const labels::LabelStore s(c.out);
  EXPECT_TRUE(s.header().views == c.views);
  labels::ViewOptions mine = c.views;
  mine.batch_size = 7, mine.crop.scale_lo = 0.5;
  const json set = {{"batch_size", 7}};  // crop_scale_min differs too, but was not set
  const auto clashes = labels::view_clashes(mine, s.header().views, set);
  ASSERT_EQ(clashes.size(), 1u);
  EXPECT_EQ(clashes[0].option, "--batch-size");
  EXPECT_EQ(clashes[0].mine, "7");
  EXPECT_EQ(clashes[0].theirs, "5");
  test::expect_throw_with<std::invalid_argument>(
      [] { labels::check_prune_ratio(1.0, "demo.yaml: prune_ratios"); },
      {"demo.yaml: prune_ratios: must be in [0, 1), got 1"});
}

TEST(LabelStore, StepsKeptFollowThePoolFormula) {
  EXPECT_EQ(labels::steps_for_ratio(0.0, 1500), 1500);
  EXPECT_EQ(labels::steps_for_ratio(0.9, 1500), 150);  // exactly floor(0.1 * 1500)
  EXPECT_EQ(labels::steps_for_ratio(0.975, 1500), 37);
  EXPECT_EQ(labels::steps_for_ratio(0.5, 3), 1);
  EXPECT_THROW(labels::steps_for_ratio(1.0, 10), std::invalid_argument);
  test::TempDir dir;
  for (double r : {0.0, 0.5, 0.9}) {
    auto res = relabel::relabel(small(dir.path("l.lpld"), r), Progress::null());
    labels::LabelStore s(dir.path("l.lpld"));
    EXPECT_EQ(s.header().total_steps(), 15);
    EXPECT_EQ(s.header().steps_kept, labels::steps_for_ratio(r, 15));
    EXPECT_EQ(res.steps_kept, s.header().steps_kept);
    EXPECT_EQ(res.label_bytes, fs::file_size(dir.path("l.lpld")));
  }
}

TEST(LabelStore, ReplayedViewsReproduceStoredLogits) {
  test::TempDir dir;
  for (const char* dtype : {"fp16", "fp32"}) {
    auto c = small(dir.path(std::string(dtype) + ".lpld"));
    c.logits = parse_choice<labels::LabelValues>(dtype, "test");
    relabel::relabel(c, Progress::null());
    labels::LabelStore s(c.out);
    auto ck = models::load_checkpoint(c.teacher, torch::kCPU);
    auto set = labels::ImageSet::open(c.images);
    torch::NoGradGuard g;
    for (int64_t step : {0, 2, 7, 14}) {
      auto plan = labels::plan_step(s.header(), step);
      EXPECT_EQ(static_cast<int64_t>(plan.indices.size()), step % 3 == 2 ? 2 : 5);
      auto logits = ck.model->forward(labels::render_step(
          set.read(plan.indices), data::NormTensors(s.header().norm, torch::kCPU), plan,
          s.header().image_size));
      const double tol = std::string(dtype) == "fp16" ? 1e-2 : 1e-4;
      EXPECT_TRUE(torch::allclose(s.logits(step), logits, tol, tol)) << dtype << " step " << step;
    }
    // every image appears once per epoch
    std::vector<int> seen(12, 0);
    for (int64_t step = 3; step < 6; ++step)
      for (auto i : labels::plan_step(s.header(), step).indices) ++seen[i];
    for (int v : seen) EXPECT_EQ(v, 1);
  }
}

// A pruned store is the first steps of the full one: training on it (metric random) and
// ranking steps of the full store (rule-based metrics) see the same labels for those steps.
TEST(LabelStore, PrunedStoreIsThePrefixOfTheFullStore) {
  test::TempDir dir;
  relabel::relabel(small(dir.path("full.lpld")), Progress::null());
  relabel::relabel(small(dir.path("pruned.lpld"), 0.6), Progress::null());
  labels::LabelStore full(dir.path("full.lpld")), pruned(dir.path("pruned.lpld"));
  ASSERT_EQ(pruned.header().steps_kept, 6);
  for (int64_t step = 0; step < 6; ++step)
    EXPECT_TRUE(torch::allclose(full.logits(step), pruned.logits(step), 1e-3, 1e-3)) << step;
}

TEST(LabelStore, StepDescriptionMatchesThePlan) {
  test::TempDir dir;
  relabel::relabel(small(dir.path("l.lpld")), Progress::null());
  labels::LabelStore s(dir.path("l.lpld"));
  const auto& h = s.header();
  ASSERT_TRUE(h.views.cutmix);
  for (int64_t step : {0, 4, 8}) {
    auto plan = labels::plan_step(h, step);
    json d = labels::describe_step(h, plan);
    EXPECT_EQ(d["step"], step);
    EXPECT_EQ(d["epoch"], step / 3);
    EXPECT_EQ(d["batch"], step % 3);
    EXPECT_EQ(d["images"].get<std::vector<int64_t>>(), plan.indices);
    ASSERT_EQ(d["classes"].size(), plan.indices.size());
    for (size_t i = 0; i < plan.indices.size(); ++i)
      EXPECT_EQ(d["classes"][i], h.labels[static_cast<size_t>(plan.indices[i])]);
    ASSERT_EQ(d["views"].size(), plan.indices.size());
    const auto& m = d["cutmix"];
    EXPECT_DOUBLE_EQ(m["lambda"].get<double>(), plan.mix.lambda);
    auto box = m["box"].get<std::vector<int64_t>>();
    ASSERT_EQ(box.size(), 4u);
    EXPECT_TRUE(0 <= box[0] && box[0] <= box[2] && box[2] <= h.image_size);
    EXPECT_TRUE(0 <= box[1] && box[1] <= box[3] && box[3] <= h.image_size);
    // pasted = the clipped box's share of the image, and the pixels of image k that change
    // when k's partner is another image, counted on a rendered batch (image k alone is 1)
    const double area = static_cast<double>((box[2] - box[0]) * (box[3] - box[1]));
    EXPECT_NEAR(m["pasted"].get<double>(), area / (h.image_size * h.image_size), 1e-9);
    const int64_t n = static_cast<int64_t>(plan.indices.size());
    int64_t k = 0;
    while (k < n && plan.mix.perm[k] == k) ++k;
    ASSERT_LT(k, n) << "step " << step << ": CutMix paired every image with itself";
    auto ones = torch::zeros({n, 1, h.image_size, h.image_size});
    ones.index_put_({k}, 1.0);
    auto mixed = data::apply_cutmix(ones, plan.mix);
    EXPECT_NEAR(1.0 - mixed[k].mean().item<double>(), m["pasted"].get<double>(), 1e-9);
    auto partners = m["partners"].get<std::vector<int64_t>>();
    std::sort(partners.begin(), partners.end());
    for (size_t i = 0; i < partners.size(); ++i) EXPECT_EQ(partners[i], static_cast<int64_t>(i));
  }
}

TEST(LabelStore, EveryFlippedByteAndTruncationIsDetected) {
  test::TempDir dir;
  auto c = small(dir.path("l.lpld"), 0.6);  // 6 steps
  relabel::relabel(c, Progress::null());
  const std::string good = read_file(c.out);
  const std::string bad = dir.path("bad.lpld");
  for (size_t i = 0; i < good.size(); ++i) {
    std::string b = good;
    b[i] = static_cast<char>(b[i] ^ 0x10);
    write_file_atomic(bad, b);
    EXPECT_THROW(
        {
          labels::LabelStore s(bad);
          s.verify();
        },
        std::runtime_error)
        << "byte " << i;
  }
  for (size_t cut : {good.size() - 1, good.size() - 9, good.size() / 2, size_t{30}, size_t{5}}) {
    write_file_atomic(bad, good.substr(0, cut));
    try {
      labels::LabelStore s(bad);
      s.verify();
      FAIL() << "truncated to " << cut;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos);
    }
  }
  labels::LabelStore ok(c.out);
  EXPECT_NO_THROW(ok.verify());
}

// --image-labels: the fallback table holds the teacher's logits for every image's whole view,
// sits between the header and the records (which stay byte for byte those of a store
// without it), is counted in the bytes, and is checked like a record.
TEST(LabelStore, ImageLabelsAreTheWholeViewsLogitsAndChecked) {
  test::TempDir dir;
  auto plain = small(dir.path("plain.lpld"), 0.6);
  plain.logits = labels::LabelValues::fp32;
  relabel::relabel(plain, Progress::null());
  auto c = plain;
  c.out = dir.path("table.lpld"), c.image_labels = true;
  relabel::relabel(c, Progress::null());
  labels::LabelStore store(c.out), without(plain.out);
  const auto& h = store.header();
  ASSERT_TRUE(h.image_labels);
  // off, the option is not in the header's config: stores of an lpld from before it stay reused
  EXPECT_FALSE(without.header().config.contains("image_labels"));
  EXPECT_FALSE(without.header().to_json().contains("image_labels"));
  EXPECT_TRUE(h.config.at("image_labels").get<bool>());
  EXPECT_EQ(h.image_labels_bytes(), 12 * 3 * 4 + 8);  // 12 images, 3 classes, fp32
  EXPECT_EQ(store.file_bytes() - without.file_bytes(),
            static_cast<uint64_t>(h.image_labels_bytes()) + store.header_bytes() -
                without.header_bytes());
  EXPECT_EQ(store.bytes_by_part()["image_labels"], h.image_labels_bytes());
  EXPECT_EQ(without.bytes_by_part()["image_labels"], 0);
  for (int64_t step = 0; step < h.steps_kept; ++step)
    EXPECT_TRUE(torch::equal(store.logits(step), without.logits(step))) << step;
  // the rows are the teacher's logits on each whole, unflipped image
  auto ck = models::load_checkpoint(c.teacher, torch::kCPU);
  const auto set = labels::ImageSet::open(c.images);
  labels::StepPlan whole;
  for (int64_t i = 0; i < 12; ++i) whole.indices.push_back(i);
  whole.views.assign(12, data::View{});
  torch::NoGradGuard ng;
  const auto expected = ck.model->forward(labels::render_step(
      set.read(whole.indices), data::NormTensors(h.norm, torch::kCPU), whole, h.image_size));
  EXPECT_TRUE(torch::allclose(store.image_rows().values, expected, 1e-5, 1e-5));
  test::expect_throw_with<std::invalid_argument>([&] { without.image_rows(); },
                                                 {"--labels", plain.out, "--image-labels"});
  // a flipped byte in the table is named at open-and-verify and by image_rows
  std::string bytes = read_file(c.out);
  const size_t table = static_cast<size_t>(store.header_bytes()) + 7;
  bytes[table] = static_cast<char>(bytes[table] ^ 0x04);
  const std::string bad = dir.path("bad.lpld");
  write_file_atomic(bad, bytes);
  labels::LabelStore damaged(bad);
  test::expect_throw_with<std::runtime_error>([&] { damaged.image_rows(); },
                                              {bad, "image labels are damaged"});
  EXPECT_THROW(damaged.verify(), std::runtime_error);
}

// A relabel killed mid-write leaves no store under the final name, only its partial file
// (which is not a valid store); the re-run resumes it and writes the bytes an uninterrupted
// run writes, leaving nothing behind.
TEST(LabelStore, KilledWriteResumesToTheSameBytes) {
  const char* bin = std::getenv("LPLD_BINARY");
  if (bin == nullptr || !fs::exists(bin)) GTEST_SKIP() << "LPLD_BINARY not set";
  test::TempDir dir;
  const std::string images = toy_images();
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{
        bin,        "--quiet", "--threads", "1", "relabel",  "--teacher", test::toy().teacher,
        "--images", images,    "--out",     out, "--epochs", "30000",     "--batch-size",
        "4"};
  };
  auto run = [](const std::vector<std::string>& a) {
    std::vector<char*> argv;
    for (const auto& x : a) argv.push_back(const_cast<char*>(x.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      execv(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  };
  const std::string whole = dir.path("whole.lpld"), out = dir.path("killed.lpld");
  int status = 0;
  waitpid(run(args(whole)), &status, 0);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  const pid_t pid = run(args(out));
  // wait until a good part of the store is written (the partial file has its full size from
  // the start, but its unwritten records are holes), then kill
  for (int i = 0; i < 4000; ++i) {
    usleep(2000);
    struct stat st {};
    if (::stat((out + ".partial").c_str(), &st) == 0 &&
        st.st_blocks * 512 > static_cast<off_t>(fs::file_size(whole) / 3))
      break;
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  EXPECT_FALSE(fs::exists(out));
  ASSERT_TRUE(fs::exists(out + ".partial"));
  EXPECT_THROW(labels::LabelStore s(out + ".partial"), std::runtime_error);
  waitpid(run(args(out)), &status, 0);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(read_file(out), read_file(whole));
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_TRUE(e.path().extension() == ".lpld" || fs::is_directory(e.path())) << e.path();
}

TEST(LabelStore, UncommittedWriterLeavesAPartialFileThatResumes) {
  test::TempDir dir;
  labels::LabelHeader h;
  h.num_images = 2, h.num_classes = 2, h.epochs = 2, h.views.batch_size = 2, h.steps_kept = 2;
  h.images = {"a", "b"};
  h.labels = {0, 1};
  {
    labels::LabelStoreWriter w(dir.path("x.lpld"), h);
    EXPECT_EQ(w.resume_step(), 0);
    w.write(0, torch::ones({2, 2}), labels::plan_step(h, 0));
    // a second writer of the same store is refused while the first holds it
    EXPECT_THROW(labels::LabelStoreWriter(dir.path("x.lpld"), h), std::runtime_error);
  }
  EXPECT_FALSE(fs::exists(dir.path("x.lpld")));
  EXPECT_TRUE(fs::exists(dir.path("x.lpld.partial")));
  {
    labels::LabelStoreWriter w(dir.path("x.lpld"), h);
    EXPECT_EQ(w.resume_step(), 1);  // step 0 verified
    w.write(1, torch::zeros({2, 2}), labels::plan_step(h, 1));
    w.commit();
  }
  labels::LabelStore s(dir.path("x.lpld"));
  EXPECT_TRUE(torch::equal(s.logits(0), torch::ones({2, 2})));
  EXPECT_FALSE(fs::exists(dir.path("x.lpld.partial")));
  EXPECT_FALSE(fs::exists(dir.path("x.lpld.lock")));
  // a partial file of another header starts over
  {
    labels::LabelStoreWriter w(dir.path("y.lpld"), h);
    w.write(0, torch::ones({2, 2}), labels::plan_step(h, 0));
  }
  h.seed = 7;
  labels::LabelStoreWriter w(dir.path("y.lpld"), h);
  EXPECT_EQ(w.resume_step(), 0);
}

// On the CPU each forward runs on one thread, one per core (relabel.cpp): the store is the
// same bytes at any thread count. 100 classes of 32 px noise and a convnet-d2-w16 teacher:
// with 2 threads inside each forward its logits differ in their last bits from 1 thread's.
TEST(Relabel, TheStoreIsTheSameBytesAtOneAndTwoThreads) {
  test::TempDir dir;
  torch::manual_seed(0);
  for (int c = 0; c < 100; ++c)
    for (int i = 0; i < 2; ++i)
      data::write_png(fmt::format("{}/c{:03}/{}.png", dir.path("data"), c, i),
                      torch::randint(0, 256, {3, 32, 32}, torch::kUInt8));
  squeeze::SqueezeConfig sq;
  sq.data = sq.val = "imagefolder:" + dir.path("data");
  sq.arch = "convnet-d2-w16";
  sq.epochs = 1;
  sq.batch_size = 100;
  sq.out = dir.path("teacher.pt");
  squeeze::squeeze(sq, Progress::null());
  recover::RecoverConfig rc;
  rc.teacher = sq.out;
  rc.ipc = 1;
  rc.iterations = 2;
  rc.stall_restarts = 0;
  rc.out = dir.path("images");
  recover::recover(rc, Progress::null());
  relabel::RelabelConfig c;
  c.teacher = sq.out;
  c.images = rc.out;
  c.epochs = 4;
  c.views.batch_size = 50;
  c.image_labels = true;  // (the fallback table too)
  const int threads = at::get_num_threads();
  for (int t : {1, 2}) {
    at::set_num_threads(t);
    c.out = dir.path(fmt::format("t{}.lpld", t));
    relabel::relabel(c, Progress::null());
  }
  at::set_num_threads(threads);
  EXPECT_TRUE(read_file(dir.path("t1.lpld")) == read_file(dir.path("t2.lpld")))
      << "the stores at 1 and 2 threads differ";
}

TEST(Relabel, MetadataIsSmallNextToLogits) {
  test::TempDir dir;
  auto c = small(dir.path("l.lpld"));
  c.epochs = 100;
  auto r = relabel::relabel(c, Progress::null());
  // per step: 8 checksum bytes next to 5 x 3 x 2 logit bytes; the header is fixed-size
  EXPECT_EQ(r.logit_bytes, static_cast<uint64_t>(100 * 12 * 3 * 2));
  EXPECT_EQ(r.metadata_bytes, r.label_bytes - r.logit_bytes);
  EXPECT_GT(r.image_bytes, 0);
}

// The image set's identity comes from recover's records (class order from the manifest,
// names, sizes and hashes from class.json), with the same hash as hashing every file; a
// changed or extra image is an error naming it; pixels come from a cache built once.
TEST(ImageSet, IdentityFromRecoverRecordsAndPixelsFromTheCache) {
  test::TempDir dir;
  const std::string images = toy_images();
  const auto set = labels::ImageSet::open(images);
  EXPECT_EQ(set.size(), 12);
  // the same hash as listing and hashing every file (the formula older stores recorded)
  std::string ids;
  for (const auto& p : set.paths()) ids += p + '\0' + hash_file(images + "/" + p) + '\n';
  EXPECT_EQ(set.hash(), hash_bytes(ids.data(), ids.size()));
  // pixels equal a fresh decode, in any order asked
  auto some = set.read({11, 0, 5});
  EXPECT_TRUE(torch::equal(some[0], data::read_image(images + "/" + set.paths()[11])));
  EXPECT_TRUE(torch::equal(some[2], data::read_image(images + "/" + set.paths()[5])));
  int caches = 0;
  for (const auto& e : fs::directory_iterator(images + "/.lpld-cache"))
    caches += e.path().extension() == ".u8";
  EXPECT_EQ(caches, 1);
  // a copy of the folder, then changed: an extra image, a replaced image
  const std::string copy = dir.path("copy");
  fs::copy(images, copy, fs::copy_options::recursive);
  const std::string first = copy + "/" + set.paths()[0];
  fs::copy_file(first, copy + "/" + fs::path(set.paths()[0]).parent_path().string() + "/extra.png");
  EXPECT_THROW(labels::ImageSet::open(copy), std::runtime_error);
  fs::remove(copy + "/" + fs::path(set.paths()[0]).parent_path().string() + "/extra.png");
  write_file_atomic(first, read_file(first) + "x");
  try {
    labels::ImageSet::open(copy);
    FAIL() << "a changed image was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(set.paths()[0]), std::string::npos) << e.what();
  }
}

// The label store header holds ImageNet-21K at IPC 200: ~2.1 M image paths.
TEST(LabelStore, HeaderHoldsTwoMillionImagePaths) {
  test::TempDir dir;
  labels::LabelHeader h;
  h.num_images = 2'100'000, h.num_classes = 10'450, h.epochs = 1, h.views.batch_size = 1000;
  h.image_size = 32;
  h.steps_kept = 1;
  h.images.reserve(h.num_images);
  for (int64_t i = 0; i < h.num_images; ++i) {
    h.images.push_back(
        fmt::format("{:05d}_n{:08d}/{:05d}.png", i % 10'450, i % 10'450, i / 10'450));
    h.labels.push_back(i % 10'450);
  }
  {
    labels::LabelStoreWriter w(dir.path("big.lpld"), h);
    w.write(0, torch::zeros({1000, 10'450}), labels::plan_step(h, 0));
    w.commit();
  }
  labels::LabelStore s(dir.path("big.lpld"));
  EXPECT_EQ(s.header().images.size(), 2'100'000u);
  EXPECT_EQ(s.header().images.back(), h.images.back());
  EXPECT_TRUE(torch::equal(s.logits(0), torch::zeros({1000, 10'450})));
}

// Known answers of the random streams and the views (replay version 1). A label store is
// replayed from these draws: a change to any of them (order, formula, rounding) must fail
// here, and bump labels::kReplayVersion, instead of silently changing users' labels.
// The constants were computed by lpld and agree with python/lpld_labels.py.
TEST(KnownAnswer, RandomStreams) {
  EXPECT_EQ(derive_seed(7, kTagView, 3, 0), 0xe21d0a42d2165003ull);
  Rng rng(0xe21d0a42d2165003ull);
  EXPECT_EQ(rng.next(), 0xa5be58e7cfa44599ull);
  EXPECT_EQ(rng.next(), 0xd58cce3a8e2872b9ull);
  EXPECT_EQ(rng.next(), 0x7af84b7f7b840581ull);
  EXPECT_EQ(Rng(derive_seed(0, kTagEpochOrder, 2)).permutation(10),
            (std::vector<int64_t>{8, 9, 5, 6, 0, 7, 3, 1, 4, 2}));
}

TEST(KnownAnswer, ViewsAndCutMix) {
  Rng rng(derive_seed(0, kTagView, 5));
  const data::CropOptions crop;
  const float want[4][4] = {{0x1.24924ap-4f, 0x1p-3f, 0x1.6db6dcp-1f, 0x1.2p-1f},
                            {0, 0, 0x1.edb6dcp-1f, 0x1.fp-1f},
                            {0x1.492492p-2f, 0x1.1p-1f, 0x1.492492p-1f, 0x1.cp-2f},
                            {0x1.24924ap-5f, 0x1p-4f, 0x1.edb6dcp-1f, 0x1.dp-1f}};
  const bool flips[4] = {true, false, true, false};
  for (int i = 0; i < 4; ++i) {
    const auto v = data::random_view(rng, 32, 28, crop);
    EXPECT_EQ(v.x0, want[i][0]) << i;
    EXPECT_EQ(v.y0, want[i][1]) << i;
    EXPECT_EQ(v.w, want[i][2]) << i;
    EXPECT_EQ(v.h, want[i][3]) << i;
    EXPECT_EQ(v.flip, flips[i]) << i;
  }
  Rng mix_rng(derive_seed(0, kTagCutMix, 5));
  auto m = data::random_cutmix(mix_rng, 8, 32, 32, 1.0);
  EXPECT_EQ(m.perm, (std::vector<int64_t>{1, 7, 4, 2, 0, 3, 6, 5}));
  EXPECT_EQ(m.lambda, 0x1.b0ecf7bd48c42p-1);
  EXPECT_EQ(std::vector<int64_t>({m.x1, m.y1, m.x2, m.y2}), (std::vector<int64_t>{20, 0, 32, 8}));
  Rng beta_rng(derive_seed(0, kTagCutMix, 6));  // alpha != 1: the Gamma path
  auto b = data::random_cutmix(beta_rng, 4, 32, 32, 0.5);
  EXPECT_EQ(b.perm, (std::vector<int64_t>{1, 2, 0, 3}));
  EXPECT_EQ(b.lambda, 0x1.e18f8f97b37bcp-1);
  EXPECT_EQ(std::vector<int64_t>({b.x1, b.y1, b.x2, b.y2}), (std::vector<int64_t>{4, 8, 10, 14}));
}

TEST(KnownAnswer, StepPlanAndDigest) {
  labels::LabelHeader h;
  h.num_images = 10, h.views.batch_size = 4, h.image_size = 32, h.seed = 3, h.epochs = 2;
  h.num_classes = 2;
  const auto p = labels::plan_step(h, 5);
  EXPECT_EQ(p.indices, (std::vector<int64_t>{5, 7}));
  EXPECT_EQ(std::vector<int64_t>({p.mix.x1, p.mix.y1, p.mix.x2, p.mix.y2}),
            (std::vector<int64_t>{10, 7, 20, 17}));
  EXPECT_EQ(p.mix.perm, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(labels::plan_digest(p), 0x8634adc3b4e5913dull);
  EXPECT_EQ(labels::kReplayVersion, 1);
}

// The label codecs: fp32 exact, fp16/bf16 to their precision, int8/int4 within half a step of
// the row's range; top-k keeps the k largest logits with their classes.
TEST(LabelCodec, RoundTripsWithinTheirPrecision) {
  torch::manual_seed(0);
  auto x = torch::randn({6, 50}) * 5;
  ASSERT_EQ(labels::label_values_formats().size(), 8u);  // a new format needs its tolerance
  for (const auto& format : labels::label_values_formats()) {
    const std::string values = format.name;
    for (int64_t k : {0, 7}) {
      labels::LabelCodec codec{k, format.values};
      const std::string bytes = codec.encode(x);
      ASSERT_EQ(static_cast<int64_t>(bytes.size()), 6 * codec.row_bytes(50));
      auto rows = codec.decode(bytes.data(), 6, 50);
      auto ref = k ? std::get<0>(x.topk(k, 1)) : x;
      if (codec.max_relative()) ref = ref - std::get<0>(ref.max(1, true));  // shifted to max 0
      if (k) {
        auto kept = std::get<1>(x.topk(k, 1));
        EXPECT_TRUE(torch::equal(rows.indices, kept)) << values;
      }
      const auto range = (std::get<0>(ref.max(1)) - std::get<0>(ref.min(1))).max().item<double>();
      const double tol = values == "fp32"   ? 0
                         : values == "fp16" ? 5e-3 * 20
                         : values == "bf16" ? 4e-2 * 20
                         : values == "int8" ? range / 255 / 2 * 1.01 + 1e-2
                         : values == "int4" ? range / 15 / 2 * 1.01 + 1e-2
                         // the scale byte rounds the step up by at most 1/16
                         : values == "int8-max" ? range / 255 / 2 * 1.07
                         : values == "int4-max" ? range / 15 / 2 * 1.07
                                                : range / 3 / 2 * 1.07;
      EXPECT_LE((rows.values - ref).abs().max().item<double>(), tol) << values << " k " << k;
    }
  }
  // bytes: 50 classes, top 7 as int4 = 4 value bytes + 4 parameter bytes + 14 index bytes
  EXPECT_EQ((labels::LabelCodec{7, labels::LabelValues::int4}.row_bytes(50)), 22);
  EXPECT_EQ((labels::LabelCodec{7, labels::LabelValues::int4_max}.row_bytes(50)), 19);
  EXPECT_EQ((labels::LabelCodec{0, labels::LabelValues::int4_max}.row_bytes(10)), 6);
  EXPECT_EQ((labels::LabelCodec{0, labels::LabelValues::int2_max}.row_bytes(10)), 4);
  EXPECT_EQ((labels::LabelCodec{0, labels::LabelValues::fp16}.row_bytes(50)), 100);
}

// The int8-max / int4-max scale byte and row bytes, known answers frozen here (a reader in
// any language must decode them the same): scale = (16 + low nibble) * 2^(high nibble - 12).
TEST(LabelCodec, MaxRelativeRowsHaveTheirDocumentedBytes) {
  EXPECT_EQ(labels::max_relative_scale(0), std::ldexp(1.f, -8));
  EXPECT_EQ(labels::max_relative_scale(0x80), 1.f);
  EXPECT_EQ(labels::max_relative_scale(0x81), 1.0625f);
  EXPECT_EQ(labels::max_relative_scale(255), 248.f);
  EXPECT_EQ(labels::max_relative_code(1.f), 0x80);
  EXPECT_EQ(labels::max_relative_code(1.01f), 0x81);  // never below the needed step
  EXPECT_EQ(labels::max_relative_code(1e-9f), 0);
  EXPECT_EQ(labels::max_relative_code(1e9f), 255);
  // range 15 over 15 levels: scale 1; q = 0, 1, 2 (2.5 to even), 15; nibbles low first
  const auto x = torch::tensor({{3.f, 2.f, 0.5f, -12.f}});
  const std::string b = labels::LabelCodec{0, labels::LabelValues::int4_max}.encode(x);
  EXPECT_EQ(b, std::string("\x10\xf2\x80", 3));
  const auto rows = labels::LabelCodec{0, labels::LabelValues::int4_max}.decode(b.data(), 1, 4);
  EXPECT_TRUE(torch::equal(rows.values, torch::tensor({{0.f, -1.f, -2.f, -15.f}})));
  // int8-max: range 1 over 255 levels needs a step >= 1/255: 2^-8 * 17/16 (code 1)
  const std::string b8 =
      labels::LabelCodec{0, labels::LabelValues::int8_max}.encode(torch::tensor({{1.f, 0.f}}));
  EXPECT_EQ(b8, std::string("\x00\xf1\x01", 3));
  // int2-max: range 6 over 3 levels: scale 2; q = 0, 1 (1.25), 2, 3, 0 (0.5 to even); four a
  // byte, the first in the lowest bits, then the scale byte (2 = 16 * 2^(9 - 12): 0x90)
  const auto x2 = torch::tensor({{3.f, 0.5f, -1.f, -3.f, 2.f}});
  const std::string b2 = labels::LabelCodec{0, labels::LabelValues::int2_max}.encode(x2);
  EXPECT_EQ(b2, std::string("\xe4\x00\x90", 3));
  EXPECT_TRUE(torch::equal(
      labels::LabelCodec{0, labels::LabelValues::int2_max}.decode(b2.data(), 1, 5).values,
      torch::tensor({{0.f, -2.f, -4.f, -6.f, 0.f}})));
  // A name the table lacks is an error, never a prefix match ("int2" was once 8-bit).
  for (const char* bad : {"int2", "int8-", "fp8", ""})
    test::expect_throw_with<std::invalid_argument>(
        [&] { parse_choice<labels::LabelValues>(bad, "--logits"); },
        {"--logits: must be fp32, fp16, bf16, int8, int4, int8-max, int4-max or int2-max"});
  EXPECT_THROW(labels::LabelCodec({-1, labels::LabelValues::fp16}).validate(),
               std::invalid_argument);
}
