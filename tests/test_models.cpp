// Models: shapes, torchvision parameter names and counts, BN input capture, checkpoints.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "core/safetensors.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "test_util.h"

using namespace lpld;
using namespace lpld::models;

namespace {
int64_t count_params(ClassifierImpl& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}
}  // namespace

TEST(Models, ConvNetShapes) {
  auto m = make_model({"convnet-d3-w64", 10, 1, 28});
  auto x = torch::randn({4, 1, 28, 28});
  EXPECT_EQ(m->features(x).sizes(), (std::vector<int64_t>{4, 64 * 3 * 3}));
  EXPECT_EQ(m->forward(x).sizes(), (std::vector<int64_t>{4, 10}));
  EXPECT_EQ(m->batchnorms().size(), 3u);
  EXPECT_EQ(m->batchnorms()[0].first, "features.1");
  auto m32 = make_model({"convnet-d3-w128", 100, 3, 32});
  EXPECT_EQ(m32->forward(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 100}));
}

TEST(Models, ResNetMatchesTorchvisionNamesAndSizes) {
  // torchvision: resnet18 11,689,512 and resnet50 25,557,032 parameters at 1000 classes.
  auto r18 = make_model({"resnet18-imagenet", 1000, 3, 224});
  EXPECT_EQ(count_params(*r18), 11689512);
  auto r50 = make_model({"resnet50-imagenet", 1000, 3, 224});
  EXPECT_EQ(count_params(*r50), 25557032);
  auto r34 = make_model({"resnet34", 1000, 3, 224});
  EXPECT_EQ(count_params(*r34), 21797672);
  std::set<std::string> names;
  for (const auto& p : r18->named_parameters()) names.insert(p.key());
  for (const auto& b : r18->named_buffers()) names.insert(b.key());
  for (const char* n :
       {"conv1.weight", "bn1.weight", "bn1.running_mean", "bn1.num_batches_tracked",
        "layer1.0.conv1.weight", "layer1.1.bn2.bias", "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.running_var", "layer4.1.conv2.weight", "fc.weight", "fc.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_EQ(names.size(), 62u + 60u);  // 62 parameters + 3 buffers x 20 BN layers
  EXPECT_EQ(r18->batchnorms().size(), 20u);
  std::set<std::string> names50;
  for (const auto& p : r50->named_parameters()) names50.insert(p.key());
  EXPECT_TRUE(names50.count("layer3.5.conv3.weight"));
  EXPECT_TRUE(names50.count("layer1.0.downsample.1.weight"));
}

TEST(Models, SmallStemShapes) {
  auto m = make_model({"resnet18", 200, 3, 64});  // auto: small stem at 64 px
  auto x = torch::randn({2, 3, 64, 64});
  EXPECT_EQ(m->features(x).sizes(), (std::vector<int64_t>{2, 512}));
  EXPECT_EQ(m->named_parameters()["conv1.weight"].sizes(), (std::vector<int64_t>{64, 3, 3, 3}));
  auto big = make_model({"resnet18", 10, 3, 224});
  EXPECT_EQ(big->named_parameters()["conv1.weight"].sizes(), (std::vector<int64_t>{64, 3, 7, 7}));
  EXPECT_THROW(make_model({"vgg11", 10, 3, 32}), std::invalid_argument);
  EXPECT_THROW(make_model({"convnet-d6-w8", 10, 1, 28}), std::invalid_argument);
}

TEST(Models, BnCaptureHandsOutInputsOnlyWhileInstalled) {
  auto m = make_model({"convnet-d2-w8", 3, 1, 16});
  m->eval();
  auto x = torch::randn({5, 1, 16, 16});
  {
    BnCapture cap(*m);
    m->forward(x);
    ASSERT_EQ(cap.inputs().size(), 2u);
    EXPECT_EQ(cap.inputs()[0].sizes(), (std::vector<int64_t>{5, 8, 16, 16}));
    EXPECT_EQ(cap.inputs()[1].sizes(), (std::vector<int64_t>{5, 8, 8, 8}));
    // the first BN input is the first conv's output
    auto conv = m->named_modules()["features.0"]->as<torch::nn::Conv2d>();
    EXPECT_TRUE(torch::allclose(cap.inputs()[0], conv->forward(x)));
  }
  // without a capture the forward still works and nothing is kept
  EXPECT_EQ(m->forward(x).sizes(), (std::vector<int64_t>{5, 3}));
}

TEST(Models, CheckpointRoundTrip) {
  test::TempDir dir;
  Checkpoint ck;
  ck.meta.arch = "convnet-d2-w8";
  ck.meta.num_classes = 3;
  ck.meta.channels = 1;
  ck.meta.image_size = 16;
  ck.meta.class_names = {"a", "b", "c"};
  ck.meta.norm = {{0.5f}, {0.25f}};
  ck.meta.dataset = "test";
  ck.meta.seed = 42;
  ck.model = make_model({ck.meta.arch, 3, 1, 16});
  {
    torch::NoGradGuard g;
    for (auto& b : ck.model->named_buffers())
      if (b.key().find("running_mean") != std::string::npos) b.value().normal_();
  }
  for (const auto& [name, bn] : ck.model->batchnorms()) {
    ck.class_stats.mean[name] = torch::randn({3, 8});
    ck.class_stats.var[name] = torch::rand({3, 8});
  }
  ck.class_stats.count = torch::tensor({1, 2, 3}, torch::kInt64);
  save_checkpoint(dir.path("m.safetensors"), ck);
  auto back = load_checkpoint(dir.path("m.safetensors"), torch::kCPU);
  EXPECT_EQ(back.meta.class_names, ck.meta.class_names);
  EXPECT_EQ(back.meta.seed, 42u);
  auto x = torch::randn({2, 1, 16, 16});
  ck.model->eval();
  EXPECT_TRUE(torch::allclose(back.model->forward(x), ck.model->forward(x)));
  for (const auto& [name, t] : ck.class_stats.mean)
    EXPECT_TRUE(torch::equal(back.class_stats.mean[name], t));
  EXPECT_TRUE(torch::equal(back.class_stats.count, ck.class_stats.count));
  EXPECT_THROW(load_checkpoint(dir.path("nope"), torch::kCPU), std::runtime_error);
}

namespace {
// Rewrites a safetensors file with its header (JSON) changed by `edit` and its data section
// changed by `edit_data`; the header length is recomputed.
void rewrite(const std::string& path, const std::function<void(json&)>& edit,
             const std::function<void(std::string&)>& edit_data = nullptr) {
  const std::string bytes = read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  json h = json::parse(bytes.substr(8, n));
  std::string data = bytes.substr(8 + n);
  h["__metadata__"].erase(kHeaderChecksumKey);  // edited by hand: unsigned (the structural
  edit(h);                                      // checks below come before the signature's)
  if (edit_data) edit_data(data);
  std::string text = h.dump();
  while (text.size() % 8) text.push_back(' ');
  const uint64_t len = text.size();
  std::string out(reinterpret_cast<const char*>(&len), 8);
  write_file_atomic(path, out + text + data);
}

// A 3-class convnet-d2-w8 checkpoint on 16 px grey images (the damage tests' subject).
Checkpoint small_checkpoint(std::vector<std::string> class_names = {"a", "b", "c"}) {
  Checkpoint ck;
  ck.meta.arch = "convnet-d2-w8";
  ck.meta.num_classes = 3, ck.meta.channels = 1, ck.meta.image_size = 16;
  ck.meta.class_names = std::move(class_names);
  ck.meta.norm = {{0.5f}, {0.25f}};
  ck.model = make_model({"convnet-d2-w8", 3, 1, 16});
  return ck;
}

std::string load_error(const std::string& path) {
  try {
    load_checkpoint(path, torch::kCPU);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "loaded";
}
}  // namespace

// Checkpoints are verified like label stores: every damage found by the hostile-user tests
// (issue: nothing silently wrong) is now an error naming the file and the problem.
TEST(Models, DamagedCheckpointsAreRejectedNotLoaded) {
  test::TempDir dir;
  const std::string good = dir.path("good.safetensors");
  save_checkpoint(good, small_checkpoint());
  EXPECT_EQ(load_error(good), "loaded");
  auto variant = [&](const std::string& name) {
    const std::string p = dir.path(name + ".safetensors");
    write_file_atomic(p, read_file(good));
    return p;
  };
  auto expect = [&](const std::string& p, const std::string& what) {
    const std::string e = load_error(p);
    EXPECT_NE(e.find(p), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
  };
  // flipped weight bytes
  auto flipped = variant("flipped");
  rewrite(
      flipped, [](json&) {}, [](std::string& d) { d[100] = static_cast<char>(~d[100]); });
  expect(flipped, "data checksum mismatch");
  // overlapping tensor offsets
  auto overlap = variant("overlap");
  rewrite(overlap, [](json& h) {
    auto& w = h["model.features.0.weight"]["data_offsets"];
    auto& b = h["model.features.0.bias"]["data_offsets"];
    const uint64_t len = b[1].get<uint64_t>() - b[0].get<uint64_t>();
    b[0] = w[0];
    b[1] = w[0].get<uint64_t>() + len;
  });
  expect(overlap, "in the data section");  // moving it overlaps one tensor and leaves a gap
  // I32 declared over F32 data
  auto retyped = variant("retyped");
  rewrite(retyped, [](json& h) { h["model.classifier.weight"]["dtype"] = "I32"; });
  expect(retyped, "is Int, not Float");
  // trailing bytes and an extra tensor
  auto trailing = variant("trailing");
  rewrite(
      trailing, [](json&) {}, [](std::string& d) { d += "junkjunk"; });
  expect(trailing, "trailing bytes");
  // an element count that overflows, a negative dimension
  auto huge = variant("huge");
  rewrite(huge, [](json& h) { h["model.classifier.weight"]["shape"] = {1ull << 40, 1ull << 40}; });
  expect(huge, "too large");
  auto negative = variant("negative");
  rewrite(negative, [](json& h) { h["model.classifier.weight"]["shape"] = {-3, 24}; });
  expect(negative, "negative");
  // a negative running variance, in a file without checksum (an older lpld's: accepted, but
  // its statistics are still checked)
  auto badvar = variant("badvar");
  const auto older_lpld = [](json& h) {  // version 1: no checksums required
    h["__metadata__"].erase(kDataChecksumKey);
    h["__metadata__"]["format_version"] = "1";
  };
  rewrite(badvar, older_lpld, nullptr);
  {
    auto f = load_safetensors(badvar);
    EXPECT_FALSE(f.checksum_verified);
    f.tensors["model.features.1.running_var"][0] = -1.0f;
    f.metadata.erase(kDataChecksumKey);
    save_safetensors(badvar, f);  // writes checksums again: remove them once more
    rewrite(badvar, older_lpld);
  }
  expect(badvar, "negative variances");
  auto older = variant("older");
  rewrite(older, older_lpld);
  EXPECT_EQ(load_error(older), "loaded");
  // a version-2 file whose header lost its checksum
  auto unsigned_v2 = variant("unsigned");
  rewrite(unsigned_v2, [](json&) {});
  expect(unsigned_v2, "no header checksum");
  auto extra = variant("extra");
  {
    auto f = load_safetensors(extra);
    f.tensors["model.stowaway"] = torch::zeros({2});
    save_safetensors(extra, f);
  }
  expect(extra, "tensors the model does not have");
}

// The header is covered too (issue: a damaged class name flowed on into recover's folders):
// every one-bit change of a header byte is rejected, none loads.
TEST(Models, EveryDamagedHeaderByteIsRejected) {
  test::TempDir dir;
  const std::string good = dir.path("good.safetensors"), bad = dir.path("bad.safetensors");
  save_checkpoint(good, small_checkpoint({"Trouser", "b", "c"}));
  const std::string bytes = read_file(good);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  int loaded = 0, tried = 0;
  for (uint64_t i = 8; i < 8 + n; ++i) {
    if (bytes[i] == ' ' && i > 8 && bytes.find_first_not_of(' ', i) >= 8 + n) break;  // padding
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x01);
    write_file_atomic(bad, damaged);
    ++tried;
    if (load_error(bad) == "loaded") ++loaded, ADD_FAILURE() << "byte " << i << " accepted";
  }
  EXPECT_GT(tried, 500);
  EXPECT_EQ(loaded, 0);
}
