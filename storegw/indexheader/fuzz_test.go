package indexheader_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storegw/indexheader"
)

// FuzzOpen feeds arbitrary bytes to Open as a header file. Open must never panic:
// it either accepts the file and answers lookups, or rebuilds it, which here fails
// because the bucket is empty.
func FuzzOpen(f *testing.F) {
	fx := newFixture(f, 40)
	seedDir := f.TempDir()
	require.NoError(f, indexheader.Build(context.Background(), fx.bkt, fx.id, seedDir))
	seed, err := os.ReadFile(filepath.Join(seedDir, fx.id.String(), indexheader.Filename))
	require.NoError(f, err)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{})
	f.Add([]byte("STIH\x01\x02"))

	empty, err := objstore.NewFilesystem(f.TempDir())
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		file := filepath.Join(dir, fx.id.String(), indexheader.Filename)
		require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
		require.NoError(t, os.WriteFile(file, b, 0o644))
		h, err := indexheader.Open(context.Background(), empty, fx.id, dir, indexheader.WithRebuildHook(func(ulid.ULID, error) {}))
		if err != nil {
			return
		}
		for i := range uint32(h.NumSymbols()) + 1 {
			_, _ = h.Symbol(i)
		}
		for _, n := range h.LabelNames() {
			for _, v := range h.LabelValues(n) {
				if _, _, ok := h.PostingsRange(n, v); !ok {
					t.Fatalf("%s=%q listed but has no postings", n, v)
				}
			}
		}
	})
}

// FuzzDecodePostings checks that DecodePostings never panics on arbitrary bytes.
func FuzzDecodePostings(f *testing.F) {
	f.Add([]byte{0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef})
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0x48, 0x67, 0x4b, 0xc7})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(_ *testing.T, b []byte) {
		_, _ = indexheader.DecodePostings(b)
	})
}
