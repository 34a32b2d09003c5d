package querier

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/queryshard"
)

// apiResultMetrics returns the label sets of a query or query_range answer.
func apiResultMetrics(t *testing.T, body string) []labels.Labels {
	t.Helper()
	var resp struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &resp), body)
	var out []labels.Labels
	for _, r := range resp.Data.Result {
		out = append(out, labels.FromMap(r.Metric))
	}
	return out
}

func TestAPIQueryShard(t *testing.T) {
	db := apiTestDB(t)
	h := apiTestServer(t, db, DefaultAPIOptions())
	for _, tc := range []struct {
		path   string
		params url.Values
	}{
		{"/api/v1/query", apiParams("query", `{__name__=~"up|http_requests_total"}`, "time", "1700000060")},
		{"/api/v1/query_range", apiParams("query", `{__name__=~"up|http_requests_total"}`, "start", "1700000000", "end", "1700000060", "step", "15")},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := apiDo(t, h, tc.path, tc.params, false)
			require.Equal(t, http.StatusOK, code, body)
			all := apiResultMetrics(t, body)
			require.Len(t, all, 3)
			slices.SortFunc(all, labels.Compare)

			for _, total := range []int{2, 3} {
				var union []labels.Labels
				for i := range total {
					sel := queryshard.Selector{Index: i, Total: total}
					params := url.Values{}
					for k, v := range tc.params {
						params[k] = v
					}
					sel.AddTo(params)
					code, body := apiDo(t, h, tc.path, params, true)
					require.Equal(t, http.StatusOK, code, body)
					got := apiResultMetrics(t, body)
					for _, ls := range got {
						require.True(t, sel.Matches(ls), "shard %d of %d answered %s", i, total, ls)
					}
					union = append(union, got...)
				}
				slices.SortFunc(union, labels.Compare)
				require.Equal(t, all, union, "the shards of %d partition the result", total)
			}
		})
	}
}

func TestAPIQueryShardInvalid(t *testing.T) {
	db := apiTestDB(t)
	h := apiTestServer(t, db, DefaultAPIOptions())
	for _, path := range []string{"/api/v1/query", "/api/v1/query_range"} {
		for _, tc := range []struct {
			params url.Values
			param  string
		}{
			{apiParams("shard", "2_of_2", "shard_by", "a"), "shard"},
			{apiParams("shard", "0_of_2"), "shard"},
			{apiParams("shard_by", "a"), "shard_by"},
			{apiParams("shard", "0_of_2", "shard_by", ""), "shard_by"},
			{apiParams("shard", "0_of_2", "shard_by", "a", "shard_without", "b"), "shard_without"},
		} {
			t.Run(path+"?"+tc.params.Encode(), func(t *testing.T) {
				params := apiParams("query", "up", "time", "1700000060", "start", "1700000000", "end", "1700000060", "step", "15")
				for k, v := range tc.params {
					params[k] = v
				}
				code, body := apiDo(t, h, path, params, false)
				require.Equal(t, http.StatusBadRequest, code, body)
				var resp struct {
					ErrorType string `json:"errorType"`
					Error     string `json:"error"`
				}
				require.NoError(t, json.Unmarshal([]byte(body), &resp))
				require.Equal(t, "bad_data", resp.ErrorType)
				require.Contains(t, resp.Error, `invalid parameter "`+tc.param+`"`)
			})
		}
	}
}
