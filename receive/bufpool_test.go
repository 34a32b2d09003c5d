package receive

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDirtyBufferPool(t *testing.T) {
	p := &dirtyBufferPool{}
	for _, n := range []int{0, 1, 2, 3, 1000, 1024, 1025, 1 << 20} {
		b := p.Get(n)
		require.Len(t, *b, n)
		require.GreaterOrEqual(t, cap(*b), n)
		if n > 1 {
			require.Equal(t, 0, cap(*b)&(cap(*b)-1), "capacity is a power of two")
		}
		p.Put(b)
	}
	b := p.Get(1000)
	(*b)[999] = 7
	p.Put(b)
	again := p.Get(600)
	require.Len(t, *again, 600)
	require.Equal(t, 1024, cap(*again))
	p.Put(&[]byte{1, 2, 3}) // a foreign buffer is dropped, not pooled
	require.Equal(t, 0, sizeClass(1))
	require.Equal(t, 10, sizeClass(1024))
	require.Equal(t, 11, sizeClass(1025))
}
