// The messages are a module of their own, FxWatcherMessages, so that the watcher, which decodes
// and encodes them on its own HTTP/2 transport, links no gRPC library; this module adds
// grpc-swift-2's service and client code for them and exports them to its users.
@_exported import FxWatcherMessages
