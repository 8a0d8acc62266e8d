#include "core/io.h"
