// A native trivial TF-Serving-compatible Predict server: the same prepared answer to every call.
//
// It measures the load generator, not a model: bench/native_build.py builds it with g++
// and bench/server.py runs it as its own process, so the LoadGen adapter's capacity is
// not capped by a Python server's per-call cost (Python gRPC spends ~0.5 ms of CPU a
// call at each end, bench/trivial_server.py being the Python twin).
// gRPC's generic callback API answers /tensorflow.serving.PredictionService/Predict with
// the bytes of a serialized PredictResponse read from a file, so no .proto is compiled:
// the request is not parsed at all.
//
//     trivial_server PORT RESPONSE_FILE
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

namespace {

const char kPredict[] = "/tensorflow.serving.PredictionService/Predict";

// One call: read the request, answer the prepared bytes (or UNIMPLEMENTED), done.
class Answer final : public grpc::ServerGenericBidiReactor {
 public:
  Answer(const grpc::Slice& response, bool known_method) : response_(&response, 1) {
    if (known_method) {
      StartRead(&request_);
    } else {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "only Predict is served"));
    }
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    } else {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
    }
  }

  void OnDone() override { delete this; }

 private:
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class TrivialPredict final : public grpc::CallbackGenericService {
 public:
  explicit TrivialPredict(std::string response)
      : response_(std::move(response)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    return new Answer(response_, context->method() == kPredict);
  }

 private:
  grpc::Slice response_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: trivial_server PORT RESPONSE_FILE\n";
    return 2;
  }
  std::ifstream file(argv[2], std::ios::binary);
  if (!file) {
    std::cerr << "cannot read the response file " << argv[2] << "\n";
    return 2;
  }
  std::string response((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  TrivialPredict service(response);
  const std::string address = std::string("127.0.0.1:") + argv[1];
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::cerr << "cannot listen on " << address << "\n";
    return 1;
  }
  std::cout << "native trivial server listening on " << address << std::endl;
  server->Wait();
  return 0;
}
