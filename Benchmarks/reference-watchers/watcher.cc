// A reference watcher shaped like OpenFx's C++ watcher: a grpc++ synchronous server serving
// pb.FxWatcher/Call on the gateway and mesh ports with an echo handler, and the lock file once
// listening. Built by Benchmarks/watchers.py with Debian's libgrpc++-dev.
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "fxwatcher.grpc.pb.h"

namespace {

class Watcher final : public pb::FxWatcher::Service {
  // Answers with the input, as OpenFx's echo function does.
  grpc::Status Call(grpc::ServerContext*, const pb::Request* request, pb::Reply* reply) override {
    reply->set_output(request->input());
    return grpc::Status::OK;
  }
};

std::string Setting(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

}  // namespace

int main() {
  Watcher service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + Setting("WATCHER_PORT"), grpc::InsecureServerCredentials());
  builder.AddListeningPort("127.0.0.1:" + Setting("MESH_PORT"), grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(4 * 1024 * 1024 + 1024);
  builder.SetMaxSendMessageSize(4 * 1024 * 1024 + 1024);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return 1;
  std::ofstream(Setting("LOCK_FILE")).flush();
  server->Wait();
}
