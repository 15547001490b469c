// A reference watcher shaped like OpenFx's Go watcher: grpc-go serving pb.FxWatcher/Call on the
// gateway and mesh ports with an echo handler, and the lock file once listening. Built by
// Benchmarks/watchers.py in GOPATH mode against Debian's golang-google-grpc-dev.
package main

import (
	"context"
	"log"
	"net"
	"os"

	"fxbench/pb"

	"google.golang.org/grpc"
)

type watcher struct {
	*pb.UnimplementedFxWatcherServer
}

// Call answers with the input, as OpenFx's echo function does.
func (watcher) Call(_ context.Context, request *pb.Request) (*pb.Reply, error) {
	return &pb.Reply{Output: string(request.Input)}, nil
}

func serve(address string, server *grpc.Server) {
	listener, err := net.Listen("tcp", address)
	if err != nil {
		log.Fatalf("listen %s: %v", address, err)
	}
	go server.Serve(listener)
}

func main() {
	server := grpc.NewServer(grpc.MaxRecvMsgSize(4<<20+1024), grpc.MaxSendMsgSize(4<<20+1024))
	pb.RegisterFxWatcherServer(server, watcher{&pb.UnimplementedFxWatcherServer{}})
	serve("127.0.0.1:"+os.Getenv("WATCHER_PORT"), server)
	serve("127.0.0.1:"+os.Getenv("MESH_PORT"), server)
	if err := os.WriteFile(os.Getenv("LOCK_FILE"), nil, 0660); err != nil {
		log.Fatal(err)
	}
	select {}
}
