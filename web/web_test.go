package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path string
		code               int
		contains           string
	}{
		{"root", http.MethodGet, "/", http.StatusOK, "<html"},
		{"app route", http.MethodGet, "/cluster/ring", http.StatusOK, "<html"},
		{"query string", http.MethodGet, "/graph?expr=up", http.StatusOK, "<html"},
		{"index", http.MethodGet, "/index.html", http.StatusOK, "<html"},
		{"missing asset", http.MethodGet, "/nope.js", http.StatusNotFound, ""},
		{"api path", http.MethodGet, "/api/v1/nope", http.StatusNotFound, ""},
		{"health path", http.MethodGet, "/-/nope", http.StatusNotFound, ""},
		{"post", http.MethodPost, "/", http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			require.Equal(t, tc.code, resp.StatusCode)
			if tc.contains != "" {
				var sb strings.Builder
				_, err := io.Copy(&sb, resp.Body)
				require.NoError(t, err)
				require.Contains(t, sb.String(), tc.contains)
				require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
				require.NotEmpty(t, resp.Header.Get("ETag"))
			}
		})
	}
}

func TestHandlerAssetsAndRevalidation(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, p := range []string{"/app.js", "/app.css"} {
		resp, err := http.Get(srv.URL + p)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		etag := resp.Header.Get("ETag")
		require.NotEmpty(t, etag)

		req, err := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		require.NoError(t, err)
		req.Header.Set("If-None-Match", etag)
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusNotModified, resp.StatusCode, p)
	}
}

func TestHandlerGzip(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	// A Transport that leaves the encoding to the test.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, tc := range []struct {
		name, accept, wantEncoding string
	}{
		{"gzip", "gzip, deflate", "gzip"},
		{"refused", "gzip;q=0", ""},
		{"none", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/app.js", nil)
			require.NoError(t, err)
			if tc.accept != "" {
				req.Header.Set("Accept-Encoding", tc.accept)
			}
			resp, err := client.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tc.wantEncoding, resp.Header.Get("Content-Encoding"))
			require.Contains(t, resp.Header.Get("Content-Type"), "javascript")
			var body io.Reader = resp.Body
			if tc.wantEncoding == "gzip" {
				zr, err := gzip.NewReader(resp.Body)
				require.NoError(t, err)
				body = zr
			}
			b, err := io.ReadAll(body)
			require.NoError(t, err)
			require.Greater(t, len(b), 10000)
		})
	}
}
