package storeapi

import (
	"context"
	"log/slog"

	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// StoreSet returns the stores that serve one request, for example the TSDBs of
// the tenants open right now. release is called exactly once, when the request
// no longer uses the stores; it lets the owner keep a TSDB open until then.
type StoreSet func() (stores []*TSDBStore, release func())

// StaticStores returns a StoreSet of fixed stores.
func StaticStores(stores ...*TSDBStore) StoreSet {
	return func() ([]*TSDBStore, func()) { return stores, func() {} }
}

// MultiStore serves the Store and Info APIs over several TSDB stores behind one
// server, each with its own external labels (a receiver's tenants). Series
// streams are merged into one stream sorted by labels; label names and values
// are merged and de-duplicated. It is safe for concurrent use.
type MultiStore struct {
	storepb.UnimplementedStoreServer
	infopb.UnimplementedInfoServer

	stores    StoreSet
	component string
	logger    *slog.Logger
}

// NewMultiStore returns a server over the stores that stores returns for each
// request. component is the ComponentType the Info API reports.
func NewMultiStore(stores StoreSet, component string, logger *slog.Logger) *MultiStore {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &MultiStore{stores: stores, component: component, logger: logger}
}

// Series streams the matching series of every store, sorted by labels.
func (m *MultiStore) Series(r *storepb.SeriesRequest, srv storepb.Store_SeriesServer) error {
	stores, release := m.stores()
	defer release()
	return serveSeries(srv.Context(), r, srv, stores)
}

// LabelNames returns the label names of the matching series of every store.
func (m *MultiStore) LabelNames(ctx context.Context, r *storepb.LabelNamesRequest) (*storepb.LabelNamesResponse, error) {
	stores, release := m.stores()
	defer release()
	return serveLabelNames(ctx, r, stores)
}

// LabelValues returns the values of one label of the matching series of every store.
func (m *MultiStore) LabelValues(ctx context.Context, r *storepb.LabelValuesRequest) (*storepb.LabelValuesResponse, error) {
	stores, release := m.stores()
	defer release()
	return serveLabelValues(ctx, r, stores)
}

// Info reports every store's external labels and the union of their time ranges.
func (m *MultiStore) Info(ctx context.Context, _ *infopb.InfoRequest) (*infopb.InfoResponse, error) {
	stores, release := m.stores()
	defer release()
	return serveInfo(ctx, m.component, stores)
}
