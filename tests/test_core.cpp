// Core utilities: tensor files, atomic writes, the progress log, the replayable RNG, declared
// options, the serial worker.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/version.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/dist.h"
#include "core/io.h"
#include "core/options.h"
#include "core/progress.h"
#include "core/read_ahead.h"
#include "core/rng.h"
#include "core/runtime.h"
#include "core/safetensors.h"
#include "core/torch_file.h"
#include "core/worker.h"
#include "test_util.h"

using namespace lpld;

TEST(Safetensors, RoundTripKeepsValuesDtypesAndMetadata) {
  test::TempDir dir;
  TensorFile f;
  f.tensors["a"] = torch::randn({3, 4});
  f.tensors["b.c"] = torch::arange(10, torch::kInt64);
  f.tensors["h"] = torch::randn({5}).to(torch::kFloat16);
  f.tensors["u"] = torch::randint(0, 255, {2, 2}, torch::kUInt8);
  f.metadata["format"] = "x";
  save_safetensors(dir.path("t.safetensors"), f);
  TensorFile g = load_safetensors(dir.path("t.safetensors"));
  ASSERT_EQ(g.tensors.size(), 4u);
  for (const auto& [k, t] : f.tensors) {
    EXPECT_EQ(g.tensors[k].scalar_type(), t.scalar_type()) << k;
    EXPECT_TRUE(torch::equal(g.tensors[k], t)) << k;
  }
  EXPECT_EQ(g.metadata["format"], "x");
}

TEST(Safetensors, TruncatedFileIsAnErrorNamingIt) {
  test::TempDir dir;
  TensorFile f;
  f.tensors["a"] = torch::randn({100});
  const std::string path = dir.path("t.safetensors");
  save_safetensors(path, f);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);
  test::expect_throw_with([&] { load_safetensors(path); }, {path});
  std::ofstream(path) << "garbage";
  EXPECT_THROW(load_safetensors(path), std::runtime_error);
  EXPECT_THROW(load_safetensors(dir.path("missing")), std::runtime_error);
}

namespace {
// A torch.save archive whose data.pkl is `pickle` (and whose storage "0" is `storage`, when
// given), written by libtorch's own zip writer.
std::string torch_zip(const std::string& path, const std::string& pickle,
                      const std::string& storage = "") {
  caffe2::serialize::PyTorchStreamWriter w(path);
  w.writeRecord("data.pkl", pickle.data(), pickle.size());
  if (!storage.empty()) w.writeRecord("data/0", storage.data(), storage.size());
  w.writeEndOfFile();
  return path;
}
}  // namespace

// Found by fuzzing (bench/fuzz_findings.md): pickles whose values hold themselves or nest
// very deep. The leak of a list that holds itself shows under LeakSanitizer, where make
// test's fuzz smoke run replays fuzz/corpus/torch_file/regress-cyclic-list.
TEST(TorchFile, SelfHoldingAndDeepPicklesAreErrorsOrNothingNotCrashes) {
  test::TempDir dir;
  // {"self": <the dict itself>}: the flattening into tensor names recursed without end
  const char cyclic[] = "\x80\x02}q\x00X\x04\x00\x00\x00selfq\x01h\x00s.";
  const std::string path =
      torch_zip(dir.path("cyclic.pth"), std::string(cyclic, sizeof cyclic - 1));
  test::expect_throw_with([&] { load_torch_file(path); }, {path + ": ", "nested more than"});
  // 1,000,000 tuples, each in the next: they were freed recursively, past the stack
  const std::string deep = std::string("\x80\x02)") + std::string(1000000, '\x85') + ".";
  EXPECT_TRUE(load_torch_file(torch_zip(dir.path("deep.pth"), deep)).empty());
}

// Found by fuzzing (bench/fuzz_findings.md): libtorch's zip reader allocates the size a record
// declares before reading it, so a 2.4 KB file that claimed 4 GiB made it allocate 4 GiB
// (fuzz/corpus/torch_file/regress-oom-declared-size: make test's fuzz smoke run replays it
// under a 3 GB allocation limit). The archive's directory is now checked first, and the error
// names the entry and its declared size.
TEST(TorchFile, RecordDeclaredLargerThanTheFileIsNamedInTheError) {
  test::TempDir dir;
  const std::string empty_dict = "\x80\x02}.";  // PROTO 2, EMPTY_DICT, STOP
  const std::string path = torch_zip(dir.path("big.pth"), empty_dict);
  EXPECT_TRUE(load_torch_file(path).empty());
  // data.pkl's uncompressed size in the central directory (offset 24 of its entry): 2 GiB
  std::string bytes = read_file(path);
  const size_t entry = bytes.find("PK\x01\x02");
  ASSERT_NE(entry, std::string::npos);
  const uint32_t two_gib = 0x7FFFFFFF;
  std::memcpy(bytes.data() + entry + 24, &two_gib, 4);
  write_file_atomic(path, bytes);
  test::expect_throw_with([&] { load_torch_file(path); },
                          {path + ": zip entry", "declares 2147483647 bytes"});
}

namespace {
std::string pickle_str(const std::string& s) {  // BINUNICODE: length (4 bytes LE), UTF-8
  const uint32_t n = s.size();
  return "X" + std::string(reinterpret_cast<const char*>(&n), 4) + s;
}
std::string pickle_ints(const std::vector<int64_t>& v) {  // a tuple of LONG1 (8-byte) ints
  std::string out = "(";
  for (int64_t x : v) out += "\x8a\x08" + std::string(reinterpret_cast<const char*>(&x), 8);
  return out + "t";
}
// {"w": _rebuild_tensor_v2(<float storage "0" of 4 elements>, 0, size, stride, False)}
std::string tensor_pickle(const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
  const std::string storage = "(" + pickle_str("storage") + "ctorch\nFloatStorage\n" +
                              pickle_str("0") + pickle_str("cpu") + "K\x04tQ";
  return "\x80\x02}" + pickle_str("w") + "ctorch._utils\n_rebuild_tensor_v2\n(" + storage +
         std::string("K\0", 2) + pickle_ints(size) + pickle_ints(stride) + "\x89tRs.";
}
}  // namespace

// Found by fuzzing (bench/fuzz_findings.md): a tensor whose stride is shorter than its size was
// read past the stride's end (AddressSanitizer: heap-buffer-overflow; the fuzz smoke replays
// fuzz/corpus/torch_file/regress-size-stride-lengths). The view is now checked whole, with
// checked arithmetic, and may not hold more elements than its storage.
TEST(TorchFile, TensorViewsAreCheckedAgainstTheirStorage) {
  test::TempDir dir;
  const std::string four_floats(16, '\0');
  auto load = [&](const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    return load_torch_file(torch_zip(dir.path("t.pth"), tensor_pickle(size, stride), four_floats));
  };
  EXPECT_EQ(load({2, 2}, {2, 1}).at("w").sizes(), torch::IntArrayRef({2, 2}));  // a valid view
  auto fails = [&](const std::vector<int64_t>& size, const std::vector<int64_t>& stride,
                   const std::string& what) {
    test::expect_throw_with([&] { load(size, stride); }, {dir.path("t.pth") + ": ", what});
  };
  fails({2, 2}, {1}, "size has 2 dimensions but its stride 1");
  // stride 0 expands 4 floats into 25 M: they were copied out (100 MB)
  fails({5000, 5000}, {0, 0}, "tensor view exceeds its storage");
  // (2^62 - 1) * 4 overflows int64 (undefined behaviour before)
  fails({int64_t{1} << 62, 1}, {4, 1}, "tensor view exceeds its storage");
}

TEST(AtomicFile, AbandonedWriteLeavesNothing) {
  test::TempDir dir;
  const std::string path = dir.path("out.bin");
  {
    AtomicFile f(path);
    f.write("hello", 5);
  }  // no commit
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  write_file_atomic(path, "abc");
  EXPECT_EQ(read_file(path), "abc");
  EXPECT_EQ(hash_file(path), hash_bytes("abc", 3));
}

namespace {
// Counts what reaches the Progress a LoggedProgress wraps.
struct CountingProgress : Progress {
  int64_t done = 0, skipped = 0, events = 0;
  void start(const std::string&, int64_t, const std::string&) override { ++events; }
  void update(int64_t d, const std::string&) override { done = d, ++events; }
  void skip(int64_t units) override { skipped += units, ++events; }
  void finish(const std::string&) override { ++events; }
  void message(const std::string&) override { ++events; }
};
}  // namespace

TEST(ProgressLog, AppendsEveryEventAsAJsonLineAndPassesItOn) {
  test::TempDir dir;
  const std::string path = dir.path("run.progress");
  auto counting = std::make_unique<CountingProgress>();
  const CountingProgress& inner = *counting;
  {
    LoggedProgress p(std::move(counting), path);
    p.start("relabel \"x\"", 10, "step");
    p.skip(4);
    p.update(6, "");
    p.update(10, "loss 0.5");
    p.finish("");
    p.message("a\nb");
    EXPECT_EQ(inner.events, 6);
    EXPECT_EQ(inner.done, 10);
    EXPECT_EQ(inner.skipped, 4);
  }
  auto e = test::json_lines(path);
  ASSERT_EQ(e.size(), 6u);
  EXPECT_EQ(e[0]["event"], "start");
  EXPECT_EQ(e[0]["task"], "relabel \"x\"");
  EXPECT_EQ(e[0]["total"], 10);
  EXPECT_EQ(e[0]["unit"], "step");
  EXPECT_EQ(e[0]["pid"], ::getpid());
  EXPECT_EQ(e[1]["units"], 4);
  EXPECT_EQ(e[2]["done"], 6);
  EXPECT_FALSE(e[2].contains("status"));
  EXPECT_EQ(e[3]["status"], "loss 0.5");
  EXPECT_EQ(e[4]["event"], "finish");
  EXPECT_EQ(e[5]["text"], "a\nb");
  for (size_t i = 1; i < e.size(); ++i)
    EXPECT_GE(e[i]["t"].get<double>(), e[i - 1]["t"].get<double>());
  {  // a resumed run appends after the killed run's lines
    LoggedProgress again(std::make_unique<CountingProgress>(), path);
    again.start("relabel", 4, "step");
  }
  e = test::json_lines(path);
  ASSERT_EQ(e.size(), 7u);
  EXPECT_EQ(e[6]["task"], "relabel");
  test::expect_throw_with(
      [&] { LoggedProgress bad(std::make_unique<CountingProgress>(), dir.path("no/such/dir/p")); },
      {dir.path("no/such/dir/p"), "cannot open the progress log"});
}

TEST(Rng, StreamsAreDeterministicAndDistinct) {
  Rng a(derive_seed(1, kTagView, 5)), b(derive_seed(1, kTagView, 5)),
      c(derive_seed(1, kTagView, 6));
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    EXPECT_NE(x, c.next());
  }
  auto p = Rng(7).permutation(50);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(sorted[i], i);
  // Beta(1,1) mean 0.5, Beta(0.5,0.5) in (0,1)
  Rng r(3);
  double s = 0;
  for (int i = 0; i < 20000; ++i) s += r.beta(1, 1);
  EXPECT_NEAR(s / 20000, 0.5, 0.01);
  for (int i = 0; i < 1000; ++i) {
    const double v = r.beta(0.5, 0.5);
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
}

struct ToyConfig {
  int64_t epochs = 3;
  double lr = 0.1;
  bool flip = true;
  std::string name = "x";
  std::vector<double> ratios = {0.0};
  void declare(OptionSet& o) {
    o.add("epochs", &epochs, "")
        .add("lr", &lr, "")
        .add("flip", &flip, "")
        .add("name", &name, "")
        .add("ratios", &ratios, "");
  }
};

TEST(Options, YamlSetsFieldsAndRejectsUnknownKeysAndBadValues) {
  ToyConfig c;
  auto set = options_of(c);
  set.apply_yaml(YAML::Load("{epochs: 7, lr: 0.5, flip: false, name: y, ratios: [0, 0.9]}"), "t");
  EXPECT_EQ(c.epochs, 7);
  EXPECT_DOUBLE_EQ(c.lr, 0.5);
  EXPECT_FALSE(c.flip);
  EXPECT_EQ(c.name, "y");
  EXPECT_EQ(c.ratios, (std::vector<double>{0, 0.9}));
  try {
    set.apply_yaml(YAML::Load("{epochz: 1}"), "t.yaml: train");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("epochz"), std::string::npos);
  }
  try {
    set.apply_yaml(YAML::Load("{epochs: many}"), "t.yaml");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("epochs"), std::string::npos);
  }
  EXPECT_EQ(config_json(c)["epochs"], 7);
}

// relabel's planner and writer: tasks run in submission order on one thread that outlives
// them all (not a thread per task), exceptions reach the caller, and the destructor runs
// what is still queued.
TEST(SerialWorker, RunsTasksInOrderOnOneThreadAndPassesExceptions) {
  std::vector<int> order;
  std::vector<std::thread::id> ids;
  {
    SerialWorker worker;
    std::vector<std::future<int>> results;
    for (int i = 0; i < 50; ++i)
      results.push_back(worker.submit([&, i] {
        order.push_back(i);
        ids.push_back(std::this_thread::get_id());
        return i * i;
      }));
    for (int i = 0; i < 50; ++i) EXPECT_EQ(results[i].get(), i * i);
    auto failing = worker.submit([]() -> int { throw std::runtime_error("task failed"); });
    EXPECT_THROW(failing.get(), std::runtime_error);
    for (int i = 50; i < 60; ++i) worker.submit([&, i] { order.push_back(i); });
  }
  ASSERT_EQ(order.size(), 60u);
  for (int i = 0; i < 60; ++i) EXPECT_EQ(order[i], i);
  for (const auto& id : ids) EXPECT_EQ(id, ids.front());
  EXPECT_NE(ids.front(), std::this_thread::get_id());
}

TEST(ReadAhead, HandsItemsOutInOrderAtMostDepthAheadAndRethrowsAtTheItem) {
  SerialWorker worker;
  std::atomic<int64_t> made{0};
  int64_t consumed = 0;
  {
    ReadAhead<int64_t> ahead(worker, 20, 3, [&](int64_t i) -> int64_t {
      if (i == 12) throw std::runtime_error("item 12 is unreadable");
      ++made;
      return i * 10;
    });
    for (int64_t i = 0; i < 12; ++i) {
      auto v = ahead.next();
      ASSERT_TRUE(v.has_value());
      EXPECT_EQ(*v, i * 10);
      ++consumed;
      EXPECT_LE(made.load(), consumed + 3);  // never more than `depth` beyond the consumer
    }
    test::expect_throw_with([&] { ahead.next(); }, {"item 12"});
    for (int64_t i = 13; i < 20; ++i) EXPECT_EQ(*ahead.next(), i * 10);
    EXPECT_FALSE(ahead.next().has_value());
  }
  EXPECT_EQ(made.load(), 19);
}

// torchrun's LOCAL_RANK picks each process's GPU; an explicit other GPU is an error.
TEST(Device, DistributedRunsTakeTheGpuOfTheirLocalRank) {
  DistEnv one;
  EXPECT_EQ(resolve_device("cuda", one), torch::Device(torch::kCUDA));
  EXPECT_EQ(resolve_device("cuda:1", one), torch::Device("cuda:1"));
  DistEnv env;
  env.world_size = 4, env.rank = 3, env.local_rank = 1;
  EXPECT_EQ(resolve_device("cuda", env), torch::Device("cuda:1"));
  EXPECT_EQ(resolve_device("cuda:1", env), torch::Device("cuda:1"));
  EXPECT_EQ(resolve_device("cpu", env), torch::Device(torch::kCPU));
  test::expect_throw_with<std::invalid_argument>([&] { resolve_device("cuda:0", env); },
                                                 {"--device", "LOCAL_RANK 1", "cuda:1"});
  test::expect_throw_with<std::invalid_argument>([&] { resolve_device("tpu", env); },
                                                 {"--device", "'tpu'"});
  if (!torch::cuda::is_available())
    test::expect_throw_with<std::invalid_argument>([] { parse_device("cuda"); },
                                                   {"--device", "no CUDA device"});
}

// What computed a result is recorded: libtorch's version and the allocator among them.
TEST(Runtime, RecordsLibtorchAndTheAllocator) {
  const json r = runtime_info();
  EXPECT_EQ(r.at("libtorch"), TORCH_VERSION);
  EXPECT_EQ(r.at("allocator").at("name"), "jemalloc");  // linked by CMakeLists.txt
  EXPECT_EQ(r.at("allocator").at("dirty_decay_ms"), -1);
  EXPECT_NE(version_text().find("libtorch " TORCH_VERSION), std::string::npos) << version_text();
}
