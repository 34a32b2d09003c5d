// Package deps anchors dependencies that work in progress is about to use.
package deps

import (
	_ "github.com/cespare/xxhash/v2"
	_ "github.com/hashicorp/memberlist"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/encoding/protowire"
)
