// The runtime glue of common/device_runtime.hpp (built by nvcc, or against the emulation).
#include "common/device_runtime.hpp"

#include "common/cuda_compat.cuh"

namespace isel::device {

DeviceGuard::DeviceGuard(int device) {
  if (device < 0) return;
  int current = 0;
  CUDA_CHECK(cudaGetDevice(&current));
  if (current == device) return;
  CUDA_CHECK(cudaSetDevice(device), "device = ", device);
  previous_ = current;
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

void stream_wait(void* producer, void* consumer) {
  if (producer == consumer) return;
  cudaEvent_t event;
  CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  cudaError_t recorded = cudaEventRecord(event, static_cast<cudaStream_t>(producer));
  cudaError_t waited = recorded == cudaSuccess ? cudaStreamWaitEvent(static_cast<cudaStream_t>(consumer), event, 0)
                                               : recorded;
  cudaEventDestroy(event);
  CUDA_CHECK(waited, "producer stream ", producer, ", consumer stream ", consumer);
}

}  // namespace isel::device
