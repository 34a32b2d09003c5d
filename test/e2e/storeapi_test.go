package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// TestReceiveServesStoreAPI writes to a running receiver and reads the data back
// over its gRPC Store API, with the external labels attached.
func TestReceiveServesStoreAPI(t *testing.T) {
	grpcAddr := freeAddr(t)
	s := startReceive(t, t.TempDir(), "--grpc-address="+grpcAddr)

	now := time.Now().UnixMilli()
	series := make([]prompb.TimeSeries, 10)
	for i := range series {
		series[i] = prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "store_test"}, {Name: "instance", Value: fmt.Sprintf("h%d", i)}},
			Samples: []prompb.Sample{{Timestamp: now, Value: float64(i)}},
		}
	}
	code, body, err := pushRW1(context.Background(), &http.Client{Timeout: 10 * time.Second}, s.rwURL, "team-a", series)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, code, body)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { require.NoError(t, conn.Close()) }()

	info, err := infopb.NewInfoClient(conn).Info(context.Background(), &infopb.InfoRequest{})
	require.NoError(t, err)
	require.Equal(t, "receive", info.GetComponentType())
	require.NotNil(t, info.GetStore())

	stream, err := storepb.NewStoreClient(conn).Series(context.Background(), &storepb.SeriesRequest{
		MinTime: math.MinInt64, MaxTime: math.MaxInt64,
		Matchers: []*storepb.LabelMatcher{
			{Type: storepb.LabelMatcher_EQ, Name: "__name__", Value: "store_test"},
			{Type: storepb.LabelMatcher_EQ, Name: "tenant_id", Value: "team-a"},
		},
	})
	require.NoError(t, err)
	var got []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if ser := resp.GetSeries(); ser != nil {
			got = append(got, storeapi.LabelsFromProto(ser.GetLabels()).String())
			require.NotEmpty(t, ser.GetChunks())
		}
	}
	require.Len(t, got, 10)
	require.Equal(t, `{__name__="store_test", instance="h0", receive_replica="e2e", tenant_id="team-a"}`, got[0])
}
