package querier

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// storeStatus is one endpoint in GET /api/v1/stores.
type storeStatus struct {
	Address       string `json:"address"`
	ComponentType string `json:"component_type"`
	Healthy       bool   `json:"healthy"`
	StoreAPI      bool   `json:"store_api"`
	// MinTime and MaxTime are in milliseconds, as the Store API's Info has
	// them; MinTime > MaxTime means the endpoint holds no data yet.
	MinTime     int64               `json:"min_time"`
	MaxTime     int64               `json:"max_time"`
	LabelSets   []map[string]string `json:"label_sets"`
	LastCheck   time.Time           `json:"last_check,omitzero"`
	LastSuccess time.Time           `json:"last_success,omitzero"`
	LastError   string              `json:"last_error,omitempty"`
}

// storesData is the data of a stores response.
type storesData struct {
	Stores []storeStatus `json:"stores"`
}

// StoresHandler serves GET /api/v1/stores: every Store API endpoint of set,
// sorted by address, with its component type, health, the outcome of its
// latest Info call, the time range of its data and its external label sets,
// in Prometheus' success envelope.
//
// With ten, the request is authenticated and resolved to a tenant like every
// API request, and only the label sets that carry that tenant, or no tenant
// label at all, are shown: an endpoint's label sets name the tenants it holds.
// A nil ten shows everything.
func StoresHandler(set *EndpointSet, ten *Tenancy, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		visible := func(labels.Labels) bool { return true }
		if ten != nil {
			var ok bool
			if r, _, ok = ten.serve(w, r, logger); !ok {
				return
			}
			tenant, err := requestTenant(r.Context())
			if err != nil {
				writeAPIError(w, &apiError{apiErrorInternal, err}, http.StatusInternalServerError, logger)
				return
			}
			visible = func(ls labels.Labels) bool {
				return !ls.Has(ten.label) || ls.Get(ten.label) == tenant
			}
		}
		eps := set.Endpoints()
		out := storesData{Stores: make([]storeStatus, 0, len(eps))}
		for _, e := range eps {
			s := storeStatus{
				Address:       e.Address,
				ComponentType: e.ComponentType,
				Healthy:       e.Healthy,
				StoreAPI:      e.StoreAPI,
				MinTime:       e.MinTime,
				MaxTime:       e.MaxTime,
				LabelSets:     []map[string]string{},
				LastCheck:     e.LastCheck,
				LastSuccess:   e.LastSuccess,
			}
			if e.LastError != nil {
				s.LastError = e.LastError.Error()
			}
			for _, ls := range e.LabelSets {
				if visible(ls) {
					s.LabelSets = append(s.LabelSets, ls.Map())
				}
			}
			out.Stores = append(out.Stores, s)
		}
		b, err := apiEncodeSuccess(out, nil, "")
		if err != nil {
			writeAPIError(w, &apiError{apiErrorInternal, err}, http.StatusInternalServerError, logger)
			return
		}
		w.Header().Set("Content-Type", apiContentTypeJSON)
		if _, err := w.Write(b); err != nil {
			logger.Debug("write stores response", "err", err)
		}
	})
}
