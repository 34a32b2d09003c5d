package querier_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/storeapi/storeapitest"
)

func TestParseSDConfig(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    querier.SDConfig
		wantErr error
	}{
		{name: "empty file", in: ""},
		{name: "empty list", in: "[]", want: querier.SDConfig{}},
		{
			name: "groups",
			in:   "- targets: [\"a:1\", \"dns+b.example:2\"]\n- targets:\n  - \"[::1]:3\"\n",
			want: querier.SDConfig{{Targets: []string{"a:1", "dns+b.example:2"}}, {Targets: []string{"[::1]:3"}}},
		},
		{name: "unknown field", in: "- targets: [\"a:1\"]\n  labels: {a: b}\n", wantErr: errors.New("field labels not found")},
		{name: "not a list", in: "targets: [\"a:1\"]\n", wantErr: errors.New("cannot unmarshal")},
		{name: "missing port", in: "- targets: [\"a\"]\n", wantErr: querier.ErrInvalidTarget},
		{name: "empty port", in: "- targets: [\"a:\"]\n", wantErr: querier.ErrInvalidTarget},
		{name: "unsupported scheme", in: "- targets: [\"dnssrv+_grpc._tcp.a\"]\n", wantErr: querier.ErrInvalidTarget},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := querier.ParseSDConfig([]byte(c.in))
			if c.wantErr != nil {
				if errors.Is(c.wantErr, querier.ErrInvalidTarget) {
					require.ErrorIs(t, err, c.wantErr)
				} else {
					require.ErrorContains(t, err, c.wantErr.Error())
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestNewEndpointSetValidates(t *testing.T) {
	cases := []struct {
		name    string
		opts    querier.EndpointSetOptions
		wantErr bool
	}{
		{name: "empty", opts: querier.EndpointSetOptions{}},
		{name: "static", opts: querier.EndpointSetOptions{Endpoints: []string{"a:1", "dns+b:2", "10.0.0.1:3", "[::1]:4"}}},
		{name: "no port", opts: querier.EndpointSetOptions{Endpoints: []string{"a"}}, wantErr: true},
		{name: "unknown scheme", opts: querier.EndpointSetOptions{Endpoints: []string{"dnssrv+a:1"}}, wantErr: true},
		{name: "negative interval", opts: querier.EndpointSetOptions{InfoInterval: -time.Second}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, err := querier.NewEndpointSet(c.opts, nil, nil)
			if c.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.NoError(t, set.Close())
		})
	}
}

func addresses(set *querier.EndpointSet) []string {
	var out []string
	for _, e := range set.Endpoints() {
		out = append(out, e.Address)
	}
	return out
}

func TestEndpointSetStatus(t *testing.T) {
	data := []storeapitest.Series{series("up", nil, floats(base, base+60*sec, 10*sec, secondsValue))}
	s := startTSDBStore(t, data, labels.FromStrings("receive_replica", "0", "tenant_id", "t1"))
	down := freeAddr(t)
	set := newEndpointSet(t, s.addr, down)

	got := set.Endpoints()
	require.Len(t, got, 2)
	byAddr := map[string]querier.EndpointStatus{got[0].Address: got[0], got[1].Address: got[1]}

	up := byAddr[s.addr]
	require.True(t, up.Healthy)
	require.NoError(t, up.LastError)
	require.Equal(t, "receive", up.ComponentType)
	require.True(t, up.StoreAPI)
	require.True(t, up.SupportsWithoutReplicaLabels)
	require.Equal(t, []labels.Labels{labels.FromStrings("receive_replica", "0", "tenant_id", "t1")}, up.LabelSets)
	require.Equal(t, base, up.MinTime)
	require.False(t, up.LastSuccess.IsZero())

	dead := byAddr[down]
	require.False(t, dead.Healthy)
	require.Error(t, dead.LastError)
	require.True(t, dead.LastSuccess.IsZero())
	require.False(t, dead.LastCheck.IsZero())
}

func TestEndpointSetRunTracksHealth(t *testing.T) {
	s := startTSDBStore(t, nil, labels.FromStrings("region", "eu"))
	set, err := querier.NewEndpointSet(querier.EndpointSetOptions{
		Endpoints:    []string{s.addr},
		InfoInterval: 20 * time.Millisecond,
		InfoTimeout:  time.Second,
	}, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, set.Run(ctx)) })
	defer func() {
		cancel()
		wg.Wait()
		require.NoError(t, set.Close())
	}()

	healthy := func() bool { e := set.Endpoints(); return len(e) == 1 && e[0].Healthy }
	require.Eventually(t, healthy, 10*time.Second, 10*time.Millisecond)
	s.stop()
	require.Eventually(t, func() bool { return !healthy() }, 10*time.Second, 10*time.Millisecond)
	e := set.Endpoints()
	require.Len(t, e, 1, "unhealthy endpoints are kept")
	require.Error(t, e[0].LastError)
	require.Equal(t, []labels.Labels{labels.FromStrings("region", "eu")}, e[0].LabelSets, "metadata of the last good Info is kept")
}

// fakeResolver resolves host names from a map that tests change.
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
	err   error
}

func (r *fakeResolver) set(host string, ips []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts[host], r.err = ips, err
}

func (r *fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	var out []net.IPAddr
	for _, ip := range r.hosts[host] {
		out = append(out, net.IPAddr{IP: net.ParseIP(ip)})
	}
	return out, nil
}

func TestEndpointSetDNS(t *testing.T) {
	s := startTSDBStore(t, nil, labels.FromStrings("region", "eu"))
	_, port, err := net.SplitHostPort(s.addr)
	require.NoError(t, err)
	res := &fakeResolver{hosts: map[string][]string{"stores.test": {"127.0.0.1"}}}
	set, err := querier.NewEndpointSet(querier.EndpointSetOptions{
		Endpoints:   []string{"dns+stores.test:" + port},
		Resolver:    res,
		InfoTimeout: time.Second,
	}, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, set.Close()) }()
	ctx := context.Background()

	require.NoError(t, set.Refresh(ctx))
	require.Equal(t, []string{"127.0.0.1:" + port}, addresses(set))
	require.True(t, set.Endpoints()[0].Healthy)

	res.set("stores.test", []string{"127.0.0.2", "127.0.0.1", "::1"}, nil)
	require.NoError(t, set.Refresh(ctx))
	require.Equal(t, []string{"127.0.0.1:" + port, "127.0.0.2:" + port, "[::1]:" + port}, addresses(set))

	res.set("stores.test", nil, errors.New("lookup timeout"))
	require.ErrorContains(t, set.Refresh(ctx), "lookup timeout")
	require.Len(t, addresses(set), 3, "a failed lookup keeps the previous addresses")

	res.set("stores.test", []string{"127.0.0.2"}, nil)
	require.NoError(t, set.Refresh(ctx))
	require.Equal(t, []string{"127.0.0.2:" + port}, addresses(set))

	res.set("stores.test", nil, nil)
	require.NoError(t, set.Refresh(ctx))
	require.Empty(t, addresses(set))
}

func TestEndpointSetDNSRun(t *testing.T) {
	res := &fakeResolver{hosts: map[string][]string{}}
	set, err := querier.NewEndpointSet(querier.EndpointSetOptions{
		Endpoints:         []string{"dns+stores.test:10901"},
		Resolver:          res,
		DiscoveryInterval: 10 * time.Millisecond,
		InfoTimeout:       time.Second,
	}, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, set.Run(ctx)) })
	defer func() {
		cancel()
		wg.Wait()
		require.NoError(t, set.Close())
	}()

	res.set("stores.test", []string{"127.0.0.3", "127.0.0.4"}, nil)
	require.Eventually(t, func() bool {
		return slices.Equal(addresses(set), []string{"127.0.0.3:10901", "127.0.0.4:10901"})
	}, 10*time.Second, 10*time.Millisecond)
	res.set("stores.test", []string{"127.0.0.4"}, nil)
	require.Eventually(t, func() bool {
		return slices.Equal(addresses(set), []string{"127.0.0.4:10901"})
	}, 10*time.Second, 10*time.Millisecond)
}

func TestEndpointSetSDFile(t *testing.T) {
	s := startTSDBStore(t, nil, labels.FromStrings("region", "eu"))
	_, port, err := net.SplitHostPort(s.addr)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "endpoints.yaml")
	write := func(content string) { require.NoError(t, os.WriteFile(file, []byte(content), 0o600)) }
	res := &fakeResolver{hosts: map[string][]string{"stores.test": {"127.0.0.5", "127.0.0.6"}}}

	write("- targets: [\"" + s.addr + "\"]\n")
	set, err := querier.NewEndpointSet(querier.EndpointSetOptions{
		Endpoints:   []string{"127.0.0.9:1"},
		SDFile:      file,
		Resolver:    res,
		InfoTimeout: time.Second,
	}, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, set.Close()) }()
	ctx := context.Background()

	require.NoError(t, set.Refresh(ctx))
	require.Equal(t, []string{s.addr, "127.0.0.9:1"}, addresses(set))

	write("- targets: [\"dns+stores.test:" + port + "\"]\n- targets: [\"127.0.0.7:2\"]\n")
	require.NoError(t, set.Refresh(ctx))
	require.Equal(t, []string{"127.0.0.5:" + port, "127.0.0.6:" + port, "127.0.0.7:2", "127.0.0.9:1"}, addresses(set))

	write("- targets: [\"no-port\"]\n")
	require.ErrorIs(t, set.Refresh(ctx), querier.ErrInvalidTarget)
	require.Len(t, addresses(set), 4, "an invalid file keeps the previous targets")

	require.NoError(t, os.Remove(file))
	require.Error(t, set.Refresh(ctx))
	require.Len(t, addresses(set), 4, "a missing file keeps the previous targets")

	write("")
	require.NoError(t, set.Refresh(ctx))
	require.Equal(t, []string{"127.0.0.9:1"}, addresses(set))
}
