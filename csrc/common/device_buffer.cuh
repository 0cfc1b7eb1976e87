// Device memory owned for the length of a host driver's call (freed on every exit path).
#pragma once

#include <cstddef>

#include "common/cuda_compat.cuh"

namespace isel::device {

class Buffer {
 public:
  Buffer() = default;
  // `what` names the buffer in the out-of-memory message.
  explicit Buffer(size_t bytes, const char* what = "a work buffer") {
    CUDA_CHECK(cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes), "bytes = ", bytes, " for ", what);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { cudaFree(ptr_); }
  void* get() const { return ptr_; }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
};

}  // namespace isel::device
