#!/usr/bin/env bash
# Regenerates the committed Swift code in Sources/FxWatcherMessages (messages) and
# Sources/FxWatcherProto (services) from Protos/*.proto, and in Sources/SparkML from Protos/mleap/
# (messages only),
# with Debian's protoc and the swift-protobuf / grpc-swift-protobuf plugins built from the
# versions Package.swift pins (into .build-plugins, which git ignores). CI never runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler; }

scratch=.build-plugins
swift build --scratch-path "$scratch" -c release --product protoc-gen-swift
swift build --scratch-path "$scratch" -c release --product protoc-gen-grpc-swift-2
bin="$scratch/release"

# The messages in FxWatcherMessages (what the watcher links), the grpc-swift-2 services in
# FxWatcherProto (which exports the messages).
messages=Sources/FxWatcherMessages/Generated
services=Sources/FxWatcherProto/Generated
rm -rf "$messages" "$services"
mkdir -p "$messages" "$services"
protoc \
  --proto_path=Protos \
  --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift="$bin/protoc-gen-grpc-swift-2" \
  --swift_out="$messages" --swift_opt=Visibility=Public,FileNaming=DropPath \
  --grpc-swift_out="$services" --grpc-swift_opt=Visibility=Public,Client=true,Server=true,FileNaming=DropPath \
  $(find Protos -name "*.proto" -not -path "Protos/mleap/*" | sort)
echo "generated: $(ls "$messages" "$services" | tr '\n' ' ')"

mleap=Sources/SparkML/Generated
rm -rf "$mleap"
mkdir -p "$mleap"
protoc \
  --proto_path=Protos \
  --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
  --swift_out="$mleap" --swift_opt=Visibility=Internal,FileNaming=DropPath \
  Protos/mleap/bundle.proto
echo "generated: $(ls "$mleap" | tr '\n' ' ')"
