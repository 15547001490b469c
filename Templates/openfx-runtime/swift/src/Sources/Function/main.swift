import Watcher

// Serves Handler on OpenFx's ports (50051, 50052) until SIGTERM; settings from the
// environment (`--help` lists them).
await FxWatcher.main(handler: Handler())
