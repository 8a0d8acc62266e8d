# The stages: one folder under src/ each, holding its stage.cpp (a StageDescriptor,
# core/stage.h) and built as one library, lpld_<stage>, on the labels layer. The CLI, the
# pipeline's registry (pipeline/stages.h) and the layer check (tests/check_layers.cmake) read
# this list; adding a stage is its folder and one name here (docs/architecture.md).
set(LPLD_STAGES squeeze recover relabel train import analyze)
