// Building blocks of the readers of image files on disk (image_folder.cpp, imagenet.cpp):
// listings that fail loudly, text files as lines, and the streaming dataset over a list of
// files and their labels. Internal to the data layer.
#pragma once
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace lpld::data::folder {

// Throws runtime_error naming `dir` when it is missing or not a directory.
void check_dir(const std::string& dir);

// Sorted names of the sub-directories of `dir` (want_dirs), or sorted full paths of its image
// files (.png, .jpg, .jpeg in any case). Hidden entries are skipped; an entry that cannot be
// resolved is an error naming it.
std::vector<std::string> list_sorted(const std::string& dir, bool want_dirs);

// The lines of a text file, trimmed (empty lines kept, so numbers match the file's).
std::vector<std::string> read_lines(const std::string& path);

// Images decoded per call from `paths`; `known_shape` {C, H, W} when the layout fixes it,
// otherwise probed from the files' headers.
std::shared_ptr<Dataset> make_dataset(std::vector<std::string> paths, std::vector<int64_t> labels,
                                      std::vector<std::string> class_names, std::string spec,
                                      std::optional<std::array<int64_t, 3>> known_shape);

}  // namespace lpld::data::folder
