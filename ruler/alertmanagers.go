package ruler

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/targetgroup"

	"github.com/stratametrics/strata/querier"
)

// DefaultAlertmanagerRefreshInterval is how often Alertmanager host names are
// resolved again when Config sets no interval.
const DefaultAlertmanagerRefreshInterval = 30 * time.Second

// alertmanagerDiscovery turns --alertmanagers.url values into the notifier's
// targets: a host name stands for every address it resolves to, so that one
// name covers every member of an HA Alertmanager cluster, each of which gets
// every alert. A failed lookup keeps the addresses of the last good one.
type alertmanagerDiscovery struct {
	urls     []*url.URL
	resolver querier.Resolver
	timeout  time.Duration
	logger   *slog.Logger
	last     map[int][]model.LabelSet
}

func newAlertmanagerDiscovery(urls []*url.URL, resolver querier.Resolver, logger *slog.Logger) *alertmanagerDiscovery {
	if resolver == nil {
		resolver = &net.Resolver{}
	}
	return &alertmanagerDiscovery{urls: urls, resolver: resolver, timeout: 10 * time.Second, logger: logger, last: map[int][]model.LabelSet{}}
}

// targets resolves every URL and returns the target groups keyed as the
// notifier names its Alertmanager configurations.
func (d *alertmanagerDiscovery) targets(ctx context.Context) map[string][]*targetgroup.Group {
	tgs := make(map[string][]*targetgroup.Group, len(d.urls))
	for i, u := range d.urls {
		addrs, err := d.resolve(ctx, u)
		if err != nil {
			d.logger.Warn("cannot resolve Alertmanager host, keeping its last known addresses", "url", u.Redacted(), "addresses", len(d.last[i]), "err", err)
		} else {
			d.last[i] = addrs
		}
		tgs[alertmanagerSetName(i)] = []*targetgroup.Group{{Source: u.Redacted(), Targets: d.last[i]}}
	}
	return tgs
}

func (d *alertmanagerDiscovery) resolve(ctx context.Context, u *url.URL) ([]model.LabelSet, error) {
	host, port := u.Hostname(), u.Port()
	if net.ParseIP(host) != nil {
		return []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	ips, err := d.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("no address for %s", host)
	}
	out := make([]model.LabelSet, 0, len(ips))
	for _, ip := range ips {
		out = append(out, model.LabelSet{model.AddressLabel: model.LabelValue(net.JoinHostPort(ip.IP.String(), port))})
	}
	return out, nil
}

// run sends the targets to ch now and then every interval until ctx is done.
func (d *alertmanagerDiscovery) run(ctx context.Context, interval time.Duration, ch chan<- map[string][]*targetgroup.Group) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case ch <- d.targets(ctx):
		case <-ctx.Done():
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// alertmanagerSetName is the notifier's name of the i-th Alertmanager
// configuration.
func alertmanagerSetName(i int) string { return fmt.Sprintf("config-%d", i) }
