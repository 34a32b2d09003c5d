package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/receive"
	"github.com/stratametrics/strata/tenancy"
)

// tenancyFlags are a receiver's tenant authentication and limits flags.
type tenancyFlags struct {
	tenantsFile    string
	authInterval   time.Duration
	limitsFile     string
	limitsInterval time.Duration
}

func (f *tenancyFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("auth.tenants-file", "YAML file mapping bearer token hashes and client certificate fields to tenants. With it every write must authenticate: 401 without a known credential, 403 when the tenant header names another tenant. Re-read when it changes.").
		PlaceHolder("<file>").StringVar(&f.tenantsFile)
	cmd.Flag("auth.reload-interval", "How often the tenants file is checked for changes.").
		Default(tenancy.DefaultReloadInterval.String()).DurationVar(&f.authInterval)
	registerLimitsFlags(cmd, &f.limitsFile, &f.limitsInterval)
}

// registerLimitsFlags registers the limits overrides file flags.
func registerLimitsFlags(cmd *kingpin.CmdClause, file *string, interval *time.Duration) {
	cmd.Flag("limits.config-file", "YAML file of per-tenant limits: defaults and per-tenant overrides (ingestion rate and burst, active series, labels, request size, exemplars, out-of-order window, retention). Re-read when it changes.").
		PlaceHolder("<file>").StringVar(file)
	cmd.Flag("limits.reload-interval", "How often the limits file is checked for changes.").
		Default("10s").DurationVar(interval)
}

// build loads the tenants file, if any, and the limits file over base, the
// limits the receive flags imply.
func (f *tenancyFlags) build(base limits.Limits, reg prometheus.Registerer, logger *slog.Logger) (*tenancy.Authenticator, *limits.Overrides, error) {
	var auth *tenancy.Authenticator
	if f.tenantsFile != "" {
		var err error
		if auth, err = tenancy.NewAuthenticator(f.tenantsFile, reg, logger); err != nil {
			return nil, nil, err
		}
	}
	lim, err := limits.NewOverrides(f.limitsFile, base, reg, logger)
	if err != nil {
		return nil, nil, err
	}
	return auth, lim, nil
}

// watch re-reads the tenants and limits files until ctx ends, calling
// applied after limits changed.
func (f *tenancyFlags) watch(ctx context.Context, auth *tenancy.Authenticator, lim *limits.Overrides, applied func() error, logger *slog.Logger) {
	if auth != nil {
		go func() { _ = auth.Watch(ctx, f.authInterval) }()
	}
	if f.limitsFile == "" {
		<-ctx.Done()
		return
	}
	watchLimits(ctx, lim, f.limitsInterval, applied, logger)
}

// watchLimits re-reads the limits file every interval until ctx ends.
func watchLimits(ctx context.Context, lim *limits.Overrides, interval time.Duration, applied func() error, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Reload logs and counts a bad file itself; the old limits stay.
		if changed, err := lim.Reload(); err == nil && changed && applied != nil {
			if err := applied(); err != nil {
				logger.Warn("apply reloaded limits", "err", err)
			}
		}
	}
}

// tenantSummary is one tenant in GET /api/v1/tenants.
type tenantSummary struct {
	receive.TenantUsage
	// ActiveSeries are the tenant's series in the receivers' heads, divided
	// by the replication factor: about the number of distinct series.
	ActiveSeries int           `json:"active_series"`
	Limits       limits.Limits `json:"limits"`
}

// tenantsHandler serves GET /api/v1/tenants: every tenant that wrote to or
// is stored on the receivers since they started, with what it sent, its
// active series and its limits, summed over receivers. rf divides the active
// series, which every replica counts.
func tenantsHandler(receivers []*receiver, rf int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		byName := map[string]*tenantSummary{}
		get := func(name string) *tenantSummary {
			t := byName[name]
			if t == nil {
				t = &tenantSummary{TenantUsage: receive.TenantUsage{Tenant: name, SamplesDiscarded: map[string]uint64{}}}
				byName[name] = t
			}
			return t
		}
		active := map[string]int{}
		for _, r := range receivers {
			for _, u := range r.handler.Usage() {
				t := get(u.Tenant)
				t.Requests += u.Requests
				t.SamplesReceived += u.SamplesReceived
				t.BytesReceived += u.BytesReceived
				for why, n := range u.SamplesDiscarded {
					t.SamplesDiscarded[why] += n
				}
			}
			if r.mgr != nil {
				for name, n := range r.mgr.ActiveSeries() {
					get(name)
					active[name] += n
				}
			}
		}
		out := make([]*tenantSummary, 0, len(byName))
		for name, t := range byName {
			t.ActiveSeries = (active[name] + rf - 1) / max(rf, 1)
			t.Limits = receivers[0].limits.For(name)
			out = append(out, t)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Tenant < out[j].Tenant })
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": out})
	})
}
