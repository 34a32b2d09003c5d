package main

import (
	"log/slog"
	"net/http"

	"github.com/stratametrics/strata/compactor/bucket"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/web"
)

// registerUI mounts the web UI at / and the JSON APIs its pages read that the
// Prometheus API lacks: GET /api/v1/stores (the querier's Store API endpoints)
// and, when bkt is not nil, GET /api/v1/blocks (the bucket's blocks). The
// blocks API shows every tenant's blocks, so it is left out when tenancy is
// enforced. The UI's pages for data a process does not serve, such as the
// ring on a standalone querier, say so.
func (q *queryComponent) registerUI(mux *http.ServeMux, bkt objstore.BucketReader, logger *slog.Logger) {
	mux.Handle("GET /api/v1/stores", querier.StoresHandler(q.set, q.tenancy, logger))
	if bkt != nil {
		if q.tenancy == nil {
			bucket.NewHandler(bkt, logger).Register(mux)
		} else {
			logger.Info("not serving /api/v1/blocks: it would show every tenant's blocks and tenancy is enforced")
		}
	}
	// The least specific pattern: every API route wins over it.
	mux.Handle("/", web.Handler())
}
