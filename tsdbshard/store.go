package tsdbshard

import (
	"github.com/stratametrics/strata/storeapi"
)

// StoreComponent is the ComponentType the Manager's Info API reports.
const StoreComponent = "receive"

// StoreServer returns a Store API and Info API server (it implements
// storepb.StoreServer and infopb.InfoServer) over the head and local blocks of
// every tenant open when a request arrives. Each tenant's series carry its
// external labels, the Manager's external labels plus the tenant label, and the
// tenants' streams are merged into one sorted stream.
//
// A request keeps the tenants it reads from open: an idle tenant or a shutdown
// waits for the requests in flight on it before closing its TSDB.
func (m *Manager) StoreServer() *storeapi.MultiStore {
	return storeapi.NewMultiStore(m.tenantStores, StoreComponent, m.logger)
}

// tenantStores is the StoreSet of StoreServer: a store per open tenant, counted
// in the tenant's inflight work until release.
func (m *Manager) tenantStores() (stores []*storeapi.TSDBStore, release func()) {
	ts := m.acquireAll()
	stores = make([]*storeapi.TSDBStore, 0, len(ts))
	for _, t := range ts {
		stores = append(stores, storeapi.NewTSDBStore(t.db, t.labels, StoreComponent, m.logger.With("tenant", t.name)))
	}
	return stores, func() {
		for _, t := range ts {
			t.inflight.Done()
		}
	}
}
