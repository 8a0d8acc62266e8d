// Every stage's descriptor (core/stage.h), in the order of src/stages.cmake, from which the
// build generates the list: the CLI's subcommands and what may run distributed come from here.
#pragma once
#include <string>
#include <vector>

#include "core/stage.h"

namespace lpld::pipeline {

const std::vector<const StageDescriptor*>& all_stages();
// The stage named `name`; nullptr when there is none.
const StageDescriptor* find_stage(const std::string& name);

}  // namespace lpld::pipeline
