package cache

import (
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/stretchr/testify/require"
)

func TestBytes_Set(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Bytes
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "0B", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "512KB", want: 512 << 10},
		{in: "512KiB", want: 512 << 10},
		{in: "256MB", want: 256 << 20},
		{in: "256MiB", want: 256 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "1.5GB", want: 3 << 29},
		{in: "2TB", want: 2 << 40},
		{in: "", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "-1GB", wantErr: true},
		{in: "256", want: 256},
		{in: "256mb", wantErr: true},
		{in: "1kB", wantErr: true},
		{in: "lots", wantErr: true},
		{in: "99999999EB", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var b Bytes
			err := b.Set(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, b)

			var again Bytes
			require.NoError(t, again.Set(b.String()), "String must round-trip through Set")
			require.Equal(t, b, again)
		})
	}
}

func TestBytes_String(t *testing.T) {
	require.Equal(t, "0B", Bytes(0).String())
	require.Equal(t, "256MiB", Bytes(256<<20).String())
	require.Equal(t, "1GiB512MiB", Bytes(3<<29).String())
}

func TestBytes_KingpinFlag(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    Bytes
		wantErr bool
	}{
		{name: "default", want: 256 << 20},
		{name: "set", args: []string{"--store.cache.postings-size=1GiB"}, want: 1 << 30},
		{name: "disabled", args: []string{"--store.cache.postings-size=0"}, want: 0},
		{name: "invalid", args: []string{"--store.cache.postings-size=big"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := kingpin.New("test", "")
			app.Terminate(nil)
			var size Bytes
			app.Flag("store.cache.postings-size", "").Default("256MB").SetValue(&size)
			_, err := app.Parse(tc.args)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, size)
		})
	}
}
