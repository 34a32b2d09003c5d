package tsdbshard

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// tenantRegisterer remembers every collector a tenant's TSDB registers, so that
// closing the tenant can unregister them all and the tenant label stays bounded
// to the tenants that are open. A collector left behind by an earlier instance of
// the same tenant is replaced rather than treated as a fatal duplicate.
type tenantRegisterer struct {
	inner prometheus.Registerer

	mtx        sync.Mutex
	collectors []prometheus.Collector
}

func newTenantRegisterer(reg prometheus.Registerer, tenant string) *tenantRegisterer {
	return &tenantRegisterer{inner: prometheus.WrapRegistererWith(prometheus.Labels{"tenant": tenant}, reg)}
}

// Register implements prometheus.Registerer.
func (r *tenantRegisterer) Register(c prometheus.Collector) error {
	err := r.inner.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		r.inner.Unregister(dup.ExistingCollector)
		err = r.inner.Register(c)
	}
	if err != nil {
		return err
	}
	r.mtx.Lock()
	r.collectors = append(r.collectors, c)
	r.mtx.Unlock()
	return nil
}

// MustRegister implements prometheus.Registerer. It panics only on inconsistent
// metric descriptors, which is a programming error in the TSDB, never on input.
func (r *tenantRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer.
func (r *tenantRegisterer) Unregister(c prometheus.Collector) bool {
	return r.inner.Unregister(c)
}

// unregisterAll removes every collector registered through r.
func (r *tenantRegisterer) unregisterAll() {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	for _, c := range r.collectors {
		r.inner.Unregister(c)
	}
	r.collectors = nil
}
