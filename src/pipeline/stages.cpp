#include "pipeline/stages.h"

namespace lpld {
// Each stage's stage.cpp defines <name>_stage(); the list is generated from src/stages.cmake.
#define LPLD_STAGE(name) const StageDescriptor& name##_stage();
#include "lpld_stage_list.inc"
#undef LPLD_STAGE
}  // namespace lpld

namespace lpld::pipeline {

const std::vector<const StageDescriptor*>& all_stages() {
  static const std::vector<const StageDescriptor*> stages = {
#define LPLD_STAGE(name) &name##_stage(),
#include "lpld_stage_list.inc"
#undef LPLD_STAGE
  };
  return stages;
}

const StageDescriptor* find_stage(const std::string& name) {
  for (const StageDescriptor* s : all_stages())
    if (s->name == name) return s;
  return nullptr;
}

}  // namespace lpld::pipeline
