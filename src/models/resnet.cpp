#include "models/resnet.h"

#include "core/error.h"

namespace lpld::models {
namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(false));
}

torch::nn::Sequential make_downsample(int64_t in, int64_t out, int64_t stride) {
  if (stride == 1 && in == out) return nullptr;
  return torch::nn::Sequential(conv(in, out, 1, stride, 0), BatchNorm2d(BatchNorm2dOptions(out)));
}

template <typename BlockImpl>
torch::nn::Sequential make_layer(int64_t& in_planes, int64_t planes, int64_t blocks,
                                 int64_t stride) {
  torch::nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) {
    layer->push_back(std::make_shared<BlockImpl>(in_planes, planes, i == 0 ? stride : 1));
    in_planes = planes * BlockImpl::kExpansion;
  }
  return layer;
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride) {
  conv1 = register_module("conv1", conv(in_planes, planes, 3, stride, 1));
  bn1 = register_module("bn1", BatchNorm2d(BatchNorm2dOptions(planes)));
  conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
  bn2 = register_module("bn2", BatchNorm2d(BatchNorm2dOptions(planes)));
  downsample = make_downsample(in_planes, planes * kExpansion, stride);
  if (downsample) register_module("downsample", downsample);
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = torch::relu(bn1->forward(conv1->forward(x)));
  out = bn2->forward(conv2->forward(out));
  return torch::relu(out + (downsample ? downsample->forward(x) : x));
}

BottleneckImpl::BottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride) {
  conv1 = register_module("conv1", conv(in_planes, planes, 1, 1, 0));
  bn1 = register_module("bn1", BatchNorm2d(BatchNorm2dOptions(planes)));
  conv2 = register_module("conv2", conv(planes, planes, 3, stride, 1));
  bn2 = register_module("bn2", BatchNorm2d(BatchNorm2dOptions(planes)));
  conv3 = register_module("conv3", conv(planes, planes * kExpansion, 1, 1, 0));
  bn3 = register_module("bn3", BatchNorm2d(BatchNorm2dOptions(planes * kExpansion)));
  downsample = make_downsample(in_planes, planes * kExpansion, stride);
  if (downsample) register_module("downsample", downsample);
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = torch::relu(bn1->forward(conv1->forward(x)));
  out = torch::relu(bn2->forward(conv2->forward(out)));
  out = bn3->forward(conv3->forward(out));
  return torch::relu(out + (downsample ? downsample->forward(x) : x));
}

ResNetImpl::ResNetImpl(const ResNetOptions& o) : options(o) {
  std::vector<int64_t> blocks;
  if (o.depth() == 18)
    blocks = {2, 2, 2, 2};
  else if (o.depth() == 34 || o.depth() == 50)
    blocks = {3, 4, 6, 3};
  else
    throw std::invalid_argument("--arch: resnet depth must be 18, 34 or 50");
  conv1 = register_module("conv1", o.small_stem() ? conv(o.in_channels(), 64, 3, 1, 1)
                                                  : conv(o.in_channels(), 64, 7, 2, 3));
  bn1 = register_module("bn1", BatchNorm2d(BatchNorm2dOptions(64)));
  int64_t in_planes = 64;
  const bool bottleneck = o.depth() == 50;
  auto layer = [&](int64_t planes, int64_t n, int64_t stride) {
    return bottleneck ? make_layer<BottleneckImpl>(in_planes, planes, n, stride)
                      : make_layer<BasicBlockImpl>(in_planes, planes, n, stride);
  };
  layer1 = register_module("layer1", layer(64, blocks[0], 1));
  layer2 = register_module("layer2", layer(128, blocks[1], 2));
  layer3 = register_module("layer3", layer(256, blocks[2], 2));
  layer4 = register_module("layer4", layer(512, blocks[3], 2));
  fc = register_module("fc", torch::nn::Linear(in_planes, o.num_classes()));
  // torchvision's initialization: Kaiming-normal (fan_out) convs, BN weight 1 bias 0.
  for (auto& m : modules(/*include_self=*/false))
    if (auto* c = m->as<torch::nn::Conv2d>())
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
}

torch::Tensor ResNetImpl::features(const torch::Tensor& x) {
  torch::Tensor h = torch::relu(bn1->forward(conv1->forward(x)));
  if (!options.small_stem()) h = torch::max_pool2d(h, 3, 2, 1);
  h = layer4->forward(layer3->forward(layer2->forward(layer1->forward(h))));
  return torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
}

torch::Tensor ResNetImpl::head(const torch::Tensor& f) { return fc->forward(f); }

}  // namespace lpld::models
