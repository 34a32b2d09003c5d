package bucket

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
)

func TestHandler(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	a := uploadBlock(t, bkt, 0, 2*hour, map[string]string{"tenant_id": "a", "receive_replica": "0"}, 0)
	b := uploadBlock(t, bkt, 0, 4*hour, map[string]string{"tenant_id": "b"}, block.Resolution5m)
	require.NoError(t, block.WriteNoCompactMark(ctx, bkt, b.ULID, time.Now(), block.ReasonManual, ""))
	partial := uploadBlock(t, bkt, 6*hour, 8*hour, map[string]string{"tenant_id": "a"}, 0)
	require.NoError(t, bkt.Delete(ctx, partial.ULID.String()+"/"+block.MetaFilename))
	broken := uploadBlock(t, bkt, 8*hour, 10*hour, map[string]string{"tenant_id": "a"}, 0)
	require.NoError(t, bkt.Upload(ctx, broken.ULID.String()+"/"+block.MetaFilename, strings.NewReader("{not json")))

	mux := http.NewServeMux()
	NewHandler(bkt, nil).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(t *testing.T, path string, wantCode int, v any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		require.Equal(t, wantCode, resp.StatusCode)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}

	t.Run("list", func(t *testing.T) {
		var got struct {
			Status string `json:"status"`
			Data   struct {
				Blocks      []BlockInfo `json:"blocks"`
				TenantLabel string      `json:"tenant_label"`
			} `json:"data"`
			Warnings []string `json:"warnings"`
		}
		get(t, "/api/v1/blocks", http.StatusOK, &got)
		require.Equal(t, "success", got.Status)
		require.Equal(t, "tenant_id", got.Data.TenantLabel)
		require.Len(t, got.Data.Blocks, 2)
		require.Equal(t, a.ULID, got.Data.Blocks[0].ID)
		require.Equal(t, "a", got.Data.Blocks[0].Tenant)
		require.Equal(t, map[string]string{"tenant_id": "a", "receive_replica": "0"}, got.Data.Blocks[0].Labels)
		require.Equal(t, time.UnixMilli(2*hour).UTC(), got.Data.Blocks[0].MaxTime)
		require.Equal(t, uint64(3), got.Data.Blocks[0].Series)
		require.Equal(t, b.ULID, got.Data.Blocks[1].ID)
		require.Equal(t, block.Resolution5m, got.Data.Blocks[1].Resolution)
		require.Equal(t, []string{block.NoCompactMarkFilename}, got.Data.Blocks[1].Marks)
		require.Len(t, got.Warnings, 1)
		require.Contains(t, got.Warnings[0], broken.ULID.String())
	})

	type detail struct {
		Status string `json:"status"`
		Data   struct {
			Meta  block.Meta `json:"meta"`
			Marks []string   `json:"marks"`
		} `json:"data"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}
	cases := []struct {
		name      string
		path      string
		code      int
		wantMarks []string
	}{
		{name: "a block", path: "/api/v1/blocks/" + a.ULID.String(), code: http.StatusOK, wantMarks: []string{}},
		{name: "a marked block", path: "/api/v1/blocks/" + b.ULID.String(), code: http.StatusOK, wantMarks: []string{block.NoCompactMarkFilename}},
		{name: "a partial upload", path: "/api/v1/blocks/" + partial.ULID.String(), code: http.StatusNotFound},
		{name: "an unknown block", path: "/api/v1/blocks/01ARZ3NDEKTSV4RRFFQ69G5FAV", code: http.StatusNotFound},
		{name: "not a ULID", path: "/api/v1/blocks/nope", code: http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got detail
			get(t, c.path, c.code, &got)
			if c.code != http.StatusOK {
				require.Equal(t, "error", got.Status)
				require.NotEmpty(t, got.Error)
				return
			}
			require.Equal(t, "success", got.Status)
			require.Equal(t, c.wantMarks, got.Data.Marks)
			require.Equal(t, c.path[len("/api/v1/blocks/"):], got.Data.Meta.ULID.String())
			require.Equal(t, 1, got.Data.Meta.Compaction.Level)
		})
	}
}
