package tsdbshard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
)

// Run ships new blocks every ShipInterval and closes idle tenants until ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	ship := time.NewTicker(m.opts.ShipInterval)
	defer ship.Stop()
	var idle <-chan time.Time
	if m.opts.IdleTenantTimeout > 0 {
		t := time.NewTicker(min(max(m.opts.IdleTenantTimeout/4, time.Second), time.Minute))
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ship.C:
			if err := m.Ship(ctx); err != nil && ctx.Err() == nil {
				m.logger.Warn("ship blocks", "err", err)
			}
		case <-idle:
			if err := m.CloseIdle(ctx); err != nil && ctx.Err() == nil {
				m.logger.Warn("close idle tenants", "err", err)
			}
		}
	}
}

// Ship uploads the new blocks of every open tenant. Without a bucket it does nothing.
func (m *Manager) Ship(ctx context.Context) error {
	if m.opts.Bucket == nil {
		return nil
	}
	var errs []error
	for _, t := range m.acquireAll() {
		if _, err := t.shipper.Sync(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", t.name, err))
		}
		t.inflight.Done()
	}
	return errors.Join(errs...)
}

// acquireAll returns every open tenant with its inflight count raised.
func (m *Manager) acquireAll() []*tenant {
	m.mtx.RLock()
	defer m.mtx.RUnlock()
	ts := make([]*tenant, 0, len(m.tenants))
	for _, t := range m.tenants {
		if t.state == tenantOpen {
			t.inflight.Add(1)
			ts = append(ts, t)
		}
	}
	return ts
}

// CloseIdle flushes, ships and closes every tenant without a write for
// IdleTenantTimeout. A closed tenant's directory is removed once all its blocks are
// in the bucket; without a bucket it stays on disk and is opened again on its next write.
func (m *Manager) CloseIdle(ctx context.Context) error {
	if m.opts.IdleTenantTimeout <= 0 {
		return nil
	}
	cutoff := m.opts.Now().Add(-m.opts.IdleTenantTimeout).UnixMilli()
	m.mtx.Lock()
	var idle []*tenant
	for _, t := range m.tenants {
		if t.state == tenantOpen && t.lastWrite.Load() < cutoff {
			t.state = tenantClosing
			idle = append(idle, t)
		}
	}
	m.mtx.Unlock()

	var errs []error
	for _, t := range idle {
		m.logger.Info("closing idle tenant", "tenant", t.name)
		if err := m.closeTenant(ctx, t, "idle", m.opts.Bucket != nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops accepting writes, then flushes every tenant's head into blocks,
// ships them and closes the TSDBs. Directories stay on disk. It is what a receiver
// does on SIGTERM, so that scaling down loses nothing.
func (m *Manager) Close(ctx context.Context) error {
	m.mtx.Lock()
	m.ready = false
	for {
		// Tenants still opening would escape the sweep below; wait for them.
		var opening []chan struct{}
		for _, t := range m.tenants {
			if t.state == tenantOpening {
				opening = append(opening, t.opened)
			}
		}
		if len(opening) == 0 {
			break
		}
		m.mtx.Unlock()
		for _, c := range opening {
			<-c
		}
		m.mtx.Lock()
	}
	var ts []*tenant
	for _, t := range m.tenants {
		if t.state == tenantOpen {
			t.state = tenantClosing
			ts = append(ts, t)
		}
	}
	m.mtx.Unlock()

	sem := make(chan struct{}, m.opts.ReplayConcurrency)
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = m.closeTenant(ctx, t, "shutdown", false)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// closeTenant flushes, ships and closes a tenant already marked closing, and
// forgets it. With remove, the directory is deleted if every block was shipped.
func (m *Manager) closeTenant(ctx context.Context, t *tenant, reason string, remove bool) error {
	t.inflight.Wait()
	logger := m.logger.With("tenant", t.name)

	start := time.Now()
	err := flushHead(ctx, t.db, m.opts.BlockDuration.Milliseconds())
	m.metrics.flushDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		err = fmt.Errorf("flush head: %w", err)
	} else if t.shipper != nil {
		if _, serr := t.shipper.Sync(ctx); serr != nil {
			err = fmt.Errorf("ship: %w", serr)
		}
	}
	if cerr := t.db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close tsdb: %w", cerr))
	}
	if t.reg != nil {
		t.reg.unregisterAll()
	}

	if remove && err == nil {
		shipped, serr := m.allShipped(t)
		switch {
		case serr != nil:
			err = serr
		case !shipped:
			logger.Warn("keeping idle tenant on disk: not every block is shipped")
		default:
			if rerr := os.RemoveAll(t.dir); rerr != nil {
				err = fmt.Errorf("remove tenant directory: %w", rerr)
			}
		}
	}

	m.mtx.Lock()
	delete(m.tenants, t.name)
	m.mtx.Unlock()
	m.metrics.tenants.Dec()
	m.metrics.closes.WithLabelValues(reason).Inc()
	if err != nil {
		return fmt.Errorf("close tenant %q: %w", t.name, err)
	}
	logger.Info("tenant closed", "reason", reason)
	return nil
}

// allShipped reports whether every block in the tenant's directory is shipped.
func (m *Manager) allShipped(t *tenant) (bool, error) {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return false, fmt.Errorf("list tenant directory: %w", err)
	}
	for _, e := range entries {
		id, perr := ulid.Parse(e.Name())
		if !e.IsDir() || perr != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(t.dir, e.Name(), "meta.json")); err != nil {
			continue // not a finished block
		}
		if !t.shipper.Shipped(id) {
			return false, nil
		}
	}
	return true, nil
}

// flushHead writes the whole head, in-order and out-of-order, as blocks aligned to
// blockRange. The last block ends at the head's newest sample, not at the range
// boundary, so that samples just after it stay appendable after a restart.
func flushHead(ctx context.Context, db *tsdb.DB, blockRange int64) error {
	head := db.Head()
	mint, maxt := head.MinTime(), head.MaxTime()
	if mint != math.MaxInt64 && mint <= maxt {
		for start := floorTo(mint, blockRange); start <= maxt; start += blockRange {
			if err := ctx.Err(); err != nil {
				return err
			}
			lo := max(start, mint)
			hi := min(start+blockRange-1, maxt)
			if err := db.CompactHead(tsdb.NewRangeHeadWithIsolationDisabled(head, lo, hi)); err != nil {
				return err
			}
		}
	}
	return db.CompactOOOHead(ctx)
}

// floorTo rounds t down to a multiple of step, also for negative t.
func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}
