// A deliberate upward include: tests/check_layers.cmake must reject this tree.
#include "data/dataset.h"
