package loadgen

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of prometheus.WriteRequest (prompb/remote.proto and
// prompb/types.proto in the Prometheus module) and io.prometheus.write.v2.Request
// (prompb/io/prometheus/write/v2/types.proto). A sample is {double value = 1;
// int64 timestamp = 2;} in both.
const (
	fieldV1Timeseries protowire.Number = 1
	fieldV1Labels     protowire.Number = 1
	fieldV1LabelName  protowire.Number = 1
	fieldV1LabelValue protowire.Number = 2

	fieldV2Symbols    protowire.Number = 4
	fieldV2Timeseries protowire.Number = 5
	fieldV2LabelsRefs protowire.Number = 1
	fieldV2Metadata   protowire.Number = 5
	fieldV2MetaType   protowire.Number = 1
	fieldV2MetaHelp   protowire.Number = 3

	fieldSeriesSamples   protowire.Number = 2
	fieldSampleValue     protowire.Number = 1
	fieldSampleTimestamp protowire.Number = 2

	// Metric types of io.prometheus.write.v2.Metadata.
	metricTypeCounter = 1
	metricTypeGauge   = 2
)

// encode rebuilds the batch's request for its current series, with room for
// timestamps of tsLen varint bytes. Values and timestamps are left zero;
// Next fills them in.
func (b *Batch) encode(tsLen int) {
	b.tsLen = tsLen
	b.body = b.body[:0]
	b.offs = b.offs[:0]
	var (
		hs     host
		hostID uint64
		msg    []byte // one TimeSeries
	)
	switch b.w.cfg.Protocol {
	case ProtocolRW2:
		symbols := []string{""}
		index := map[string]uint64{"": 0}
		ref := func(s string) uint64 {
			r, ok := index[s]
			if !ok {
				r = uint64(len(symbols))
				symbols = append(symbols, s)
				index[s] = r
			}
			return r
		}
		series := make([]byte, 0, 64*len(b.slots))
		var refs []byte
		for i := range b.slots {
			ls := b.labels(i, &hs, &hostID)
			refs = refs[:0]
			for _, l := range ls {
				refs = protowire.AppendVarint(refs, ref(l.name))
				refs = protowire.AppendVarint(refs, ref(l.value))
			}
			f := b.w.tmpls[(b.first+i)%len(b.w.tmpls)].family
			typ := uint64(metricTypeGauge)
			if f.kind.counter() {
				typ = metricTypeCounter
			}
			var meta []byte
			meta = protowire.AppendTag(meta, fieldV2MetaType, protowire.VarintType)
			meta = protowire.AppendVarint(meta, typ)
			meta = protowire.AppendTag(meta, fieldV2MetaHelp, protowire.VarintType)
			meta = protowire.AppendVarint(meta, ref(f.help))

			msg = protowire.AppendTag(msg[:0], fieldV2LabelsRefs, protowire.BytesType)
			msg = protowire.AppendBytes(msg, refs)
			valueAt := len(msg) + 3 // tag, length, value tag
			msg = appendSampleField(msg, tsLen)
			msg = protowire.AppendTag(msg, fieldV2Metadata, protowire.BytesType)
			msg = protowire.AppendBytes(msg, meta)

			series = protowire.AppendTag(series, fieldV2Timeseries, protowire.BytesType)
			series = protowire.AppendVarint(series, uint64(len(msg)))
			b.offs = append(b.offs, int32(len(series)+valueAt))
			series = append(series, msg...)
		}
		for _, s := range symbols {
			b.body = protowire.AppendTag(b.body, fieldV2Symbols, protowire.BytesType)
			b.body = protowire.AppendString(b.body, s)
		}
		// The series follow the symbols.
		for i := range b.offs {
			b.offs[i] += int32(len(b.body))
		}
		b.body = append(b.body, series...)
	default:
		var lb []byte
		for i := range b.slots {
			msg = msg[:0]
			for _, l := range b.labels(i, &hs, &hostID) {
				lb = protowire.AppendTag(lb[:0], fieldV1LabelName, protowire.BytesType)
				lb = protowire.AppendString(lb, l.name)
				lb = protowire.AppendTag(lb, fieldV1LabelValue, protowire.BytesType)
				lb = protowire.AppendString(lb, l.value)
				msg = protowire.AppendTag(msg, fieldV1Labels, protowire.BytesType)
				msg = protowire.AppendBytes(msg, lb)
			}
			valueAt := len(msg) + 3
			msg = appendSampleField(msg, tsLen)
			b.body = protowire.AppendTag(b.body, fieldV1Timeseries, protowire.BytesType)
			b.body = protowire.AppendVarint(b.body, uint64(len(msg)))
			b.offs = append(b.offs, int32(len(b.body)+valueAt))
			b.body = append(b.body, msg...)
		}
	}
}

// appendSampleField appends a Sample field (number 2 in both protocols) with a
// zero value and a zero timestamp of tsLen varint bytes, to be overwritten. The
// value is written even when it is zero, as the default: decoders accept it and
// every sample keeps the same layout. The value's 8 bytes start 3 bytes after
// the field.
func appendSampleField(b []byte, tsLen int) []byte {
	b = protowire.AppendTag(b, fieldSeriesSamples, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+8+1+tsLen))
	b = protowire.AppendTag(b, fieldSampleValue, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 0)
	b = protowire.AppendTag(b, fieldSampleTimestamp, protowire.VarintType)
	// A varint of tsLen bytes: continuation bits on all but the last.
	for range tsLen - 1 {
		b = append(b, 0x80)
	}
	return append(b, 0)
}
