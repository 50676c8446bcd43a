// The LoadGen adapter's native client process: the twin of autotune/loadgen_worker.py.
//
// autotune.measure.loadgen.PredictSUT writes each query LoadGen issues to a client process
// through a pipe; this one sends it as an asynchronous gRPC Predict through the C++
// callback API and reports the call done through another pipe. A Python gRPC call costs
// 300-640 microseconds of CPU here, a C++ one 140-230: on a 2-core host that shares its
// CPUs with the server under test, that difference is what leaves the adapter ahead of
// a server at several thousand queries per second (BENCHMARKS.md, loadgen_rps).
// autotune.measure.native builds it with g++ against the system's gRPC on first use.
//
// The pipes, the same for both kinds of client process (little-endian records):
// - argv: ISSUE_FD DONE_FD TIMEOUT_MS ADDRESS..., one address per server instance, each
//   query sent to the next in turn;
// - stdin: the requests, each a u32 length and that many bytes of a serialized
//   PredictRequest, up to end of file; the process then answers "ready" on stdout;
// - issue pipe (in): records (u64 query id, u32 request index); end of file ends it
//   once every call in flight has finished;
// - done pipe (out): a record per finished call (u64 query id, u8 status code, u16
//   length) followed by that many bytes of the error's details when the call failed,
//   each record one write() of less than PIPE_BUF, so records from gRPC's threads never
//   interleave.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

const char kPredict[] = "/tensorflow.serving.PredictionService/Predict";
constexpr size_t kIssueSize = 12;      // u64 query id, u32 request index
constexpr size_t kDoneSize = 11;       // u64 query id, u8 status, u16 details length
constexpr size_t kMaxDetails = 1024;   // an error's details are cut to this many bytes
constexpr size_t kReadSize = 1 << 16;

// Reads exactly `size` bytes; false at end of file before the first byte.
bool ReadExactly(int fd, char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t got = read(fd, data + done, size - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) { perror("read"); std::exit(1); }
    if (got == 0) {
      if (done == 0) return false;
      std::cerr << "loadgen_client: truncated input\n";
      std::exit(1);
    }
    done += static_cast<size_t>(got);
  }
  return true;
}

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t put = write(fd, data, size);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) { perror("write"); std::exit(1); }
    data += put;
    size -= static_cast<size_t>(put);
  }
}

// The calls in flight, so that end of input waits for the last one to finish.
class InFlight {
 public:
  void Add() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++count_;
  }
  void Remove() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--count_ == 0) drained_.notify_all();
  }
  void WaitUntilNone() {
    std::unique_lock<std::mutex> lock(mutex_);
    drained_.wait(lock, [this] { return count_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable drained_;
  size_t count_ = 0;
};

// One finished call's record on the done pipe.
void ReportDone(int done_fd, uint64_t query_id, const grpc::Status& status) {
  std::string details = status.ok() ? "" : status.error_message().substr(0, kMaxDetails);
  char record[kDoneSize + kMaxDetails];
  auto code = static_cast<uint8_t>(status.error_code());
  auto length = static_cast<uint16_t>(details.size());
  std::memcpy(record, &query_id, 8);
  std::memcpy(record + 8, &code, 1);
  std::memcpy(record + 9, &length, 2);
  std::memcpy(record + kDoneSize, details.data(), details.size());
  WriteAll(done_fd, record, kDoneSize + details.size());
}

struct Call {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: loadgen_client ISSUE_FD DONE_FD TIMEOUT_MS ADDRESS...\n";
    return 2;
  }
  const int issue_fd = std::atoi(argv[1]);
  const int done_fd = std::atoi(argv[2]);
  const auto timeout = std::chrono::milliseconds(std::atol(argv[3]));

  std::vector<grpc::Slice> requests;
  char header[4];
  while (ReadExactly(0, header, sizeof header)) {
    uint32_t length;
    std::memcpy(&length, header, 4);
    std::string body(length, '\0');
    if (length > 0 && !ReadExactly(0, body.data(), length)) {
      std::cerr << "loadgen_client: truncated request\n";
      return 1;
    }
    requests.emplace_back(body);
  }

  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int i = 4; i < argc; ++i) {
    stubs.push_back(std::make_unique<grpc::GenericStub>(
        grpc::CreateChannel(argv[i], grpc::InsecureChannelCredentials())));
  }
  std::cout << "ready" << std::endl;

  InFlight in_flight;
  size_t turn = 0;
  std::string pending;
  std::vector<char> chunk(kReadSize);
  for (;;) {
    ssize_t got = read(issue_fd, chunk.data(), chunk.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) { perror("read"); return 1; }
    if (got == 0) break;
    pending.append(chunk.data(), static_cast<size_t>(got));
    size_t offset = 0;
    for (; offset + kIssueSize <= pending.size(); offset += kIssueSize) {
      uint64_t query_id;
      uint32_t index;
      std::memcpy(&query_id, pending.data() + offset, 8);
      std::memcpy(&index, pending.data() + offset + 8, 4);
      if (index >= requests.size()) {
        ReportDone(done_fd, query_id, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                                   "no such request index"));
        continue;
      }
      auto* call = new Call;
      call->context.set_deadline(std::chrono::system_clock::now() + timeout);
      call->request = grpc::ByteBuffer(&requests[index], 1);
      in_flight.Add();
      stubs[turn++ % stubs.size()]->UnaryCall(
          &call->context, kPredict, grpc::StubOptions(), &call->request, &call->response,
          [call, query_id, done_fd, &in_flight](grpc::Status status) {
            ReportDone(done_fd, query_id, status);
            delete call;
            in_flight.Remove();
          });
    }
    pending.erase(0, offset);
  }
  in_flight.WaitUntilNone();
  return 0;
}
