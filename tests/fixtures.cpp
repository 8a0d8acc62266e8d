#include "fixtures.h"

#include <cstdlib>

#include "core/io.h"
#include "core/rng.h"
#include "data/image_io.h"
#include "squeeze/squeeze.h"

namespace lpld::test {

void make_toy_folder(const std::string& dir, int per_class_train, int per_class_val) {
  const char* names[3] = {"hstripes", "vstripes", "checker"};
  Rng rng(123);
  for (const char* split : {"train", "val"}) {
    const int n = std::string(split) == "train" ? per_class_train : per_class_val;
    for (int c = 0; c < 3; ++c) {
      const std::string cdir = dir + "/" + split + "/" + names[c];
      std::filesystem::create_directories(cdir);
      for (int i = 0; i < n; ++i) {
        auto img = torch::empty({1, 16, 16}, torch::kUInt8);
        auto* p = img.data_ptr<uint8_t>();
        const int phase = static_cast<int>(rng.below(4)),
                  period = 2 + static_cast<int>(rng.below(3));
        for (int y = 0; y < 16; ++y)
          for (int x = 0; x < 16; ++x) {
            bool on = c == 0   ? ((y + phase) / period) % 2
                      : c == 1 ? ((x + phase) / period) % 2
                               : (((x + phase) / period) + ((y + phase) / period)) % 2;
            const int v = (on ? 200 : 50) + static_cast<int>(rng.range(-30, 30));
            p[y * 16 + x] = static_cast<uint8_t>(std::clamp(v, 0, 255));
          }
        data::write_png(cdir + "/" + std::to_string(i) + ".png", img);
      }
    }
  }
}

namespace {
struct ToyHolder {
  Toy toy;
  TempDir dir;
  ToyHolder() {
    toy.root = dir.path();
    make_toy_folder(toy.root);
    toy.train = "imagefolder:" + toy.root + "/train";
    toy.val = "imagefolder:" + toy.root + "/val";
    toy.teacher = toy.root + "/teacher.safetensors";
    squeeze::SqueezeConfig c;
    c.data = toy.train;
    c.val = toy.val;
    c.arch = "convnet-d2-w8";
    c.epochs = 8;
    c.batch_size = 16;
    c.lr = 0.05;
    c.out = toy.teacher;
    squeeze::squeeze(c, Progress::null());
  }
};
}  // namespace

const Toy& toy() {
  static ToyHolder holder;
  return holder.toy;
}

std::map<std::string, std::string> png_bytes(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.path().extension() == ".png")
      out[std::filesystem::relative(e.path(), dir).string()] = read_file(e.path().string());
  return out;
}

}  // namespace lpld::test
