package receive

import (
	"math"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the io.prometheus.write.v2 messages, from
// prompb/io/prometheus/write/v2/types.proto in the Prometheus module; decodeV2
// reads the same ones.
const (
	fieldRequestSymbols    protowire.Number = 4
	fieldRequestTimeseries protowire.Number = 5

	fieldSeriesLabelsRefs protowire.Number = 1
	fieldSeriesSamples    protowire.Number = 2
	fieldSeriesHistograms protowire.Number = 3
	fieldSeriesExemplars  protowire.Number = 4
	fieldSeriesMetadata   protowire.Number = 5

	fieldSampleValue          protowire.Number = 1
	fieldSampleTimestamp      protowire.Number = 2
	fieldSampleStartTimestamp protowire.Number = 3

	fieldExemplarLabelsRefs protowire.Number = 1
	fieldExemplarValue      protowire.Number = 2
	fieldExemplarTimestamp  protowire.Number = 3

	fieldMetadataType    protowire.Number = 1
	fieldMetadataHelpRef protowire.Number = 3
	fieldMetadataUnitRef protowire.Number = 4

	fieldHistogramCountInt       protowire.Number = 1
	fieldHistogramCountFloat     protowire.Number = 2
	fieldHistogramSum            protowire.Number = 3
	fieldHistogramSchema         protowire.Number = 4
	fieldHistogramZeroThreshold  protowire.Number = 5
	fieldHistogramZeroCountInt   protowire.Number = 6
	fieldHistogramZeroCountFloat protowire.Number = 7
	fieldHistogramNegativeSpans  protowire.Number = 8
	fieldHistogramNegativeDeltas protowire.Number = 9
	fieldHistogramNegativeCounts protowire.Number = 10
	fieldHistogramPositiveSpans  protowire.Number = 11
	fieldHistogramPositiveDeltas protowire.Number = 12
	fieldHistogramPositiveCounts protowire.Number = 13
	fieldHistogramResetHint      protowire.Number = 14
	fieldHistogramTimestamp      protowire.Number = 15
	fieldHistogramCustomValues   protowire.Number = 16
	fieldHistogramStartTimestamp protowire.Number = 17

	fieldSpanOffset protowire.Number = 1
	fieldSpanLength protowire.Number = 2
)

// encoder turns subsets of a decoded request into Remote Write 2.0 messages.
// It is reused across requests by one goroutine (pooled by the caller); its
// buffers and symbol table are reset per message. The zero value is ready to use.
//
// The encoder only reads the request, so several encoders may encode subsets of
// the same request concurrently. Between calls it holds no string of a request:
// a pooled encoder does not keep a request body alive.
//
// What a peer decodes from the message (with decodeV2) is what the write path
// would have read from the original request for the same series: labels as sent
// (unsorted, duplicate or empty ones included, so that the peer rejects what this
// node would have rejected), float samples, native histograms and exemplars bit
// for bit, with their start timestamps and raw reset hints, and metadata.
type encoder struct {
	// symbols is the symbol table of the message being encoded; symbols[0] is "".
	// index finds a string in it.
	symbols []string
	index   map[string]uint32

	// remap caches, for a Remote-Write 2.0 request, the new reference of each of
	// its symbols plus one (zero: not looked up yet), so that a label that arrived
	// as a reference is hashed once per message, not once per use.
	remap []uint32

	// families indexes the request's Remote-Write 1.0 metric family metadata by
	// family name; built on first use per message when familiesBuilt is false.
	families      map[string]int32
	familiesBuilt bool

	// prev holds, by position, the labels of the last series whose labels were
	// looked up by string, with their references. Consecutive series share most
	// label names and many values (job, instance, ...), and comparing two short
	// strings is much cheaper than a map lookup. A zero entry is valid: "" is 0.
	prev []cachedLabel

	refs []uint32 // label references of the series or exemplar being encoded
}

// cachedLabel is a label and the references of its name and value.
type cachedLabel struct {
	name, value       string
	nameRef, valueRef uint32
}

// encodeV2 appends to dst the Remote Write 2.0 encoding of the series of req
// whose indexes are in idx (in that order), and returns the extended buffer.
//
// Series with an error (which the caller is expected to leave out) and indexes
// out of range are skipped. If nothing is left, dst is returned unchanged: an
// empty message is an empty request.
//
// The symbols follow the series in the message: the symbol table is complete
// only once every series is encoded, and writing it last saves a buffer and a
// copy of the series. Protobuf parsers accept fields in any order; decodeV2 and
// the generated gogo decoder resolve references after the whole message.
func (e *encoder) encodeV2(dst []byte, req *request, idx []int32) []byte {
	e.begin(req)
	n := 0
	for _, i := range idx {
		if i < 0 || int(i) >= len(req.series) {
			continue
		}
		s := &req.series[i]
		if s.err != nil {
			continue
		}
		dst = e.appendSeries(dst, req, s)
		n++
	}
	if n > 0 {
		size := 0
		for _, sym := range e.symbols {
			size += 1 + protowire.SizeBytes(len(sym))
		}
		dst = slices.Grow(dst, size)
		for _, sym := range e.symbols {
			dst = protowire.AppendTag(dst, fieldRequestSymbols, protowire.BytesType)
			dst = protowire.AppendString(dst, sym)
		}
	}
	e.end()
	return dst
}

// begin resets the symbol table for a message with series of req.
func (e *encoder) begin(req *request) {
	if e.index == nil {
		e.index = make(map[string]uint32)
	}
	// After end these are empty already, unless a previous message never got
	// there; clearing an empty map costs nothing.
	clear(e.index)
	clear(e.prev)
	e.symbols = append(e.symbols[:0], "")
	e.index[""] = 0
	e.remap = e.remap[:0]
	if req.proto == protoV2 {
		e.remap = slices.Grow(e.remap, len(req.symbols))[:len(req.symbols)]
		clear(e.remap)
	}
	e.familiesBuilt = false
}

// end drops every string of the request that the encoder holds.
func (e *encoder) end() {
	clear(e.symbols)
	e.symbols = e.symbols[:0]
	clear(e.index)
	clear(e.families)
	clear(e.prev)
}

// symbol returns the reference of s in the message's symbol table, adding it if
// it is new.
func (e *encoder) symbol(s string) uint32 {
	if ref, ok := e.index[s]; ok {
		return ref
	}
	ref := uint32(len(e.symbols))
	e.symbols = append(e.symbols, s)
	e.index[s] = ref
	return ref
}

// symbolHint is symbol for a string s that a Remote-Write 2.0 request may have
// sent as its symbol hint. The hint is used only if it really refers to s (which
// costs a pointer comparison when s was resolved from it), so the labels of the
// request stay the source of truth.
func (e *encoder) symbolHint(req *request, s string, hint uint32) uint32 {
	if uint64(hint) >= uint64(len(e.remap)) || req.symbols[hint] != s {
		return e.symbol(s)
	}
	if ref := e.remap[hint]; ref != 0 {
		return ref - 1
	}
	ref := e.symbol(s)
	e.remap[hint] = ref + 1
	return ref
}

// symbolRef returns the new reference of symbol ref of a Remote-Write 2.0
// request; 0 (the empty string) if ref is out of range.
func (e *encoder) symbolRef(req *request, ref uint32) uint32 {
	if uint64(ref) >= uint64(len(e.remap)) {
		return 0
	}
	return e.symbolHint(req, req.symbols[ref], ref)
}

// appendLabelRefs appends to dst the new references of the name and value of
// each label of ls. hints are the label references the request sent (2.0), if
// there is one pair per label. Series labels (not exemplar labels) without hints
// go through the cache of the previous series' labels.
func (e *encoder) appendLabelRefs(dst []uint32, req *request, ls []wireLabel, hints []uint32, series bool) []uint32 {
	switch {
	case len(hints) == 2*len(ls) && len(e.remap) > 0:
		for k, l := range ls {
			dst = append(dst, e.symbolHint(req, l.name, hints[2*k]), e.symbolHint(req, l.value, hints[2*k+1]))
		}
	case series:
		if len(e.prev) < len(ls) {
			e.prev = append(e.prev, make([]cachedLabel, len(ls)-len(e.prev))...)
		}
		prev := e.prev[:len(ls)]
		for k, l := range ls {
			c := &prev[k]
			if c.name != l.name {
				c.name, c.nameRef = l.name, e.symbol(l.name)
			}
			if c.value != l.value {
				c.value, c.valueRef = l.value, e.symbol(l.value)
			}
			dst = append(dst, c.nameRef, c.valueRef)
		}
	default:
		for _, l := range ls {
			dst = append(dst, e.symbol(l.name), e.symbol(l.value))
		}
	}
	return dst
}

// appendSeries appends s as a TimeSeries field of a Request.
func (e *encoder) appendSeries(b []byte, req *request, s *wireSeries) []byte {
	b, start := appendMessageStart(b, fieldRequestTimeseries)

	ls := req.labels[s.labels.lo:s.labels.hi]
	e.refs = e.appendLabelRefs(e.refs[:0], req, ls, req.refs[s.refs.lo:s.refs.hi], true)
	b = appendPackedRefs(b, fieldSeriesLabelsRefs, e.refs)

	for j := s.samples.lo; j < s.samples.hi; j++ {
		b = appendSample(b, &req.samples[j])
	}
	for j := s.histograms.lo; j < s.histograms.hi; j++ {
		b = appendHistogram(b, &req.histograms[j])
	}
	for j := s.exemplars.lo; j < s.exemplars.hi; j++ {
		x := &req.exemplars[j]
		e.refs = e.appendLabelRefs(e.refs[:0], req, req.exLabels[x.labels.lo:x.labels.hi], req.exRefs[x.refs.lo:x.refs.hi], false)
		b = appendExemplar(b, e.refs, x)
	}
	b = e.appendMetadata(b, req, s, ls)
	return finishMessage(b, start)
}

// appendMetadata appends the metadata of s, if it has any. A 2.0 series has its
// own; a 1.0 series gets the metadata of its metric family, found the way the
// write path finds it (see batch.metadataFor), so that the peer stores what this
// node would have stored.
//
// One difference cannot be expressed: a 1.0 family with an unknown type and no
// help or unit arrives as no metadata, which storage treats the same
// (metadata.Metadata.IsEmpty).
func (e *encoder) appendMetadata(b []byte, req *request, s *wireSeries, ls []wireLabel) []byte {
	var (
		typ        int32
		help, unit uint32
	)
	switch req.proto {
	case protoV2:
		typ = s.meta.typ
		help = e.symbolRef(req, s.meta.helpRef)
		unit = e.symbolRef(req, s.meta.unitRef)
	case protoV1:
		m := e.family(req, ls)
		if m == nil {
			return b
		}
		typ, help, unit = m.typ, e.symbol(m.help), e.symbol(m.unit)
	}
	if typ == 0 && help == 0 && unit == 0 {
		return b
	}
	n := 0
	if typ != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(typ)))
	}
	if help != 0 {
		n += 1 + protowire.SizeVarint(uint64(help))
	}
	if unit != 0 {
		n += 1 + protowire.SizeVarint(uint64(unit))
	}
	b = protowire.AppendTag(b, fieldSeriesMetadata, protowire.BytesType)
	b = appendVarint(b, uint64(n))
	b = appendVarintField(b, fieldMetadataType, uint64(int64(typ)))
	b = appendVarintField(b, fieldMetadataHelpRef, uint64(help))
	return appendVarintField(b, fieldMetadataUnitRef, uint64(unit))
}

// family returns the Remote-Write 1.0 metric family metadata of the series with
// labels ls, or nil. As in batch.prepareMetadata, the last metadata of a family
// wins and metadata without a family name is ignored.
func (e *encoder) family(req *request, ls []wireLabel) *familyMetadata {
	if len(req.metadata) == 0 {
		return nil
	}
	if !e.familiesBuilt {
		e.familiesBuilt = true
		for i, m := range req.metadata {
			if !m.usable() {
				continue
			}
			if e.families == nil {
				e.families = make(map[string]int32)
			}
			e.families[m.family] = int32(i)
		}
	}
	if len(e.families) == 0 {
		return nil
	}
	name := metricName(ls)
	if i, ok := e.families[name]; ok {
		return &req.metadata[i]
	}
	for _, suffix := range familySuffixes {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if i, ok := e.families[base]; ok {
				return &req.metadata[i]
			}
		}
	}
	return nil
}

// metricName returns the value of the __name__ label of ls, or "".
func metricName(ls []wireLabel) string {
	for _, l := range ls {
		if l.name == model.MetricNameLabel {
			return l.value
		}
	}
	return ""
}

// appendMessageStart appends the key of a length-delimited field num and a
// one-byte placeholder for its length, and returns where the field's payload
// starts. finishMessage fills in the length.
func appendMessageStart(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = append(b, 0)
	return b, len(b)
}

// finishMessage writes the length of the payload that starts at start and ends
// at the end of b. Most messages are shorter than 128 bytes and fit the
// placeholder; a longer one is moved up to make room for its length.
func finishMessage(b []byte, start int) []byte {
	n := len(b) - start
	if n < 0x80 {
		b[start-1] = byte(n)
		return b
	}
	k := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, k-1)...)
	copy(b[start-1+k:], b[start:start+n])
	protowire.AppendVarint(b[:start-1], uint64(n))
	return b
}

// appendVarint is protowire.AppendVarint with the common case inlined.
func appendVarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

// appendVarintField appends a varint field unless v is zero, the default.
func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return appendVarint(b, v)
}

// appendDoubleField appends a double field unless v is +0, the default. Any
// other value, -0 and NaNs included, is written bit for bit.
func appendDoubleField(b []byte, num protowire.Number, v float64) []byte {
	bits := math.Float64bits(v)
	if bits == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, bits)
}

// sizeVarintField is the encoded size of appendVarintField(_, num, v) for a
// one-byte key.
func sizeVarintField(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

// sizeDoubleField is the encoded size of appendDoubleField(_, num, v) for a
// one-byte key.
func sizeDoubleField(v float64) int {
	if math.Float64bits(v) == 0 {
		return 0
	}
	return 1 + 8
}

// appendPackedRefs appends refs as a packed repeated uint32 field, unless there
// are none.
func appendPackedRefs(b []byte, num protowire.Number, refs []uint32) []byte {
	if len(refs) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = appendVarint(b, uint64(sizePackedRefs(refs)))
	for _, r := range refs {
		b = appendVarint(b, uint64(r))
	}
	return b
}

// sizePackedRefs is the payload size of refs as a packed repeated uint32 field.
func sizePackedRefs(refs []uint32) int {
	n := 0
	for _, r := range refs {
		n += protowire.SizeVarint(uint64(r))
	}
	return n
}

// sizePackedRefsField is the encoded size of appendPackedRefs(_, num, refs) for
// a one-byte key.
func sizePackedRefsField(refs []uint32) int {
	if len(refs) == 0 {
		return 0
	}
	n := sizePackedRefs(refs)
	return 1 + protowire.SizeVarint(uint64(n)) + n
}

// appendSample appends s as a Sample field of a TimeSeries.
func appendSample(b []byte, s *wireSample) []byte {
	n := sizeDoubleField(s.v) + sizeVarintField(uint64(s.t)) + sizeVarintField(uint64(s.st))
	b = protowire.AppendTag(b, fieldSeriesSamples, protowire.BytesType)
	b = appendVarint(b, uint64(n))
	b = appendDoubleField(b, fieldSampleValue, s.v)
	b = appendVarintField(b, fieldSampleTimestamp, uint64(s.t))
	return appendVarintField(b, fieldSampleStartTimestamp, uint64(s.st))
}

// appendExemplar appends x, with label references refs, as an Exemplar field of
// a TimeSeries.
func appendExemplar(b []byte, refs []uint32, x *wireExemplar) []byte {
	n := sizePackedRefsField(refs) + sizeDoubleField(x.v) + sizeVarintField(uint64(x.t))
	b = protowire.AppendTag(b, fieldSeriesExemplars, protowire.BytesType)
	b = appendVarint(b, uint64(n))
	b = appendPackedRefs(b, fieldExemplarLabelsRefs, refs)
	b = appendDoubleField(b, fieldExemplarValue, x.v)
	return appendVarintField(b, fieldExemplarTimestamp, uint64(x.t))
}

// appendHistogram appends w as a Histogram field of a TimeSeries. The count
// oneof is always written, since it tells integer from float histograms; the
// reset hint is written as it was sent, valid or not, so that the peer rejects
// what this node would have rejected.
func appendHistogram(b []byte, w *wireHistogram) []byte {
	if w.h == nil && w.fh == nil {
		return b
	}
	b, start := appendMessageStart(b, fieldSeriesHistograms)
	var custom []float64
	if h := w.h; h != nil {
		b = protowire.AppendTag(b, fieldHistogramCountInt, protowire.VarintType)
		b = appendVarint(b, h.Count)
		b = appendDoubleField(b, fieldHistogramSum, h.Sum)
		b = appendVarintField(b, fieldHistogramSchema, protowire.EncodeZigZag(int64(h.Schema)))
		b = appendDoubleField(b, fieldHistogramZeroThreshold, h.ZeroThreshold)
		b = appendVarintField(b, fieldHistogramZeroCountInt, h.ZeroCount)
		b = appendSpans(b, fieldHistogramNegativeSpans, h.NegativeSpans)
		b = appendPackedDeltas(b, fieldHistogramNegativeDeltas, h.NegativeBuckets)
		b = appendSpans(b, fieldHistogramPositiveSpans, h.PositiveSpans)
		b = appendPackedDeltas(b, fieldHistogramPositiveDeltas, h.PositiveBuckets)
		custom = h.CustomValues
	} else {
		fh := w.fh
		b = protowire.AppendTag(b, fieldHistogramCountFloat, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(fh.Count))
		b = appendDoubleField(b, fieldHistogramSum, fh.Sum)
		b = appendVarintField(b, fieldHistogramSchema, protowire.EncodeZigZag(int64(fh.Schema)))
		b = appendDoubleField(b, fieldHistogramZeroThreshold, fh.ZeroThreshold)
		b = appendDoubleField(b, fieldHistogramZeroCountFloat, fh.ZeroCount)
		b = appendSpans(b, fieldHistogramNegativeSpans, fh.NegativeSpans)
		b = appendPackedDoubles(b, fieldHistogramNegativeCounts, fh.NegativeBuckets)
		b = appendSpans(b, fieldHistogramPositiveSpans, fh.PositiveSpans)
		b = appendPackedDoubles(b, fieldHistogramPositiveCounts, fh.PositiveBuckets)
		custom = fh.CustomValues
	}
	b = appendVarintField(b, fieldHistogramResetHint, uint64(int64(w.hint)))
	b = appendVarintField(b, fieldHistogramTimestamp, uint64(w.t))
	b = appendPackedDoubles(b, fieldHistogramCustomValues, custom)
	b = appendVarintField(b, fieldHistogramStartTimestamp, uint64(w.st))
	return finishMessage(b, start)
}

// appendSpans appends each span as a BucketSpan field num.
func appendSpans(b []byte, num protowire.Number, spans []histogram.Span) []byte {
	for _, s := range spans {
		off := protowire.EncodeZigZag(int64(s.Offset))
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = appendVarint(b, uint64(sizeVarintField(off)+sizeVarintField(uint64(s.Length))))
		b = appendVarintField(b, fieldSpanOffset, off)
		b = appendVarintField(b, fieldSpanLength, uint64(s.Length))
	}
	return b
}

// appendPackedDeltas appends vs as a packed repeated sint64 field, unless there
// are none.
func appendPackedDeltas(b []byte, num protowire.Number, vs []int64) []byte {
	if len(vs) == 0 {
		return b
	}
	n := 0
	for _, v := range vs {
		n += protowire.SizeVarint(protowire.EncodeZigZag(v))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = appendVarint(b, uint64(n))
	for _, v := range vs {
		b = appendVarint(b, protowire.EncodeZigZag(v))
	}
	return b
}

// appendPackedDoubles appends vs as a packed repeated double field, unless
// there are none.
func appendPackedDoubles(b []byte, num protowire.Number, vs []float64) []byte {
	if len(vs) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = appendVarint(b, uint64(8*len(vs)))
	for _, v := range vs {
		b = protowire.AppendFixed64(b, math.Float64bits(v))
	}
	return b
}
