package receive

import (
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/experimental"
)

func TestMain(m *testing.M) {
	// As the strata binary does, so that replication tests run on this pool.
	experimental.SetDefaultBufferPool(NewGRPCBufferPool())
	goleak.VerifyTestMain(m)
}
