package hashring

import (
	"fmt"
	"testing"
)

// BenchmarkMultiRing resolves tenants against 20 exact rings of 50 tenants,
// then 5 glob rings, then a catch-all: the worst case walks every pattern.
func BenchmarkMultiRing(b *testing.B) {
	var cfgs []RingConfig
	for i := range 20 {
		c := RingConfig{Endpoints: eps(fmt.Sprintf("r%d:1", i))}
		for j := range 50 {
			c.Tenants = append(c.Tenants, fmt.Sprintf("tenant-%d-%d", i, j))
		}
		cfgs = append(cfgs, c)
	}
	for i := range 5 {
		cfgs = append(cfgs, RingConfig{
			Tenants:           []string{fmt.Sprintf("team-%d-*", i), fmt.Sprintf("org-%d-?", i)},
			TenantMatcherType: TenantMatcherGlob,
			Endpoints:         eps(fmt.Sprintf("g%d:1", i)),
		})
	}
	cfgs = append(cfgs, RingConfig{Endpoints: eps("all:1")})
	m, err := NewMulti(cfgs, AlgorithmKetama, 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, tenant := range []string{"tenant-19-49", "team-4-x", "unknown-tenant"} {
		b.Run(tenant, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Ring(tenant); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
