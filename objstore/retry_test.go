package objstore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/miniotest"
	"github.com/stratametrics/strata/objstore"
)

// faultProxy is a reverse proxy in front of a real MinIO that answers a chosen
// number of upcoming requests with 503 SlowDown, as S3 does when throttling.
type faultProxy struct {
	srv       *httptest.Server
	transport *http.Transport
	failNext  atomic.Int64 // Requests still to fail.
	requests  atomic.Int64 // Requests received, failed or not.
	injected  atomic.Int64 // Requests failed.
}

const slowDownXML = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><Resource>%s</Resource><RequestId>fault-injected</RequestId></Error>`

func newFaultProxy(t *testing.T, target string) *faultProxy {
	p := &faultProxy{transport: &http.Transport{}}
	upstream := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			// Requests are signed for the proxy's host; keep it.
			r.Out.Host = r.In.Host
		},
		Transport: p.transport,
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if !p.takeFault() {
			rp.ServeHTTP(w, r)
			return
		}
		p.injected.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, slowDownXML, r.URL.Path)
	}))
	t.Cleanup(func() {
		p.srv.Close()
		p.transport.CloseIdleConnections()
	})
	return p
}

func (p *faultProxy) takeFault() bool {
	for {
		n := p.failNext.Load()
		if n <= 0 {
			return false
		}
		if p.failNext.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// fail makes the next n requests fail and resets the counters.
func (p *faultProxy) fail(n int64) {
	p.failNext.Store(n)
	p.requests.Store(0)
	p.injected.Store(0)
}

func (p *faultProxy) endpoint() string { return strings.TrimPrefix(p.srv.URL, "http://") }

func TestRetryAgainstMinIO(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t)
	cfg := srv.NewBucket(t, "retry")
	proxy := newFaultProxy(t, srv.Endpoint)
	cfg.Endpoint = proxy.endpoint()

	raw, err := objstore.NewS3(cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, raw.Close()) })
	reg := prometheus.NewRegistry()
	const maxAttempts = 4
	bkt := objstore.NewRetryingBucket(raw, objstore.RetryOptions{
		MaxAttempts: maxAttempts,
		MinBackoff:  time.Millisecond,
		MaxBackoff:  10 * time.Millisecond,
	}, reg, testLogger(t))
	ctx := t.Context()

	put := func(t *testing.T, name, content string) {
		t.Helper()
		proxy.fail(0)
		require.NoError(t, bkt.Upload(ctx, name, strings.NewReader(content)))
	}
	read := func(t *testing.T) func(io.ReadCloser, error) string {
		return func(rc io.ReadCloser, err error) string {
			t.Helper()
			require.NoError(t, err)
			data, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			return string(data)
		}
	}

	t.Run("transient failures are retried until success", func(t *testing.T) {
		put(t, "dir/existing", "existing content")
		for _, tc := range []struct {
			op  string
			run func(t *testing.T)
		}{
			{op: "upload", run: func(t *testing.T) {
				require.NoError(t, bkt.Upload(ctx, "dir/uploaded", bytes.NewReader([]byte("uploaded content"))))
			}},
			{op: "get", run: func(t *testing.T) {
				require.Equal(t, "existing content", read(t)(bkt.Get(ctx, "dir/existing")))
			}},
			{op: "get_range", run: func(t *testing.T) {
				require.Equal(t, "content", read(t)(bkt.GetRange(ctx, "dir/existing", 9, -1)))
			}},
			{op: "exists", run: func(t *testing.T) {
				ok, err := bkt.Exists(ctx, "dir/existing")
				require.NoError(t, err)
				require.True(t, ok)
			}},
			{op: "attributes", run: func(t *testing.T) {
				attrs, err := bkt.Attributes(ctx, "dir/existing")
				require.NoError(t, err)
				require.Equal(t, int64(len("existing content")), attrs.Size)
			}},
			{op: "iter", run: func(t *testing.T) {
				var names []string
				require.NoError(t, bkt.Iter(ctx, "dir", func(n string) error {
					names = append(names, n)
					return nil
				}))
				require.Contains(t, names, "dir/existing")
			}},
			{op: "delete", run: func(t *testing.T) {
				require.NoError(t, bkt.Delete(ctx, "dir/existing"))
			}},
		} {
			t.Run(tc.op, func(t *testing.T) {
				before := counterValue(t, reg, "strata_objstore_bucket_operation_retries_total", "retry", tc.op)
				proxy.fail(2)
				tc.run(t)
				require.Equal(t, int64(2), proxy.injected.Load())
				require.Equal(t, before+2, counterValue(t, reg, "strata_objstore_bucket_operation_retries_total", "retry", tc.op))
			})
		}
		proxy.fail(0)
		ok, err := bkt.Exists(ctx, "dir/existing")
		require.NoError(t, err)
		require.False(t, ok, "the retried delete happened")
		require.Equal(t, "uploaded content", read(t)(bkt.Get(ctx, "dir/uploaded")))
	})

	t.Run("seekable upload is rewound to where it started", func(t *testing.T) {
		r := strings.NewReader("skipped|the whole rest")
		_, err := r.Seek(int64(len("skipped|")), io.SeekStart)
		require.NoError(t, err)
		proxy.fail(3)
		require.NoError(t, bkt.Upload(ctx, "rewound", r))
		require.Equal(t, int64(3), proxy.injected.Load())
		proxy.fail(0)
		require.Equal(t, "the whole rest", read(t)(bkt.Get(ctx, "rewound")))
	})

	t.Run("stream upload is attempted once", func(t *testing.T) {
		proxy.fail(1)
		err := bkt.Upload(ctx, "streamed", struct{ io.Reader }{strings.NewReader("cannot be replayed")})
		require.Error(t, err)
		require.True(t, raw.IsTransient(err), "the failure was transient: %v", err)
		require.Equal(t, int64(1), proxy.requests.Load())
		proxy.fail(0)
		ok, err := bkt.Exists(ctx, "streamed")
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("not found is not retried", func(t *testing.T) {
		for _, tc := range []struct {
			op       string
			run      func() error
			requests int64
		}{
			{op: "get", run: func() error { _, err := bkt.Get(ctx, "missing"); return err }, requests: 1},
			{op: "get_range", run: func() error { _, err := bkt.GetRange(ctx, "missing", 1, 2); return err }, requests: 1},
			{op: "attributes", run: func() error { _, err := bkt.Attributes(ctx, "missing"); return err }, requests: 1},
			{op: "delete", run: func() error { return bkt.Delete(ctx, "missing") }, requests: 1},
		} {
			proxy.fail(0)
			require.ErrorIs(t, tc.run(), objstore.ErrNotFound, tc.op)
			require.Equal(t, tc.requests, proxy.requests.Load(), tc.op)
		}
		proxy.fail(0)
		ok, err := bkt.Exists(ctx, "missing")
		require.NoError(t, err)
		require.False(t, ok)
		require.Equal(t, int64(1), proxy.requests.Load(), "exists")
	})

	t.Run("attempts are bounded", func(t *testing.T) {
		proxy.fail(100)
		_, err := bkt.Attributes(ctx, "anything")
		require.ErrorContains(t, err, fmt.Sprintf("giving up after %d attempts", maxAttempts))
		require.True(t, raw.IsTransient(err))
		require.Equal(t, int64(maxAttempts), proxy.requests.Load())

		proxy.fail(100)
		_, err = bkt.Get(ctx, "anything")
		var resp minio.ErrorResponse
		require.ErrorAs(t, err, &resp)
		require.Equal(t, "SlowDown", resp.Code, "the last error is kept")
		require.Equal(t, int64(maxAttempts), proxy.requests.Load())
	})

	t.Run("context cancellation stops retrying", func(t *testing.T) {
		// A backoff far longer than the test may take: only the context can end it.
		slow := objstore.NewRetryingBucket(raw, objstore.RetryOptions{
			MaxAttempts: 10,
			MinBackoff:  time.Hour,
			MaxBackoff:  time.Hour,
		}, nil, nil)
		proxy.fail(100)
		opCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		result := make(chan error, 1)
		go func() {
			_, err := slow.Exists(opCtx, "anything")
			result <- err
		}()
		require.Eventually(t, func() bool { return proxy.injected.Load() >= 1 }, 10*time.Second, 5*time.Millisecond)
		cancel()
		select {
		case err := <-result:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(10 * time.Second):
			t.Fatal("Exists kept retrying after its context was cancelled")
		}
		require.Equal(t, int64(1), proxy.requests.Load())
	})

	t.Run("NewBucket retries and counts one operation", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		wired, err := objstore.NewBucket(ctx, miniotest.ConfigYAML(t, cfg), reg, testLogger(t))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, wired.Close()) })
		put(t, "wired", "through the config")
		proxy.fail(2)
		require.Equal(t, "through the config", read(t)(wired.Get(ctx, "wired")))
		require.Equal(t, int64(2), proxy.injected.Load())
		require.Equal(t, 2.0, counterValue(t, reg, "strata_objstore_bucket_operation_retries_total", "retry", "get"))
		require.Equal(t, 1.0, counterValue(t, reg, "strata_objstore_bucket_operations_total", "retry", "get"))
		require.Equal(t, 0.0, counterValue(t, reg, "strata_objstore_bucket_operation_failures_total", "retry", "get"))
	})
}

func TestRetryingBucketWithoutClassifier(t *testing.T) {
	// The filesystem has no transient errors: nothing is retried.
	fs, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	bkt := objstore.NewRetryingBucket(fs, objstore.DefaultRetryOptions(), reg, nil)
	_, err = bkt.Get(t.Context(), "missing")
	require.ErrorIs(t, err, objstore.ErrNotFound)
	require.ErrorIs(t, bkt.Upload(t.Context(), "../escape", strings.NewReader("x")), objstore.ErrInvalidName)
	require.Equal(t, 0.0, counterValue(t, reg, "strata_objstore_bucket_operation_retries_total", fs.Name(), "get"))
	require.Equal(t, 0.0, counterValue(t, reg, "strata_objstore_bucket_operation_retries_total", fs.Name(), "upload"))
}

func TestRetryingBucketClassifierOption(t *testing.T) {
	// A classifier in the options overrides the backend's; here it calls
	// everything transient, yet f's own errors from Iter are never retried.
	fs, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, fs.Upload(t.Context(), "a", strings.NewReader("x")))
	classified := 0
	bkt := objstore.NewRetryingBucket(fs, objstore.RetryOptions{
		MaxAttempts: 3,
		MinBackoff:  time.Millisecond,
		MaxBackoff:  time.Millisecond,
		IsTransient: func(error) bool { classified++; return true },
	}, nil, nil)

	calls := 0
	errF := fmt.Errorf("from f")
	require.ErrorIs(t, bkt.Iter(t.Context(), "", func(string) error { calls++; return errF }), errF)
	require.Equal(t, 1, calls)

	_, err = bkt.GetRange(t.Context(), "a", -1, 1) // A negative offset: a plain error.
	require.ErrorContains(t, err, "giving up after 3 attempts")
	require.Equal(t, 3, classified)
}
