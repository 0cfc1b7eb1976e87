// Runtime glue the bindings need around a kernel call, as plain C++ (no CUDA headers): which
// device the arrays live on, and ordering against the stream that produced an array.
#pragma once

namespace isel::device {

// Makes `device` current for the guard's lifetime (the caller's device is restored after).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// Work queued on `consumer` from now on waits for the work queued so far on `producer`
// (an event, no host synchronization). Streams are cudaStream_t handles.
void stream_wait(void* producer, void* consumer);

}  // namespace isel::device
