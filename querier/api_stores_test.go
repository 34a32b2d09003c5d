package querier_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/storeapi/storeapitest"
)

// storesResponse is GET /api/v1/stores as a client reads it.
type storesResponse struct {
	Status string `json:"status"`
	Data   struct {
		Stores []struct {
			Address       string              `json:"address"`
			ComponentType string              `json:"component_type"`
			Healthy       bool                `json:"healthy"`
			StoreAPI      bool                `json:"store_api"`
			MinTime       int64               `json:"min_time"`
			MaxTime       int64               `json:"max_time"`
			LabelSets     []map[string]string `json:"label_sets"`
			LastCheck     time.Time           `json:"last_check"`
			LastSuccess   time.Time           `json:"last_success"`
			LastError     string              `json:"last_error"`
		} `json:"stores"`
	} `json:"data"`
}

func TestStoresHandler(t *testing.T) {
	data := []storeapitest.Series{series("up", nil, floats(base, base+60*sec, 10*sec, secondsValue))}
	a := startTSDBStore(t, data, labels.FromStrings("receive_replica", "0", "tenant_id", "a"))
	b := startTSDBStore(t, nil, labels.FromStrings("tenant_id", "b"))
	down := freeAddr(t)
	set := newEndpointSet(t, a.addr, b.addr, down)
	ten, err := querier.NewTenancy(querier.TenancyOptions{})
	require.NoError(t, err)

	cases := []struct {
		name    string
		tenancy *querier.Tenancy
		tenant  string
		code    int
		// labelSets are the label sets shown, by address.
		labelSets map[string][]map[string]string
	}{
		{
			name: "every label set without tenancy",
			code: http.StatusOK,
			labelSets: map[string][]map[string]string{
				a.addr: {{"receive_replica": "0", "tenant_id": "a"}},
				b.addr: {{"tenant_id": "b"}},
				down:   {},
			},
		},
		{
			name: "the tenant's label sets with tenancy", tenancy: ten, tenant: "b",
			code: http.StatusOK,
			labelSets: map[string][]map[string]string{
				a.addr: {},
				b.addr: {{"tenant_id": "b"}},
				down:   {},
			},
		},
		{name: "an invalid tenant", tenancy: ten, tenant: "../x", code: http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(querier.StoresHandler(set, c.tenancy, nil))
			defer srv.Close()
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			require.NoError(t, err)
			if c.tenant != "" {
				req.Header.Set("THANOS-TENANT", c.tenant)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			require.Equal(t, c.code, resp.StatusCode)
			if c.code != http.StatusOK {
				return
			}
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var got storesResponse
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
			require.Equal(t, "success", got.Status)
			require.Len(t, got.Data.Stores, 3)
			shown := map[string][]map[string]string{}
			for _, s := range got.Data.Stores {
				shown[s.Address] = s.LabelSets
				require.False(t, s.LastCheck.IsZero(), s.Address)
				if s.Address == down {
					require.False(t, s.Healthy)
					require.NotEmpty(t, s.LastError)
					require.True(t, s.LastSuccess.IsZero())
					continue
				}
				require.True(t, s.Healthy, s.Address)
				require.True(t, s.StoreAPI)
				require.Equal(t, "receive", s.ComponentType)
				require.Empty(t, s.LastError)
				if s.Address == a.addr {
					require.Equal(t, base, s.MinTime)
					require.GreaterOrEqual(t, s.MaxTime, base+50*sec)
				}
			}
			require.Equal(t, c.labelSets, shown)
		})
	}
}
