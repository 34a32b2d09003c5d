package storeapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// TestWireContract pins the names, field numbers and types that make the Store
// API wire-compatible with Thanos (docs/storeapi.md). A change here breaks
// Thanos queriers reading strata and strata reading Thanos stores.
func TestWireContract(t *testing.T) {
	require.Equal(t, "thanos.Store", storepb.Store_ServiceDesc.ServiceName)
	require.Equal(t, "/thanos.Store/Series", storepb.Store_Series_FullMethodName)
	require.Equal(t, "/thanos.Store/LabelNames", storepb.Store_LabelNames_FullMethodName)
	require.Equal(t, "/thanos.Store/LabelValues", storepb.Store_LabelValues_FullMethodName)
	require.Equal(t, "/thanos.info.Info/Info", infopb.Info_Info_FullMethodName)

	const (
		i64 = protoreflect.Int64Kind
		u64 = protoreflect.Uint64Kind
		str = protoreflect.StringKind
		byt = protoreflect.BytesKind
		bln = protoreflect.BoolKind
		enm = protoreflect.EnumKind
		msg = protoreflect.MessageKind
	)
	fields := map[string][]struct {
		name     string
		number   protoreflect.FieldNumber
		kind     protoreflect.Kind
		repeated bool
	}{
		"thanos.Label":        {{"name", 1, str, false}, {"value", 2, str, false}},
		"thanos.LabelSet":     {{"labels", 1, msg, true}},
		"thanos.Chunk":        {{"type", 1, enm, false}, {"data", 2, byt, false}, {"hash", 3, u64, false}},
		"thanos.AggrChunk":    {{"min_time", 1, i64, false}, {"max_time", 2, i64, false}, {"raw", 3, msg, false}, {"count", 4, msg, false}, {"sum", 5, msg, false}, {"min", 6, msg, false}, {"max", 7, msg, false}, {"counter", 8, msg, false}},
		"thanos.Series":       {{"labels", 1, msg, true}, {"chunks", 2, msg, true}},
		"thanos.LabelMatcher": {{"type", 1, enm, false}, {"name", 2, str, false}, {"value", 3, str, false}},
		"thanos.Any":          {{"type_url", 1, str, false}, {"value", 2, byt, false}},
		"thanos.SeriesRequest": {
			{"min_time", 1, i64, false}, {"max_time", 2, i64, false}, {"matchers", 3, msg, true},
			{"max_resolution_window", 4, i64, false}, {"aggregates", 5, enm, true},
			{"partial_response_disabled", 6, bln, false}, {"partial_response_strategy", 7, enm, false},
			{"skip_chunks", 8, bln, false}, {"hints", 9, msg, false}, {"step", 10, i64, false},
			{"range", 11, i64, false}, {"query_hints", 12, msg, false}, {"shard_info", 13, msg, false},
			{"without_replica_labels", 14, str, true}, {"limit", 15, i64, false}, {"response_batch_size", 16, i64, false},
		},
		"thanos.QueryHints":  {{"step_millis", 1, i64, false}, {"func", 2, msg, false}, {"grouping", 4, msg, false}, {"range", 5, msg, false}},
		"thanos.ShardInfo":   {{"shard_index", 1, i64, false}, {"total_shards", 2, i64, false}, {"by", 3, bln, false}, {"labels", 4, str, true}},
		"thanos.Func":        {{"name", 1, str, false}},
		"thanos.Grouping":    {{"by", 1, bln, false}, {"labels", 3, str, true}},
		"thanos.Range":       {{"millis", 1, i64, false}},
		"thanos.SeriesBatch": {{"series", 1, msg, true}},
		"thanos.SeriesResponse": {
			{"series", 1, msg, false}, {"warning", 2, str, false}, {"hints", 3, msg, false}, {"batch", 4, msg, false},
		},
		"thanos.LabelNamesRequest": {
			{"partial_response_disabled", 1, bln, false}, {"partial_response_strategy", 2, enm, false},
			{"start", 3, i64, false}, {"end", 4, i64, false}, {"hints", 5, msg, false}, {"matchers", 6, msg, true},
			{"without_replica_labels", 7, str, true}, {"limit", 8, i64, false},
		},
		"thanos.LabelNamesResponse": {{"names", 1, str, true}, {"warnings", 2, str, true}, {"hints", 3, msg, false}},
		"thanos.LabelValuesRequest": {
			{"label", 1, str, false}, {"partial_response_disabled", 2, bln, false}, {"partial_response_strategy", 3, enm, false},
			{"start", 4, i64, false}, {"end", 5, i64, false}, {"hints", 6, msg, false}, {"matchers", 7, msg, true},
			{"without_replica_labels", 8, str, true}, {"limit", 9, i64, false},
		},
		"thanos.LabelValuesResponse": {{"values", 1, str, true}, {"warnings", 2, str, true}, {"hints", 3, msg, false}},
		"thanos.info.InfoResponse": {
			{"label_sets", 1, msg, true}, {"ComponentType", 2, str, false}, {"store", 3, msg, false},
			{"rules", 4, msg, false}, {"metric_metadata", 5, msg, false}, {"targets", 6, msg, false},
			{"exemplars", 7, msg, false}, {"query", 8, msg, false}, {"status", 9, msg, false},
		},
		"thanos.info.StoreInfo": {
			{"min_time", 1, i64, false}, {"max_time", 2, i64, false}, {"supports_sharding", 3, bln, false},
			{"supports_without_replica_labels", 5, bln, false}, {"tsdb_infos", 6, msg, true},
		},
		"thanos.info.TSDBInfo":      {{"labels", 1, msg, false}, {"min_time", 2, i64, false}, {"max_time", 3, i64, false}},
		"thanos.info.ExemplarsInfo": {{"min_time", 1, i64, false}, {"max_time", 2, i64, false}},
	}
	for name, want := range fields {
		t.Run(name, func(t *testing.T) {
			d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
			require.NoError(t, err)
			md := d.(protoreflect.MessageDescriptor)
			require.Equal(t, len(want), md.Fields().Len(), "field count")
			for _, w := range want {
				f := md.Fields().ByName(protoreflect.Name(w.name))
				require.NotNil(t, f, "field %s", w.name)
				require.Equal(t, w.number, f.Number(), "number of %s", w.name)
				require.Equal(t, w.kind, f.Kind(), "kind of %s", w.name)
				require.Equal(t, w.repeated, f.IsList(), "repetition of %s", w.name)
			}
		})
	}

	enums := map[string]map[string]protoreflect.EnumNumber{
		"thanos.Chunk.Encoding":          {"XOR": 0, "HISTOGRAM": 1, "FLOAT_HISTOGRAM": 2},
		"thanos.LabelMatcher.Type":       {"EQ": 0, "NEQ": 1, "RE": 2, "NRE": 3},
		"thanos.Aggr":                    {"RAW": 0, "COUNT": 1, "SUM": 2, "MIN": 3, "MAX": 4, "COUNTER": 5},
		"thanos.PartialResponseStrategy": {"WARN": 0, "ABORT": 1},
	}
	for name, want := range enums {
		t.Run(name, func(t *testing.T) {
			d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
			require.NoError(t, err)
			ed := d.(protoreflect.EnumDescriptor)
			require.Equal(t, len(want), ed.Values().Len())
			for n, num := range want {
				v := ed.Values().ByName(protoreflect.Name(n))
				require.NotNil(t, v, n)
				require.Equal(t, num, v.Number(), n)
			}
		})
	}
}
