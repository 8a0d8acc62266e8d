#include "recover/recover.h"

#include <filesystem>
#include <map>
#include <numeric>
#include <set>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/runtime.h"
#include "core/safetensors.h"
#include "data/augment.h"
#include "data/image_io.h"
#include "models/checkpoint.h"
#include "recover/bn_loss.h"
#include "train/schedule.h"

namespace lpld::recover {
namespace fs = std::filesystem;
namespace {
constexpr int kImagesFormatVersion = 1;

std::string sanitize(const std::string& name) {
  std::string out;
  for (char ch : name)
    out += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-') ? ch : '_';
  return out;
}

struct UnitResult {
  torch::Tensor images;  // uint8 [count, C, H, W]
  double ce = 0, bn = 0, ce_start = 0, bn_start = 0, seconds = 0, correct = 0;
};

std::string unit_path(const std::string& out, int64_t id) {
  return out + "/.units/u" + std::to_string(id) + ".safetensors";
}

void save_unit(const std::string& path, const UnitResult& r) {
  TensorFile f;
  f.tensors["images"] = r.images;
  f.metadata["ce"] = fmt::format("{}", r.ce);
  f.metadata["bn"] = fmt::format("{}", r.bn);
  f.metadata["ce_start"] = fmt::format("{}", r.ce_start);
  f.metadata["bn_start"] = fmt::format("{}", r.bn_start);
  f.metadata["seconds"] = fmt::format("{}", r.seconds);
  f.metadata["correct"] = fmt::format("{}", r.correct);
  save_safetensors(path, f);
}

UnitResult load_unit(const std::string& path) {
  auto f = load_safetensors(path);
  UnitResult r;
  check_file(f.tensors.count("images") && f.metadata.count("ce"), path, "incomplete unit file");
  r.images = f.tensors["images"];
  r.ce = std::stod(f.metadata["ce"]);
  r.bn = std::stod(f.metadata["bn"]);
  r.ce_start = std::stod(f.metadata["ce_start"]);
  r.bn_start = std::stod(f.metadata["bn_start"]);
  r.seconds = std::stod(f.metadata["seconds"]);
  r.correct = std::stod(f.metadata["correct"]);
  return r;
}

int64_t unit_batch(const RecoverConfig& c, int64_t num_classes) {
  if (c.mode != "class") return num_classes;
  return c.batch_size > 0 ? std::min(c.batch_size, c.ipc) : c.ipc;
}

}  // namespace

std::vector<Unit> plan_units(const RecoverConfig& config, int64_t C,
                             const std::vector<int64_t>& classes) {
  std::vector<Unit> units;
  if (config.mode == "class") {
    const int64_t bs = unit_batch(config, C), chunks = (config.ipc + bs - 1) / bs;
    for (int64_t c : classes)
      for (int64_t j = 0; j < chunks; ++j)
        units.push_back({c * chunks + j, c, j, std::min(bs, config.ipc - j * bs)});
  } else if (!classes.empty()) {
    for (int64_t j = 0; j < config.ipc; ++j) units.push_back({j, -1, j, C});
  }
  return units;
}

void RecoverConfig::declare(OptionSet& o) {
  o.add("teacher", &teacher, "teacher checkpoint from squeeze")
      .add("out", &out, "output folder (ImageFolder of PNGs)")
      .add("mode", &mode, "class (LPLD: one class per batch, class BN stats) or mixed (SRe2L)")
      .add("ipc", &ipc, "images per class")
      .add("iterations", &iterations, "optimization steps per batch")
      .add("lr", &lr, "Adam learning rate (cosine to 0)")
      .add("r_bn", &r_bn, "weight of the BN-matching loss")
      .add("first_bn_multiplier", &first_bn_multiplier, "extra weight of the first BN layer")
      .add("jitter", &jitter, "circular roll offset range (pixels)")
      .add("jitter_signed", &jitter_signed,
           "roll offsets in [-jitter, jitter] instead of [0, jitter]")
      .add("batch_size", &batch_size, "images per class batch in class mode (0: ipc)")
      .add("per_image_augment", &per_image_augment, "a crop/flip per image instead of per batch")
      .add("crop_scale_min", &crop_scale_min, "RandomResizedCrop minimum area fraction")
      .add("tv_l2", &tv_l2, "total-variation L2 prior weight")
      .add("l2", &l2, "image L2 prior weight")
      .add("seed", &seed, "random seed")
      .add("classes", &classes, "BEGIN:END: only these classes (split a run over processes)")
      .add("pack", &pack, "units per forward pass (0: automatic)")
      .add("device", &device, "cpu, cuda or cuda:N");
}

void RecoverConfig::apply_recipe(const std::string& name) {
  if (name == "imagenet1k") {
    iterations = 4000, lr = 0.25, r_bn = 0.01, jitter = 32, jitter_signed = false, batch_size = 0;
    per_image_augment = false;
  } else if (name == "tiny") {
    iterations = 4000, lr = 0.1, r_bn = 0.05, jitter = 4, jitter_signed = true, batch_size = 100;
    per_image_augment = false;
  } else if (name == "small") {
    *this = RecoverConfig{teacher, out};
  } else {
    throw std::invalid_argument("--recipe: unknown recipe '" + name +
                                "' (use imagenet1k, tiny or small)");
  }
}

void RecoverConfig::validate() const {
  check_arg(!teacher.empty(), "--teacher", "a teacher checkpoint is required");
  check_arg(!out.empty(), "--out", "an output folder is required");
  check_arg(mode == "class" || mode == "mixed", "--mode",
            "must be class or mixed, not '" + mode + "'");
  check_arg(ipc >= 1, "--ipc", "must be >= 1");
  check_arg(iterations >= 1, "--iterations", "must be >= 1");
  check_arg(lr > 0, "--lr", "must be > 0");
  check_arg(r_bn >= 0, "--r-bn", "must be >= 0");
  check_arg(first_bn_multiplier >= 0, "--first-bn-multiplier", "must be >= 0");
  check_arg(jitter >= 0, "--jitter", "must be >= 0");
  check_arg(batch_size >= 0, "--batch-size", "must be >= 0");
  check_arg(crop_scale_min > 0 && crop_scale_min <= 1, "--crop-scale-min", "must be in (0, 1]");
  check_arg(tv_l2 >= 0 && l2 >= 0, "--tv-l2/--l2", "must be >= 0");
  check_arg(pack >= 0, "--pack", "must be >= 0");
  check_arg(classes.empty() || mode == "class", "--classes",
            "only class mode can be split by classes (a mixed batch holds every class)");
}

json RecoverConfig::identity() const {
  json j = config_json(*this);
  for (const char* k : {"teacher", "out", "classes", "pack", "device"}) j.erase(k);
  // The TV prior changed from 2 to DeepInversion's 4 neighbour differences: folders made
  // with the old one (tv_l2 > 0) must not be resumed with the new one.
  if (tv_l2 > 0) j["tv_prior"] = "4-neighbour";
  return j;
}

json ClassRecord::to_json() const {
  return {{"label", label},
          {"ce", ce},
          {"bn", bn},
          {"ce_start", ce_start},
          {"bn_start", bn_start},
          {"seconds", seconds},
          {"teacher_accuracy", teacher_accuracy},
          {"skipped", skipped}};
}

ClassRecord ClassRecord::from_json(const json& j) {
  ClassRecord r;
  r.label = j.at("label"), r.ce = j.at("ce"), r.bn = j.at("bn");
  r.ce_start = j.at("ce_start"), r.bn_start = j.at("bn_start"), r.seconds = j.at("seconds");
  r.teacher_accuracy = j.at("teacher_accuracy");
  r.skipped = j.value("skipped", false);
  return r;
}

json RecoverResult::to_json() const {
  json cls = json::array();
  for (const auto& c : classes) cls.push_back(c.to_json());
  return {{"seconds", seconds},
          {"iterations_per_second", iterations_per_second},
          {"image_iterations_per_second", image_iterations_per_second},
          {"teacher_top1", teacher_top1},
          {"images", images},
          {"image_bytes", image_bytes},
          {"pack", pack},
          {"classes", cls}};
}

RecoverResult recover(const RecoverConfig& config, Progress& progress) {
  config.validate();
  const auto start = Clock::now();
  const torch::Device device = parse_device(config.device);
  auto ck = models::load_checkpoint(config.teacher, device);
  auto& teacher = *ck.model;  // load_checkpoint leaves it in eval mode
  for (auto& p : teacher.parameters()) p.set_requires_grad(false);
  const bool class_mode = config.mode == "class";
  check_arg(!class_mode || !ck.class_stats.empty(), "--teacher",
            config.teacher + " has no class-wise BN statistics (run squeeze with class stats)");
  const int64_t C = ck.meta.num_classes, S = ck.meta.image_size, ch = ck.meta.channels;

  int64_t first = 0, last = C;
  if (!config.classes.empty()) {
    const auto colon = config.classes.find(':');
    try {
      check_arg(colon != std::string::npos, "--classes", "expected BEGIN:END");
      first = std::stoll(config.classes.substr(0, colon));
      last = std::stoll(config.classes.substr(colon + 1));
    } catch (const std::logic_error&) {
      throw std::invalid_argument("--classes: expected BEGIN:END, got '" + config.classes + "'");
    }
    check_arg(0 <= first && first < last && last <= C, "--classes",
              "'" + config.classes + "' is not a range within 0:" + std::to_string(C));
  }

  // The folder is bound to one config and teacher: a different one is an error, not a mix.
  make_dirs(config.out);
  const std::string teacher_hash = hash_file(config.teacher);
  json identity = {{"format", "lpld-images"},
                   {"format_version", kImagesFormatVersion},
                   {"recover", config.identity()},
                   {"teacher_hash", teacher_hash}};
  const std::string id_path = config.out + "/recover.json";
  if (file_exists(id_path)) {
    json existing = read_json(id_path);
    if (existing != identity)
      throw std::invalid_argument("--out: " + config.out +
                                  " holds images made with another config or teacher "
                                  "(recover.json differs); use a new folder");
  } else {
    write_json(id_path, identity);
  }

  auto class_dir = [&](int64_t c) {
    return config.out + "/" + fmt::format("{:03d}_{}", c, sanitize(ck.meta.class_names[c]));
  };
  const int64_t bs = unit_batch(config, C);
  const int64_t chunks = class_mode ? (config.ipc + bs - 1) / bs : config.ipc;

  // Which units remain: a class whose folder exists is complete; finished units of an
  // interrupted run are kept in .units/ and reloaded.
  std::vector<Unit> todo;
  std::vector<int64_t> pending_classes;
  for (int64_t c = first; c < last; ++c)
    if (!fs::exists(class_dir(c))) pending_classes.push_back(c);
  const std::vector<Unit> all_units = plan_units(config, C, pending_classes);
  // A unit's images go to its classes' hidden staging folders as soon as it is done (after
  // its unit file is saved), and only its statistics stay in memory: holding every image
  // until the end would take ~7.5 GB at ImageNet-1K IPC 50. A class folder appears, by
  // renaming its staging folder, only when all its units are done. The PNGs of a unit are a
  // function of the seed and config, so restaging after an interruption rewrites them as
  // they were.
  auto staging_dir = [&](int64_t c) {
    return config.out + "/.tmp-" + fs::path(class_dir(c)).filename().string();
  };
  std::map<int64_t, UnitResult> done;
  auto stage_unit = [&](int64_t id, UnitResult r) {
    if (class_mode) {
      const int64_t j = id % chunks;
      const std::string dir = staging_dir(id / chunks);
      make_dirs(dir);
      for (int64_t i = 0; i < r.images.size(0); ++i)
        data::write_png(fmt::format("{}/{:05d}.png", dir, j * bs + i), r.images[i]);
    } else {
      for (int64_t c : pending_classes) {  // mixed: image c of unit `id` is class c's image id
        const std::string dir = staging_dir(c);
        make_dirs(dir);
        data::write_png(fmt::format("{}/{:05d}.png", dir, id), r.images[c]);
      }
    }
    r.images = torch::Tensor();
    done[id] = std::move(r);
  };
  // Leftovers of a killed run (e.g. a PNG temp file) go; every finished unit is restaged.
  for (int64_t c : pending_classes) fs::remove_all(staging_dir(c));
  for (const auto& u : all_units) {
    if (file_exists(unit_path(config.out, u.id)))
      stage_unit(u.id, load_unit(unit_path(config.out, u.id)));
    else
      todo.push_back(u);
  }

  // BN targets per layer: class mode [C, ch_l] class statistics; mixed mode global stats.
  auto bns = teacher.batchnorms();
  std::vector<torch::Tensor> tmean, tvar;
  for (const auto& [name, bn] : bns) {
    if (class_mode) {
      tmean.push_back(ck.class_stats.mean.at(name));
      tvar.push_back(ck.class_stats.var.at(name));
    } else {
      tmean.push_back(bn->running_mean.detach().unsqueeze(0));
      tvar.push_back(bn->running_var.detach().unsqueeze(0));
    }
  }
  auto [lo, hi] = data::pixel_bounds(ck.meta.norm, device);

  // Packing: on CPU small batches are efficient per image, so pack to ~32 images; on a
  // GPU fill up to ~256 (bench/recover measures this).
  int64_t pack = config.pack;
  if (pack == 0) {
    const int64_t target = device.is_cuda() ? 256 : 32;
    pack = std::max<int64_t>(1, target / std::max<int64_t>(1, bs));
  }
  RecoverResult result;
  result.pack = pack;

  data::CropOptions crop;
  crop.scale_lo = config.crop_scale_min;
  const int64_t total_work = static_cast<int64_t>(todo.size()) * config.iterations;
  progress.start(std::string("recover ") + config.mode, total_work, "it");
  int64_t work_done = 0;
  int64_t image_iterations = 0;
  const auto optimize_start = Clock::now();

  // Writes every class whose units are all done: into a hidden temp folder, then renamed,
  // so a class folder is never half-written and a leftover is never read as a class.
  auto write_complete_classes = [&] {
    for (auto it = pending_classes.begin(); it != pending_classes.end();) {
      const int64_t c = *it;
      std::vector<int64_t> ids;
      if (class_mode)
        for (int64_t j = 0; j < chunks; ++j) ids.push_back(c * chunks + j);
      else
        for (int64_t j = 0; j < config.ipc; ++j) ids.push_back(j);
      bool complete = true;
      for (int64_t id : ids) complete = complete && done.count(id);
      if (!complete) {
        ++it;
        continue;
      }
      const std::string dir = class_dir(c);
      const std::string tmp = staging_dir(c);  // holds the class's PNGs already
      ClassRecord rec;
      rec.label = c;
      double correct = 0;
      // Mixed mode: a unit's losses are its batch's, shared by its classes; its seconds and
      // correct count are split evenly over them (per class approximate, overall exact).
      const double share = class_mode ? 1.0 : static_cast<double>(C);
      for (int64_t id : ids) {
        const auto& r = done[id];
        rec.ce += r.ce / ids.size();
        rec.bn += r.bn / ids.size();
        rec.ce_start += r.ce_start / ids.size();
        rec.bn_start += r.bn_start / ids.size();
        rec.seconds += r.seconds / share;
        correct += r.correct / share;
      }
      rec.teacher_accuracy = 100.0 * correct / config.ipc;
      json class_json = rec.to_json();
      class_json.erase("skipped");
      class_json["name"] = ck.meta.class_names[c];
      write_json(tmp + "/class.json", class_json);
      fs::rename(tmp, dir);
      result.classes.push_back(rec);
      it = pending_classes.erase(it);
    }
  };

  for (size_t p0 = 0; p0 < todo.size(); p0 += static_cast<size_t>(pack)) {
    std::vector<Unit> units(todo.begin() + p0,
                            todo.begin() + std::min(todo.size(), p0 + static_cast<size_t>(pack)));
    // Groups must be equal-sized for the grouped BN loss; split the pack by size.
    // (Only the last chunk of a class can be smaller; it goes alone.)
    std::vector<std::vector<Unit>> groups_by_size;
    for (const auto& u : units) {
      bool placed = false;
      for (auto& g : groups_by_size)
        if (g.front().count == u.count) g.push_back(u), placed = true;
      if (!placed) groups_by_size.push_back({u});
    }
    for (const auto& group : groups_by_size) {
      const auto group_start = Clock::now();
      const int64_t K = static_cast<int64_t>(group.size()), b = group.front().count;
      // Init: N(0, 1) from each unit's own stream (device independent).
      std::vector<torch::Tensor> init;
      std::vector<int64_t> targets;
      for (const auto& u : group) {
        Rng rng(derive_seed(config.seed, kTagRecoverInit, static_cast<uint64_t>(u.id)));
        auto t = torch::empty({b, ch, S, S});
        float* d = t.data_ptr<float>();
        for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<float>(rng.normal());
        init.push_back(t);
        for (int64_t i = 0; i < b; ++i) targets.push_back(class_mode ? u.label : i);
      }
      auto x = torch::cat(init).to(device).set_requires_grad(true);
      auto target = torch::tensor(targets, torch::kInt64).to(device);
      std::vector<torch::Tensor> gmean, gvar;
      auto group_labels = torch::tensor(std::vector<int64_t>(K, 0), torch::kInt64).to(device);
      if (class_mode) {
        std::vector<int64_t> gl;
        for (const auto& u : group) gl.push_back(u.label);
        group_labels = torch::tensor(gl, torch::kInt64).to(device);
      }
      for (size_t l = 0; l < bns.size(); ++l) {
        gmean.push_back(tmean[l].index_select(0, group_labels));
        gvar.push_back(tvar[l].index_select(0, group_labels));
      }
      std::vector<Rng> aug;
      for (const auto& u : group)
        aug.emplace_back(derive_seed(config.seed, kTagRecoverAug, static_cast<uint64_t>(u.id)));
      torch::optim::Adam adam({x},
                              torch::optim::AdamOptions(config.lr).betas({0.5, 0.9}).eps(1e-8));
      torch::Tensor ce_last, bn_last, ce_first, bn_first;
      for (int64_t it = 0; it < config.iterations; ++it) {
        train::set_lr(adam, train::cosine_lr(config.lr, static_cast<double>(it),
                                             static_cast<double>(config.iterations)));
        // Augment: crop + flip (per unit, or per image), then a circular roll per unit.
        std::vector<data::View> views;
        std::vector<std::pair<int64_t, int64_t>> rolls;
        for (int64_t k = 0; k < K; ++k) {
          data::View shared = data::random_view(aug[k], S, S, crop);
          for (int64_t i = 0; i < b; ++i)
            views.push_back(config.per_image_augment
                                ? (i == 0 ? shared : data::random_view(aug[k], S, S, crop))
                                : shared);
          const int64_t j = config.jitter;
          rolls.emplace_back(config.jitter_signed ? aug[k].range(-j, j) : aug[k].range(0, j),
                             config.jitter_signed ? aug[k].range(-j, j) : aug[k].range(0, j));
        }
        auto v = data::render_views(x, views, S);
        std::vector<torch::Tensor> parts;
        for (int64_t k = 0; k < K; ++k)
          parts.push_back(
              torch::roll(v.narrow(0, k * b, b), {rolls[k].first, rolls[k].second}, {2, 3}));
        auto xin = K == 1 ? parts[0] : torch::cat(parts);
        models::BnCapture capture(teacher);
        auto logits = teacher.forward(xin);
        // CE is a mean within each unit (the official per-batch mean), summed over units.
        auto ce =
            torch::cross_entropy_loss(logits, target, {}, at::Reduction::None).view({K, b}).mean(1);
        auto bn = bn_matching_loss(capture.inputs(), K, gmean, gvar, config.first_bn_multiplier);
        auto loss = ce + config.r_bn * bn;
        if (config.tv_l2 > 0) loss = loss + config.tv_l2 * tv_l2_prior(xin, K);
        if (config.l2 > 0) loss = loss + config.l2 * xin.reshape({K, -1}).norm(2, {1});
        adam.zero_grad();
        loss.sum().backward();
        adam.step();
        {
          torch::NoGradGuard ng;
          x.copy_(torch::max(torch::min(x, hi), lo));
        }
        ce_last = ce.detach();
        bn_last = bn.detach();
        if (it == 0) ce_first = ce_last, bn_first = bn_last;
        work_done += K;
        image_iterations += K * b;
        if (it % 10 == 0 || it + 1 == config.iterations) {
          std::string who = class_mode ? fmt::format("class {}", group.front().label)
                                       : fmt::format("batch {}", group.front().chunk);
          progress.update(work_done,
                          fmt::format("{} ce {:.3f} bn {:.3f}", who, ce_last.mean().item<double>(),
                                      bn_last.mean().item<double>()));
        }
      }
      // Quantize, check what the teacher says about the saved pixels, keep per unit.
      torch::NoGradGuard ng;
      auto u8 = data::denormalize_to_u8(x, ck.meta.norm).cpu();
      auto pred = teacher.forward(data::normalize(u8, ck.meta.norm, device)).argmax(1);
      auto correct = pred.eq(target).view({K, b}).to(torch::kFloat64).sum(1).cpu();
      auto ce_cpu = ce_last.cpu(), bn_cpu = bn_last.cpu();
      auto ce0_cpu = ce_first.cpu(), bn0_cpu = bn_first.cpu();
      const double secs = seconds_since(group_start) / static_cast<double>(K);
      for (int64_t k = 0; k < K; ++k) {
        UnitResult r;
        r.images = u8.narrow(0, k * b, b).clone();
        r.ce = ce_cpu[k].item<double>();
        r.bn = bn_cpu[k].item<double>();
        r.ce_start = ce0_cpu[k].item<double>();
        r.bn_start = bn0_cpu[k].item<double>();
        r.correct = correct[k].item<double>();
        r.seconds = secs;
        save_unit(unit_path(config.out, group[k].id), r);
        stage_unit(group[k].id, std::move(r));
      }
    }
    write_complete_classes();
  }
  write_complete_classes();  // units finished by an interrupted run, nothing left to optimize
  progress.finish();
  // Mixed mode: teacher accuracy exactly, from the units.
  if (!class_mode && !done.empty()) {
    double correct = 0;
    for (const auto& [id, r] : done) correct += r.correct;
    result.teacher_top1 = 100.0 * correct / (static_cast<double>(C) * config.ipc);
  }
  // Only the unit files of this run's classes (also those an interrupted run completed but
  // did not clean up): processes sharing the folder (--classes) keep theirs.
  // (Every pending class is written by now: each of its units was reloaded or optimized.)
  {
    std::vector<int64_t> range(static_cast<size_t>(last - first));
    std::iota(range.begin(), range.end(), first);
    std::set<std::string> mine;  // "u<id>.safetensors", which also prefixes its temp files
    for (const auto& u : plan_units(config, C, range))
      mine.insert(fs::path(unit_path(config.out, u.id)).filename().string());
    constexpr std::string_view kExt = ".safetensors";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(config.out + "/.units", ec)) {
      const std::string name = e.path().filename().string();
      const auto dot = name.find(kExt);
      if (dot != std::string::npos && mine.count(name.substr(0, dot + kExt.size())))
        fs::remove(e.path(), ec);
    }
  }
  const double opt_seconds = seconds_since(optimize_start);
  result.iterations_per_second = opt_seconds > 0 ? work_done / opt_seconds : 0;
  result.image_iterations_per_second = opt_seconds > 0 ? image_iterations / opt_seconds : 0;

  // Manifest over every complete class in the folder (several processes may share it).
  json classes = json::array();
  double correct_sum = 0;
  int64_t counted = 0;
  for (int64_t c = 0; c < C; ++c) {
    const std::string dir = class_dir(c);
    if (!fs::exists(dir + "/class.json")) continue;
    json cj = read_json(dir + "/class.json");
    cj["dir"] = fs::path(dir).filename().string();
    classes.push_back(cj);
    if (c >= first && c < last) {
      correct_sum += cj["teacher_accuracy"].get<double>();
      ++counted;
      if (std::none_of(result.classes.begin(), result.classes.end(),
                       [&](const ClassRecord& r) { return r.label == c; })) {
        ClassRecord rec = ClassRecord::from_json(cj);
        rec.skipped = true;
        result.classes.push_back(rec);
      }
    }
  }
  // Mixed mode counts exactly from its units above; a re-run of a complete folder has none.
  if ((class_mode || done.empty()) && counted > 0) result.teacher_top1 = correct_sum / counted;
  for (const auto& cj : classes)  // complete class folders only: other processes' hidden
    for (const auto& e : fs::directory_iterator(config.out + "/" + cj["dir"].get<std::string>()))
      if (e.is_regular_file() && e.path().extension() == ".png") {  // staging folders change
        result.image_bytes += static_cast<int64_t>(e.file_size());
        ++result.images;
      }
  json manifest = identity;
  manifest["num_classes"] = C;
  manifest["image_size"] = S;
  manifest["channels"] = ch;
  manifest["class_names"] = ck.meta.class_names;
  manifest["mean"] = ck.meta.norm.mean;
  manifest["std"] = ck.meta.norm.std;
  manifest["classes"] = classes;
  manifest["complete"] = static_cast<int64_t>(classes.size()) == C;
  write_json(config.out + "/manifest.json", manifest);
  // Every class done: no process can still need the unit folder (removing it earlier could
  // race with another --classes process creating a unit file in it).
  if (manifest["complete"].get<bool>()) {
    std::error_code ec;
    fs::remove(config.out + "/.units", ec);  // not empty: some other process's leftovers
  }
  std::sort(result.classes.begin(), result.classes.end(),
            [](const ClassRecord& a, const ClassRecord& b) { return a.label < b.label; });
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace lpld::recover
