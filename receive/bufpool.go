package receive

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
)

// NewGRPCBufferPool returns a gRPC buffer pool that hands out buffers without
// zeroing them first, for experimental.SetDefaultBufferPool. gRPC and its proto
// codec fill every buffer they take with a whole message, and zeroing the large
// buffers of forwarded writes on both ends was a measurable share of a
// receiver's CPU.
func NewGRPCBufferPool() mem.BufferPool { return &dirtyBufferPool{} }

// dirtyBufferPool pools buffers in power-of-two size classes, not zeroed.
type dirtyBufferPool struct {
	classes [33]sync.Pool // class k holds buffers of capacity 1<<k
}

// maxPooledClass is the largest size class kept: 1<<26 (64 MiB).
const maxPooledClass = 26

func sizeClass(n int) int {
	if n <= 1 {
		return 0
	}
	return bits.Len(uint(n - 1))
}

func (p *dirtyBufferPool) Get(length int) *[]byte {
	k := sizeClass(length)
	if k > maxPooledClass {
		b := make([]byte, length)
		return &b
	}
	if b, ok := p.classes[k].Get().(*[]byte); ok {
		*b = (*b)[:length]
		return b
	}
	b := make([]byte, length, 1<<k)
	return &b
}

func (p *dirtyBufferPool) Put(b *[]byte) {
	c := cap(*b)
	if c == 0 || c&(c-1) != 0 {
		return // not one of ours
	}
	if k := sizeClass(c); k <= maxPooledClass {
		p.classes[k].Put(b)
	}
}
