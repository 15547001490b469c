import Examples
import Watcher

await FxWatcher.main(
  registry: HandlerRegistry(defaultName: ExampleHandlers.defaultName, factories: ExampleHandlers.factories)
)
