package block_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

func TestDeletionMarkRoundTrip(t *testing.T) {
	ctx := context.Background()
	bkt, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	id := ulid.Make()
	_, err = block.ReadDeletionMark(ctx, bkt, id)
	require.ErrorIs(t, err, objstore.ErrNotFound)

	at := time.Unix(1_700_000_000, 0)
	require.NoError(t, block.WriteDeletionMark(ctx, bkt, id, at, "why"))
	m, err := block.ReadDeletionMark(ctx, bkt, id)
	require.NoError(t, err)
	require.Equal(t, block.DeletionMark{ID: id, DeletionTime: at.Unix(), Version: 1, Details: "why"}, *m)

	// Thanos' own encoding reads back.
	thanos := fmt.Sprintf(`{"id":%q,"deletion_time":1700000000,"version":1}`, id)
	m, err = block.ParseDeletionMark([]byte(thanos), id)
	require.NoError(t, err)
	require.Equal(t, int64(1_700_000_000), m.DeletionTime)

	for _, bad := range []string{
		`{"id":"` + id.String() + `","deletion_time":1,"version":2}`,
		`{"id":"` + ulid.Make().String() + `","deletion_time":1,"version":1}`,
		`{"id":"nope","deletion_time":1,"version":1}`,
		``,
	} {
		_, err := block.ParseDeletionMark([]byte(bad), id)
		require.ErrorIs(t, err, block.ErrInvalidDeletionMark, bad)
	}
}

func FuzzParseDeletionMark(f *testing.F) {
	id := ulid.MustParse("01HZY6T2Q8K3M4N5P6R7S8T9V0")
	f.Add([]byte(`{"id":"01HZY6T2Q8K3M4N5P6R7S8T9V0","deletion_time":1700000000,"version":1}`))
	f.Add([]byte(`{"id":"01HZY6T2Q8K3M4N5P6R7S8T9V0","deletion_time":-1,"version":1,"details":"x"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := block.ParseDeletionMark(b, id)
		if err != nil {
			require.ErrorIs(t, err, block.ErrInvalidDeletionMark)
			return
		}
		require.Equal(t, id, m.ID)
		require.Equal(t, block.DeletionMarkVersion1, m.Version)
	})
}
