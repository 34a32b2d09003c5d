package receive

import (
	"context"

	"github.com/prometheus/prometheus/storage"
)

// TenantStorage gives the write path an appender over one tenant's storage.
//
// The handler asks for one appender per request and finishes it with exactly one
// Commit or Rollback. Series labels passed to Append are owned by the storage once
// Append returns (they are never reused by the handler), while exemplar slices are
// only valid for the duration of the call. If the returned appender also implements
// storage.GetRef, the handler looks known series up by hash first and builds an
// owned copy of a series' labels only for series the storage does not know yet,
// which keeps steady-state ingestion free of per-series allocations.
type TenantStorage interface {
	// TenantAppender returns an appender for tenant, opening the tenant's storage
	// on first use. It is safe for concurrent use; each appender is used by one goroutine.
	TenantAppender(ctx context.Context, tenant string) (storage.AppenderV2, error)
}
