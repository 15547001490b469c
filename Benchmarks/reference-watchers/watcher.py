"""A reference watcher shaped like OpenFx's Python watcher: grpcio with 10 worker threads
serving pb.FxWatcher/Call on the gateway and mesh ports with an echo handler, and the lock file
once listening. Run by Benchmarks/watchers.py with the modules it generates from Protos/."""

import os
import threading
from concurrent import futures

import grpc

import fxwatcher_pb2 as pb
import fxwatcher_pb2_grpc as rpc


class Watcher(rpc.FxWatcherServicer):
    def Call(self, request, context):
        # Answers with the input, as OpenFx's echo function does.
        return pb.Reply(Output=request.input.decode())


def main():
    limit = 4 * 1024 * 1024 + 1024
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10),
                         options=[("grpc.max_receive_message_length", limit),
                                  ("grpc.max_send_message_length", limit)])
    rpc.add_FxWatcherServicer_to_server(Watcher(), server)
    server.add_insecure_port(f"127.0.0.1:{os.environ['WATCHER_PORT']}")
    server.add_insecure_port(f"127.0.0.1:{os.environ['MESH_PORT']}")
    server.start()
    open(os.environ["LOCK_FILE"], "w").close()
    threading.Event().wait()


if __name__ == "__main__":
    main()
