package ruler

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// fakeResolver answers lookups from a table, and fails for names not in it.
type fakeResolver struct {
	mtx   sync.Mutex
	hosts map[string][]string
}

func (f *fakeResolver) set(host string, ips ...string) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	f.hosts[host] = ips
}

func (f *fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	ips, ok := f.hosts[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]net.IPAddr, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(ip)})
	}
	return out, nil
}

func addresses(t *testing.T, d *alertmanagerDiscovery) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, tgs := range d.targets(context.Background()) {
		require.Len(t, tgs, 1)
		out[name] = []string{}
		for _, ls := range tgs[0].Targets {
			out[name] = append(out[name], string(ls[model.AddressLabel]))
		}
	}
	return out
}

func TestAlertmanagerDiscovery(t *testing.T) {
	res := &fakeResolver{hosts: map[string][]string{"am.example": {"10.0.0.1", "10.0.0.2", "fd00::3"}}}
	var urls []*url.URL
	for _, s := range []string{"http://am.example:9093", "http://10.0.0.9:9093/prefix", "https://gone.example"} {
		u, err := parseHTTPURL(s)
		require.NoError(t, err)
		urls = append(urls, u)
	}
	d := newAlertmanagerDiscovery(urls, res, slog.New(slog.DiscardHandler))
	require.Equal(t, map[string][]string{
		"config-0": {"10.0.0.1:9093", "10.0.0.2:9093", "[fd00::3]:9093"},
		"config-1": {"10.0.0.9:9093"},
		"config-2": {},
	}, addresses(t, d))

	// Members come and go with the name's addresses; a failed lookup keeps
	// the last good ones.
	res.set("am.example", "10.0.0.2")
	res.set("gone.example", "10.0.0.5")
	require.Equal(t, map[string][]string{
		"config-0": {"10.0.0.2:9093"},
		"config-1": {"10.0.0.9:9093"},
		"config-2": {"10.0.0.5:443"},
	}, addresses(t, d))
	res.mtx.Lock()
	delete(res.hosts, "am.example")
	res.mtx.Unlock()
	require.Equal(t, []string{"10.0.0.2:9093"}, addresses(t, d)["config-0"])
}

// TestAlertsReachEveryResolvedAlertmanager gives the ruler one host name that
// resolves to the two members of an HA pair of real Alertmanagers: both get
// the alert.
func TestAlertsReachEveryResolvedAlertmanager(t *testing.T) {
	port := freePort(t)
	_, p, err := net.SplitHostPort(port)
	require.NoError(t, err)
	am1 := startAlertmanager(t, "127.0.0.1:"+p)
	am2 := startAlertmanager(t, "127.0.0.2:"+p)
	res := &fakeResolver{hosts: map[string][]string{"alertmanager.test": {"127.0.0.1", "127.0.0.2"}}}

	db := openTSDB(t)
	query := queryAPI(t, db)
	ruleFile := filepath.Join(t.TempDir(), "alerts.yaml")
	writeFile(t, ruleFile, `
groups:
  - name: alerts
    interval: 1s
    rules:
      - alert: JobUp
        expr: sum by (job) (up) > 2
`)
	startRuler(t, Config{
		DataDir:          t.TempDir(),
		RuleFiles:        []string{ruleFile},
		EvalInterval:     time.Minute,
		QueryURLs:        []string{query.URL},
		AlertmanagerURLs: []string{"http://alertmanager.test:" + p},
		Resolver:         res,
		ExternalLabels:   labels.FromStrings("ruler_replica", "a"),
		ResendDelay:      time.Second,
		FlushDeadline:    time.Second,
	})
	want := map[string]string{"alertname": "JobUp", "job": "api", "ruler_replica": "a"}
	for _, am := range []string{am1, am2} {
		require.Eventually(t, func() bool {
			alerts := amAlerts(t, am)
			return len(alerts) == 1 && maps.Equal(alerts[0].Labels, want)
		}, time.Minute, 100*time.Millisecond, "alert never reached %s", am)
	}
}

func TestParseHTTPURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://am:9093":         "http://am:9093",
		"https://am/prefix":      "https://am:443/prefix",
		"http://am":              "http://am:80",
		"http://[fd00::1]:9093/": "http://[fd00::1]:9093/",
	} {
		u, err := parseHTTPURL(in)
		require.NoError(t, err, in)
		require.Equal(t, want, u.String())
	}
	for _, in := range []string{"am:9093", "ftp://am:21", "http://", "http://am:9093/%zz"} {
		_, err := parseHTTPURL(in)
		require.Error(t, err, in)
	}
}
