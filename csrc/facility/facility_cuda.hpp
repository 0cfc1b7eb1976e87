// Facility location on a CUDA device (facility.cu). Plain C++ declarations: the bindings include
// this without CUDA headers.
#pragma once

#include "common/hooks.hpp"
#include "common/launch.hpp"
#include "facility/facility.hpp"

namespace isel::facility::cuda {

using Device = device::Launch;

// The greedy of facility.hpp on the device. p.graph (rows: points, columns: candidates), its
// column view `columns` (the transpose, in CSR form: rows are candidates, each listing its points
// in ascending order, as facility.hpp's transpose or a canonical CSC matrix gives them),
// p.quality and out's three arrays are device arrays (host arrays on the emulated grid); both
// views must give nnz; p.selected is a host array. Both views and quality are checked on the
// device first, with the CPU path's messages (the view's own where the CPU builds it: order).
// Not lazy: after each pick the candidates of the points that changed are marked (or all, as on
// the CPU), one pass over the candidates recomputes the marked gains with the CPU's column_gain
// and finds the argmax (ties: lowest column), so the picks, gains and current equal the CPU
// path's bit for bit. out.evaluations counts nothing here (0). Progress: hooks.tick(picks, k)
// every 64 picks and at the end.
void greedy(const Problem& p, const Graph& columns, Output& out, const Device& dev, const Hooks& hooks);

}  // namespace isel::facility::cuda
