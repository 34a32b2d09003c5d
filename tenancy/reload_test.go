package tenancy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func tokenTenant(a *Authenticator, token string) (string, int) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	tenant, status, _ := a.Authenticate(r, "")
	return tenant, status
}

const (
	reloadV1 = "tenants:\n  - name: a\n    tokens_sha256: [\"{{old}}\"]\n"
	reloadV2 = "tenants:\n  - name: a\n    tokens_sha256: [\"{{new}}\"]\n  - name: b\n    tokens_sha256: [\"{{old}}\"]\n"
)

func TestReload(t *testing.T) {
	a, path := newTestAuthenticator(t, reloadV1)
	requireTenant := func(token, tenant string, status int) {
		t.Helper()
		gotTenant, gotStatus := tokenTenant(a, token)
		require.Equal(t, status, gotStatus, token)
		require.Equal(t, tenant, gotTenant, token)
	}
	requireTenant("old", "a", 200)
	requireTenant("new", "", 401)

	// Added, removed and moved tokens take effect.
	writeTenants(t, path, reloadV2)
	require.NoError(t, a.Reload())
	requireTenant("new", "a", 200)
	requireTenant("old", "b", 200)
	require.Equal(t, []string{"a", "b"}, a.Tenants())

	// A broken file keeps the previous one.
	for _, broken := range []string{
		"",
		"tenants:\n  - name: a\n    tokens_sha256: [\"{{new}}\"]\n  - name: c\n    tokens_sha256: [\"{{new}}\"]\n",
		"tenants:\n  - name: a\n    tokens_sha256: [\"{{new}}\"\n", // truncated
		"tenants:\n  - name: ../a\n",
	} {
		writeTenants(t, path, broken)
		require.ErrorIs(t, a.Reload(), ErrInvalidConfig)
		requireTenant("new", "a", 200)
		requireTenant("old", "b", 200)
	}
	require.NoError(t, os.Remove(path))
	require.ErrorIs(t, a.Reload(), os.ErrNotExist)
	requireTenant("new", "a", 200)

	// Revoking everything.
	writeTenants(t, path, "tenants: []\n")
	require.NoError(t, a.Reload())
	requireTenant("new", "", 401)
	requireTenant("old", "", 401)
}

func TestNewAuthenticatorBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	_, err := NewAuthenticator(path, nil, nil)
	require.ErrorIs(t, err, os.ErrNotExist)
	writeTenants(t, path, "tenants: [")
	_, err = NewAuthenticator(path, nil, nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
}

func TestWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	writeTenants(t, path, reloadV1)
	reg := prometheus.NewRegistry()
	a, err := NewAuthenticator(path, reg, nil)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Watch(ctx, 5*time.Millisecond) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	writeTenants(t, path, reloadV2)
	require.Eventually(t, func() bool { tenant, _ := tokenTenant(a, "new"); return tenant == "a" }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(a.metrics.reloadSuccess))

	writeTenants(t, path, "tenants: [")
	require.Eventually(t, func() bool { return testutil.ToFloat64(a.metrics.reloadSuccess) == 0 }, 10*time.Second, 5*time.Millisecond)
	tenant, _ := tokenTenant(a, "new")
	require.Equal(t, "a", tenant, "a broken file replaced a good one")
	failures := testutil.ToFloat64(a.metrics.reloads.WithLabelValues("failure"))

	// The same broken content is tried once, not on every tick.
	writeTenants(t, path, "tenants: [")
	writeTenants(t, path, reloadV1)
	require.Eventually(t, func() bool { tenant, _ := tokenTenant(a, "old"); return tenant == "a" }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, failures, testutil.ToFloat64(a.metrics.reloads.WithLabelValues("failure")))
}

// TestReloadConcurrent authenticates while the file flips between two
// versions; run with -race. Every answer must come from one version or the
// other, never a mix.
func TestReloadConcurrent(t *testing.T) {
	a, path := newTestAuthenticator(t, reloadV1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tenant, status := tokenTenant(a, "old")
				if status != 200 || (tenant != "a" && tenant != "b") {
					errs <- fmt.Errorf("token old: tenant %q status %d", tenant, status)
					return
				}
			}
		}()
	}
	for i := range 50 {
		v := reloadV1
		if i%2 == 0 {
			v = reloadV2
		}
		writeTenants(t, path, v)
		require.NoError(t, a.Reload())
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
